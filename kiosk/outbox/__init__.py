"""The durable sealed outbox of kiosk logs and its uploader.

- ``Outbox`` (``store``): ``append(kind, payload) -> seq``; durable, bounded, sealed, recovers
  from damage; the uploader's side (``pending``, ``acknowledge``, ``park``).
- ``OutboxPublicKey`` / ``OutboxPrivateKey`` (``sealing``): HPKE to the clinic server's key.
- ``Uploader`` (``uploader``): batches to the clinic server, backoff, parking.
- ``Heartbeat`` (``heartbeat``): the one-a-minute health record.
- ``record``: the record header and the batch wire format shared with the server.
"""

from kiosk.outbox.record import Batch, BatchAck, RecordHeader, SealedRecord
from kiosk.outbox.sealing import OutboxPrivateKey, OutboxPublicKey
from kiosk.outbox.store import Outbox, OutboxStatus

__all__ = [
    "Batch",
    "BatchAck",
    "Outbox",
    "OutboxPrivateKey",
    "OutboxPublicKey",
    "OutboxStatus",
    "RecordHeader",
    "SealedRecord",
]
