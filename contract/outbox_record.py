"""One outbox record and the batch that carries records to the clinic server.

A record is a clear header and a sealed body. The header says only what the uploader and the
server need to order, deduplicate and route a record; it never holds personal data::

    device_id  the kiosk (its device certificate's common name)
    seq        the per-device sequence number, rising, never reused (see ``kiosk.outbox.sequence``)
    prev       the sequence of the record appended just before this one (0 for the first):
               the server finds a gap wherever a record's ``prev`` is missing
    key        an idempotency key, 128 random bits in hex
    kind       what the record is about, e.g. ``flow.transition`` or ``heartbeat``
    wall_ns    wall-clock time of the append, ns since the epoch (may jump: clocks get set)
    mono_ns    monotonic time of the append, ns since ``boot_id`` booted (never jumps)
    boot_id    the kernel's boot id, so monotonic times compare within one boot
    key_id     which of the server's outbox keys sealed the body

The body (the payload as JSON) is sealed with HPKE; the HPKE ``info`` is the canonical form
of the whole header (``RecordHeader.info``), so a body cannot be moved to another record,
device or sequence without the server noticing.

The batch is JSON, built and read here by both the kiosk and the server so the two cannot
drift apart::

    {"device_id": "...", "backlog": {"records": N, "bytes": N},
     "records": [{"seq": 1, "prev": 0, "key": "...", "kind": "...", "wall_ns": 1,
                  "mono_ns": 1, "boot_id": "...", "key_id": "...", "sealed": "<base64>"}]}

and the server's answer::

    {"acked": [seq, ...], "high_water": seq, "duplicates": N, "conflicts": [seq, ...]}

``acked`` lists every sequence the server holds durably after this request (new, duplicate
or conflicting); the kiosk deletes exactly those.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

INFO_PREFIX = b"onshi-outbox-record-v1\n"

#: The largest sequence number (SQLite integers are signed 64-bit).
MAX_SEQUENCE = 2**63 - 1

_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_KEY = re.compile(r"^[0-9a-f]{32}$")
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_TEXT = re.compile(r"^[\x21-\x7e]{1,128}$")
MAX_KIND_LENGTH = 64


def check_kind(kind: str) -> str:
    """``kind`` if it is a dotted lower-case code (``card.removed``), else ValueError."""
    if not isinstance(kind, str) or len(kind) > MAX_KIND_LENGTH or not _KIND.match(kind):
        raise ValueError(f"record kind must be a dotted lower-case code, not {kind!r}")
    return kind


@dataclass(frozen=True)
class RecordHeader:
    """The clear part of a record (see the module docstring)."""

    device_id: str
    seq: int
    prev: int
    key: str
    kind: str
    wall_ns: int
    mono_ns: int
    boot_id: str
    key_id: str

    def info(self) -> bytes:
        """The HPKE ``info`` that binds a sealed body to this header."""
        fields = [
            self.device_id,
            self.seq,
            self.prev,
            self.key,
            self.kind,
            self.wall_ns,
            self.mono_ns,
            self.boot_id,
            self.key_id,
        ]
        return INFO_PREFIX + json.dumps(fields, separators=(",", ":")).encode("ascii")

    def validate(self) -> RecordHeader:
        """Self if every field is well formed, else ValueError."""
        for name in ("seq", "prev", "wall_ns", "mono_ns"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= MAX_SEQUENCE:
                raise ValueError(f"record {name} must be an integer in range, not {value!r}")
        if self.seq < 1 or self.prev >= self.seq:
            raise ValueError(f"record sequence {self.seq} must be positive and above prev")
        check_kind(self.kind)
        if not isinstance(self.key, str) or not _KEY.match(self.key):
            raise ValueError("record idempotency key must be 32 hex digits")
        if not isinstance(self.key_id, str) or not _KEY_ID.match(self.key_id):
            raise ValueError("record key id must be 16 hex digits")
        for name in ("device_id", "boot_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _TEXT.match(value):
                raise ValueError(f"record {name} must be 1-128 printable ASCII characters")
        return self


@dataclass(frozen=True)
class SealedRecord:
    """A record as stored on the kiosk and sent to the server."""

    header: RecordHeader
    sealed: bytes

    @property
    def seq(self) -> int:
        return self.header.seq

    def to_wire(self) -> dict[str, Any]:
        h = self.header
        return {
            "seq": h.seq,
            "prev": h.prev,
            "key": h.key,
            "kind": h.kind,
            "wall_ns": h.wall_ns,
            "mono_ns": h.mono_ns,
            "boot_id": h.boot_id,
            "key_id": h.key_id,
            "sealed": base64.b64encode(self.sealed).decode("ascii"),
        }

    @classmethod
    def from_wire(cls, device_id: str, item: Mapping[str, Any]) -> SealedRecord:
        """A record from its JSON form; ValueError when anything is missing or malformed."""
        try:
            header = RecordHeader(
                device_id=device_id,
                seq=item["seq"],
                prev=item["prev"],
                key=item["key"],
                kind=item["kind"],
                wall_ns=item["wall_ns"],
                mono_ns=item["mono_ns"],
                boot_id=item["boot_id"],
                key_id=item["key_id"],
            ).validate()
            sealed = base64.b64decode(item["sealed"], validate=True)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed record: {exc!r}") from None
        except binascii.Error as exc:
            raise ValueError(f"malformed sealed body: {exc}") from None
        if not sealed:
            raise ValueError("empty sealed body")
        return cls(header, sealed)


@dataclass(frozen=True)
class Backlog:
    """What was still queued on the kiosk when a batch left."""

    records: int
    bytes: int


@dataclass(frozen=True)
class Batch:
    """Records of one device on their way to the server, in sequence order."""

    device_id: str
    records: tuple[SealedRecord, ...]
    backlog: Backlog

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "device_id": self.device_id,
                "backlog": {"records": self.backlog.records, "bytes": self.backlog.bytes},
                "records": [r.to_wire() for r in self.records],
            },
            separators=(",", ":"),
        ).encode("ascii")

    @classmethod
    def from_json(cls, body: bytes, *, max_records: int) -> Batch:
        """A batch from its JSON form; ValueError when it is malformed or too large."""
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"batch is not JSON: {exc}") from None
        except RecursionError:  # the parser gives up deep nesting (a batch has four levels)
            raise ValueError("batch JSON is nested too deeply") from None
        if not isinstance(doc, dict):
            raise ValueError("batch must be a JSON object")
        device_id = doc.get("device_id")
        items = doc.get("records")
        backlog = doc.get("backlog", {})
        if not isinstance(device_id, str) or not _TEXT.match(device_id):
            raise ValueError("batch device_id is missing or malformed")
        if not isinstance(items, list) or not items:
            raise ValueError("batch records must be a non-empty list")
        if len(items) > max_records:
            raise ValueError(f"batch holds {len(items)} records, at most {max_records} allowed")
        if not isinstance(backlog, dict):
            raise ValueError("batch backlog must be an object")
        records = tuple(SealedRecord.from_wire(device_id, item) for item in items)
        seqs = [r.seq for r in records]
        if seqs != sorted(set(seqs)):
            raise ValueError("batch records must be in rising sequence order")
        counts = [backlog.get("records", 0), backlog.get("bytes", 0)]
        if any(type(n) is not int or n < 0 for n in counts):
            raise ValueError("batch backlog counts must be non-negative integers")
        return cls(device_id, records, Backlog(counts[0], counts[1]))


@dataclass(frozen=True)
class BatchAck:
    """The server's answer to a batch."""

    acked: tuple[int, ...]
    high_water: int
    duplicates: int = 0
    conflicts: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "acked": list(self.acked),
            "high_water": self.high_water,
            "duplicates": self.duplicates,
            "conflicts": list(self.conflicts),
        }

    @classmethod
    def from_json(cls, doc: Any, sent: Sequence[int]) -> BatchAck:
        """Read an answer; ValueError unless it acknowledges only sequences that were sent."""
        if not isinstance(doc, dict):
            raise ValueError("acknowledgement must be a JSON object")
        acked = doc.get("acked")
        high_water = doc.get("high_water")
        conflicts = doc.get("conflicts", [])
        duplicates = doc.get("duplicates", 0)
        if not isinstance(acked, list) or any(type(s) is not int for s in acked):
            raise ValueError("acknowledgement 'acked' must be a list of integers")
        if type(high_water) is not int or type(duplicates) is not int:
            raise ValueError("acknowledgement counts must be integers")
        if not isinstance(conflicts, list) or any(type(s) is not int for s in conflicts):
            raise ValueError("acknowledgement 'conflicts' must be a list of integers")
        unknown = set(acked) - set(sent)
        if unknown:
            raise ValueError(f"acknowledgement names {len(unknown)} sequences never sent")
        return cls(tuple(acked), high_water, duplicates, tuple(conflicts))
