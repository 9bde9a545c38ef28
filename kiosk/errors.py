"""The kiosk's branch of the one exception tree (its root is ``contract.errors.OnshiError``).

Errors from the libraries underneath (pyscard, httpx, sqlite3) are translated into these at
their adapters; nothing else leaves an adapter. Each error says whether repeating the same
operation can help (``temporary``), so callers sort failures into "retry" and "stop and say
why" without knowing where they came from::

    contract.errors.OnshiError
    ├── contract.errors.ConfigError      a broken or missing setting (also ValueError)
    │   └── kiosk.sim ProfileError       a malformed virtual card profile
    ├── contract.errors.DeviceAuthError  a request's device signature does not hold
    ├── contract.errors.UnsealError      a sealed body does not open with this key
    └── KioskError
        ├── CardError                        anything about the card or the reader
        │   ├── PcscServiceGone              pcscd is not running or went away (temporary)
        │   │   └── kiosk.sim VpcdUnavailable  no virtual reader to insert a virtual card into
        │   ├── ReaderGone                   the reader was unplugged or never was (temporary)
        │   ├── NoCard                       no card on the reader (temporary)
        │   ├── CardRemoved                  the card left the reader mid-operation (temporary)
        │   ├── CardTimeout                  the card stopped answering (temporary)
        │   ├── NotMyNumberCard              no JPKI application, or an unknown token
        │   ├── SecurityStatusNotSatisfied   the card wants a verified PIN first
        │   ├── CardProtocolError            a malformed or unexpected answer
        │   └── PinError                     about the user-authentication PIN
        │       ├── WrongPin                 the card refused the PIN; ``tries_left`` remain
        │       ├── PinLocked                no tries left: only the municipal office can reset it
        │       ├── PinNotUsable             the card has no usable PIN (face-authentication card)
        │       └── PinRefused               the kiosk's PIN policy refused to send a PIN
        ├── ServerError                      talking to the clinic server
        │   ├── ServerUnreachable            the request never completed (temporary)
        │   └── ServerRejected               an error status or a malformed answer came back
        ├── OutboxError                      the durable sealed log queue on the kiosk
        │   ├── OutboxFull                   the configured size is reached: the record was refused
        │   │                                (temporary: the uploader drains it)
        │   ├── OutboxCorrupt                the database file failed its checks (quarantined at
        │   │                                the next start)
        │   └── StorageUnavailable           the disk is full, read-only or failing (temporary);
        │                                    ``reason`` says which
        ├── UpdateError                      the unit's A/B updates
        │   ├── BootSlotError                the boot's slot state cannot be read or changed
        │   └── UpdateRefused                a bundle refused before anything was written
        └── FlowDefinitionError              the flow's transition table is badly defined (raised
                                             when the machine's class is defined, at import)
"""

from __future__ import annotations

from contract.errors import OnshiError


class KioskError(OnshiError):
    """Root of every error the kiosk raises on purpose."""

    code = "kiosk"


# --- card and reader -------------------------------------------------------------------------


class CardError(KioskError):
    """Anything that went wrong between the kiosk and the card."""

    code = "card"


class PcscServiceGone(CardError):
    """The PC/SC service (pcscd) is not running or stopped answering."""

    temporary = True
    code = "card.pcsc_gone"


class ReaderGone(CardError):
    """The card reader is not connected, or was unplugged."""

    temporary = True
    code = "card.reader_gone"


class NoCard(CardError):
    """No card is present on the reader."""

    temporary = True
    code = "card.absent"


class CardRemoved(CardError):
    """The card was taken off the reader during an operation."""

    temporary = True
    code = "card.removed"


class CardTimeout(CardError):
    """The card did not answer within the allowed time."""

    temporary = True
    code = "card.timeout"


class NotMyNumberCard(CardError):
    """The card has no JPKI application, or carries a token the kiosk does not know."""

    code = "card.not_jpki"


class SecurityStatusNotSatisfied(CardError):
    """The card refused an operation that needs the PIN verified first (SW 6982)."""

    code = "card.security_status"


