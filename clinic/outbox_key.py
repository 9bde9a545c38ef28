"""The clinic's outbox key pair: kiosks seal their logs to its public half
(``contract.sealing``); the private half never leaves the server, which opens the batches
with it (``clinic.ingest``). ``clinic-server outbox-key`` makes it once and keeps it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from contract.sealing import KEMS, OutboxPrivateKey

PRIVATE_KEY_FILE = "outbox.key.json"
PUBLIC_KEY_FILE = "outbox.pub.json"


def outbox_key_paths(data_dir: Path) -> tuple[Path, Path]:
    """(private, public) key files of the outbox key pair in a data directory."""
    return data_dir / PRIVATE_KEY_FILE, data_dir / PUBLIC_KEY_FILE


def create_outbox_key(data_dir: Path, kem: str = "mlkem768-x25519") -> tuple[Path, bool]:
    """Make the outbox key pair unless it exists; (public key file, whether it was made)."""
    private, public = outbox_key_paths(data_dir)
    if private.exists():
        key = OutboxPrivateKey.load(private)
        made = False
    else:
        key = OutboxPrivateKey.generate(kem)  # type: ignore[arg-type]
        key.save(private)
        made = True
    public.write_text(key.public_key().to_json(), encoding="utf-8")
    return public, made


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``clinic-server outbox-key``: make the outbox key pair if missing; where kiosks get it."""
    command = subparsers.add_parser(
        "outbox-key", help="the key kiosks seal their logs to (made once, kept)"
    )
    command.add_argument(
        "--kem",
        choices=KEMS,
        default=KEMS[0],
        help=f"how records are sealed, when the key is made: {KEMS[0]} (the default: also "
        "safe against a future quantum computer) or x25519 (smaller records); a key that "
        "exists is kept as it is",
    )
    command.set_defaults(func=cmd_outbox_key)


def cmd_outbox_key(args: argparse.Namespace) -> int:
    public, made = create_outbox_key(Path(args.data_dir), args.kem)
    print(f"{'made' if made else 'kept'} the outbox key; give kiosks {public}")
    return 0
