"""The durable sealed outbox of kiosk logs and its uploader.

- ``Outbox`` (``queue``): ``append(kind, payload) -> seq``; durable, bounded, sealed; the
  uploader's side (``pending``, ``acknowledge``, ``park``); ``OutboxStatus`` (``status``).
  Beside it: ``sequence`` (numbers that never go back, epochs), ``clock`` (stamps, a clock
  set back), ``salvage`` (quarantining a damaged file, recovering its rows), ``disk`` (what
  the disk refuses, as the outbox's errors), ``database`` and ``records`` (rows and sizes).
- ``OutboxPublicKey`` / ``OutboxPrivateKey`` (``contract.sealing``): HPKE to the clinic
  server's key.
- ``Uploader`` (``uploader``): batches to the clinic server, backoff, parking.
- ``Heartbeat`` (``heartbeat``): the kiosk's health every minute, posted to the clinic server
  (what the dashboard shows) and kept in the outbox as its history.
- ``contract.outbox_record``: the record header and the batch wire format shared with the
  server.
"""

from contract.outbox_record import Batch, BatchAck, RecordHeader, SealedRecord
from contract.sealing import OutboxPrivateKey, OutboxPublicKey
from kiosk.outbox.queue import Outbox
from kiosk.outbox.status import OutboxStatus

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