class CardProtocolError(CardError):
    """The card answered something malformed or unexpected."""

    code = "card.protocol"

    def __init__(self, message: str, sw: int | None = None) -> None:
        super().__init__(message)
        #: The status word of the offending answer, when there was one.
        self.sw = sw


class PinError(CardError):
    """About the user-authentication PIN."""

    code = "pin"


class WrongPin(PinError):
    """The card refused the PIN the patient typed."""

    code = "pin.wrong"

    def __init__(self, tries_left: int) -> None:
        super().__init__(f"wrong PIN, {tries_left} tries left")
        self.tries_left = tries_left


class PinLocked(PinError):
    """The PIN is locked; only the municipal office can reset it."""

    code = "pin.locked"

    def __init__(self, message: str = "the PIN is locked") -> None:
        super().__init__(message)


class PinNotUsable(PinError):
    """The card carries no usable PIN (a face-authentication My Number card)."""

    code = "pin.not_usable"


class PinRefused(PinError):
    """The kiosk's PIN policy refused to send a PIN to the card; no try was spent."""

    code = "pin.refused"

    def __init__(self, message: str, tries_left: int | None = None) -> None:
        super().__init__(message)
        self.tries_left = tries_left


# --- clinic server ---------------------------------------------------------------------------


class ServerError(KioskError):
    """Talking to the clinic server failed."""

    code = "server"


class ServerUnreachable(ServerError):
    """The request never completed: no connection, TLS failure or a timeout."""

    temporary = True
    code = "server.unreachable"


class ServerRejected(ServerError):
    """The server answered with an error status or an answer the kiosk cannot read."""

    code = "server.rejected"

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        temporary: bool = False,
        retry_after_s: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.temporary = temporary
        #: How long the server asked the client to wait (its ``Retry-After``), if it did.
        self.retry_after_s = retry_after_s


# --- outbox ----------------------------------------------------------------------------------


class OutboxError(KioskError):
    """The kiosk's durable, sealed log queue could not do what was asked."""

    code = "outbox"


class OutboxFull(OutboxError):
    """The outbox reached its configured size; the record was refused and counted, not lost.

    The alarm (status level ``warning``) is raised long before this; the uploader frees space
    as the clinic server acknowledges records, so appending later can succeed.
    """

    temporary = True
    code = "outbox.full"


class OutboxCorrupt(OutboxError):
    """The outbox database failed an integrity check while in use.

    At start the outbox quarantines a corrupted file and recovers its readable rows by
    itself; this is raised when corruption shows up later, so the process restarts and does
    exactly that.
    """

    code = "outbox.corrupt"


class StorageUnavailable(OutboxError):
    """The file system under the outbox refused a write: full, read-only or failing.

    Nothing already acknowledged is lost: the record being appended was not stored, every
    earlier one still is.
    """

    temporary = True
    code = "outbox.storage"

    def __init__(self, message: str, reason: str = "io") -> None:
        super().__init__(message)
        #: ``"disk_full"``, ``"read_only"`` or ``"io"``.
        self.reason = reason


# --- the flow ----------------------------------------------------------------------------------


class UpdateError(KioskError):
    """Updating the unit (kiosk update): its slots, its bundles."""

    code = "update"


class BootSlotError(UpdateError):
    """The A/B slot state, where the boot reads it, cannot be read or changed as asked."""

    code = "update.boot_slots"


class UpdateRefused(UpdateError):
    """A bundle was refused before anything was written: ``reason`` is one of
    ``signature``, ``compatible``, ``older``, ``truncated``, ``unreadable``, ``trial``,
    ``download``; the message says what was seen."""

    code = "update.refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class FlowDefinitionError(KioskError):
    """The flow's transition table is badly defined: a state without a handler, a handler for
    a state the machine does not have, not exactly one initial state...

    Raised when the machine's class is defined, so a broken table stops the kiosk at import
    instead of at the first patient.
    """

    code = "flow.definition"
