"""One record's payload and size: its canonical JSON, its bytes in the outbox and on the wire.

``max_bytes`` of the outbox bounds the sealed bytes kept, each record counted with
``RECORD_OVERHEAD`` on top of its sealed body; the uploader bounds a batch by ``wire_size``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Bytes counted per record on top of its sealed body (row, header, index).
RECORD_OVERHEAD = 160
#: Bytes a record's header takes in a JSON batch (its sealed body goes as base64).
WIRE_OVERHEAD = 320
#: The largest payload (as JSON) one record may carry.
MAX_PAYLOAD_BYTES = 16 * 1024


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The canonical JSON of a payload; ValueError naming only the type when it cannot be."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"a record payload must be a mapping, not {type(payload).__name__}")
    try:
        body = json.dumps(
            dict(payload),
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        # never echo the payload: it may hold personal data
        raise ValueError(f"a record payload must be plain JSON ({type(exc).__name__})") from None
    if len(body) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"a record payload may hold at most {MAX_PAYLOAD_BYTES} bytes")
    return body


def wire_size(sealed_length: int) -> int:
    """About how many bytes a record with this sealed length takes in a JSON batch."""
    return 4 * ((sealed_length + 2) // 3) + WIRE_OVERHEAD
