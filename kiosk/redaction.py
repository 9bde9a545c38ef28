"""What may go into a log line, decided by what a value is, not by what its text looks like.

The kiosk logs codes (``K-201``, ``card.removed``), states, ids, ports, counts and times. It
never logs patient data, and three things keep it that way, whatever the destination:

* **personal field names**: a field called ``name``, ``name_kana``, ``birthdate``,
  ``address``, ``insurer_number``, ``InsuredCardSymbol``, ``certificate_subject``, ``pin``...
  (:data:`PERSONAL_FIELDS`, compared without case, ``_`` or ``-``) is blanked wherever it
  appears: in a record's ``extra`` fields and inside mappings passed as arguments;
* **personal types**: a value whose class is marked with :func:`personal_data` (the
  simulation's :class:`~kiosk.sim.people.Person`, the card session's PIN entry) or is a
  certificate or distinguished name (its subject may name the holder) is refused: it is
  replaced by :data:`REDACTED` before anything formats it;
* **a backstop for free text**: text outside ASCII (a name, a kana reading or an address
  in Japanese) in a message, an exception or a field value is blanked. The kiosk's own
  messages are ASCII; ports, ids, sequence numbers and timestamps are never touched.

:func:`clean_record` applies all three to a :class:`logging.LogRecord`; the handlers of
:mod:`kiosk.supervision` (the journal's and stderr's) format and send only its cleaned copy.
The kiosk's and the uploader's processes log through those handlers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, TypeVar

REDACTED = "<redacted>"

#: Names of fields that hold personal data, normalised by :func:`field_key`: the national
#: interface's (``NameKana``, ``InsurerNumber``...) and the kiosk's own spelling of them.
PERSONAL_FIELDS = frozenset(
    {
        "name",
        "namekana",
        "kananame",
        "fullname",
        "familyname",
        "givenname",
        "surname",
        "sex",
        "sex1",
        "sex2",
        "birthdate",
        "birthday",
        "dateofbirth",
        "address",
        "postnumber",
        "postalcode",
        "zipcode",
        "phone",
        "phonenumber",
        "insurernumber",
        "insurername",
        "insuredcardsymbol",
        "insuredsymbol",
        "insuredidentificationnumber",
        "insurednumber",
        "insuredbranchnumber",
        "publicexpensenumber",
        "beneficiarynumber",
        "mynumber",
        "individualnumber",
        "pin",
        "subject",
        "certificatesubject",
        "record",
        "records",
        "eligibilityrecord",
    }
)

#: The attributes every :class:`logging.LogRecord` has; anything else came through ``extra``.
STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

_NOT_ASCII = re.compile(r"[^\x00-\x7f]+")
_T = TypeVar("_T", bound=type)
_PERSONAL_MARK = "__personal_data__"


def personal_data(cls: _T) -> _T:
    """Class decorator: instances hold personal data and are never logged."""
    setattr(cls, _PERSONAL_MARK, True)
    return cls


def field_key(name: str) -> str:
    """``name`` compared without case, ``_``, ``-`` or spaces (``NameKana`` = ``name_kana``)."""
    return re.sub(r"[\s_\-]", "", name).lower()


def is_personal_field(name: str) -> bool:
    return field_key(name) in PERSONAL_FIELDS


def is_personal_value(value: object) -> bool:
    """Whether ``value`` is of a type that holds personal data."""
    if getattr(type(value), _PERSONAL_MARK, False):
        return True
    from cryptography import x509

    return isinstance(value, x509.Certificate | x509.Name | x509.RelativeDistinguishedName)


def clean_text(text: str) -> str:
    """The free-text backstop: ``text`` with anything outside ASCII blanked."""
    return _NOT_ASCII.sub(REDACTED, text)


def clean_value(value: Any, depth: int = 0) -> Any:
    """``value`` fit for a log: personal types refused, personal keys of mappings blanked,
    non-ASCII text blanked, containers walked (a few levels deep)."""
    if is_personal_value(value):
        return REDACTED
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bytes | bytearray):
        return REDACTED if not bytes(value).isascii() else value
    if depth >= 4:
        return value if isinstance(value, int | float | bool) or value is None else REDACTED
    if isinstance(value, Mapping):
        return {
            k: REDACTED
            if isinstance(k, str) and is_personal_field(k)
            else clean_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, tuple):
        return tuple(clean_value(v, depth + 1) for v in value)
    if isinstance(value, list | set | frozenset):
        return [clean_value(v, depth + 1) for v in value]
    return value


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record was given through ``extra``."""
    return {k: v for k, v in record.__dict__.items() if k not in STANDARD_ATTRIBUTES}


def clean_record(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` with nothing personal left (see the module docstring).

    The message is formatted from cleaned arguments and then passed through the backstop;
    the exception and stack text likewise. The original record is left alone, for other
    handlers.
    """
    clean = logging.makeLogRecord(record.__dict__)
    for key, value in extra_fields(record).items():
        setattr(clean, key, REDACTED if is_personal_field(key) else clean_value(value))
    args: Any = record.args
    if isinstance(args, Mapping):
        args = clean_value(args)
    elif isinstance(args, tuple):
        args = tuple(clean_value(a) for a in args)
    msg = record.msg if isinstance(record.msg, str) else clean_value(record.msg)
    try:
        text = str(msg) % args if args else str(msg)
    except (TypeError, ValueError, KeyError):
        text = f"{msg} {args!r}"
    clean.msg, clean.args = clean_text(text), None
    if record.exc_info and not record.exc_text:
        clean.exc_text = logging.Formatter().formatException(record.exc_info)
    if clean.exc_text:
        clean.exc_text = clean_text(clean.exc_text)
    clean.exc_info = None
    clean.stack_info = clean_text(record.stack_info) if record.stack_info else None
    return clean
