"""Sealing: only the server's private key opens a record, and only under its own header."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from contract.errors import ConfigError, UnsealError
from contract.outbox_record import RecordHeader
from contract.sealing import KEMS, OutboxPrivateKey, OutboxPublicKey


def header(key_id: str, **changes: object) -> RecordHeader:
    base = RecordHeader(
        device_id="kiosk-1",
        seq=42,
        prev=41,
        key="0" * 32,
        kind="card.event",
        wall_ns=1,
        mono_ns=2,
        boot_id="boot",
        key_id=key_id,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("kem", KEMS)
def test_a_sealed_body_opens_with_the_servers_key_only(kem: str) -> None:
    server = OutboxPrivateKey.generate(kem)  # type: ignore[arg-type]
    other = OutboxPrivateKey.generate(kem)  # type: ignore[arg-type]
    public = server.public_key()
    h = header(public.key_id)
    sealed = public.sealer().seal(b'{"n":1}', h)
    assert server.opener().open(sealed, h) == b'{"n":1}'
    with pytest.raises(UnsealError):
        other.opener().open(sealed, dataclasses.replace(h, key_id=other.public_key().key_id))


@pytest.mark.parametrize(
    "change",
    [{"seq": 43}, {"device_id": "kiosk-2"}, {"kind": "heartbeat"}, {"prev": 40}, {"key": "1" * 32}],
)
def test_a_body_cannot_move_to_another_header(server_key: OutboxPrivateKey, change: dict) -> None:
    public = server_key.public_key()
    h = header(public.key_id)
    sealed = public.sealer().seal(b"secret", h)
    with pytest.raises(UnsealError):
        server_key.opener().open(sealed, dataclasses.replace(h, **change))


def test_each_record_gets_its_own_encapsulation(server_key: OutboxPrivateKey) -> None:
    public = server_key.public_key()
    h = header(public.key_id)
    assert public.sealer().seal(b"same", h) != public.sealer().seal(b"same", h)


def test_key_files_round_trip_and_the_private_one_is_private(tmp_path: Path) -> None:
    key = OutboxPrivateKey.generate()
    key.save(tmp_path / "outbox.key.json")
    assert stat.S_IMODE((tmp_path / "outbox.key.json").stat().st_mode) == 0o600
    assert OutboxPrivateKey.load(tmp_path / "outbox.key.json") == key
    (tmp_path / "pub.json").write_text(key.public_key().to_json())
    assert OutboxPublicKey.load(tmp_path / "pub.json") == key.public_key()
    with pytest.raises(FileExistsError):
        key.save(tmp_path / "outbox.key.json")


def test_a_broken_public_key_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "pub.json"
    path.write_text('{"format": "onshi-outbox-public-key-v1", "kem": "x25519", "public": "AA=="}')
    with pytest.raises(ConfigError):
        OutboxPublicKey.load(path)
    text = OutboxPrivateKey.generate().public_key().to_json().replace('"kem": "mlkem', '"kem": "x')
    path.write_text(text)
    with pytest.raises(ConfigError):
        OutboxPublicKey.load(path)


def test_the_kiosks_own_kinds_of_keys_cannot_open_a_record(server_key: OutboxPrivateKey) -> None:
    """The device key is EC P-256 and no X25519 key of the kiosk's is the server's."""
    from cryptography.hazmat.primitives import hpke

    public = server_key.public_key()
    h = header(public.key_id)
    sealed = public.sealer().seal(b"secret", h)
    device_key = ec.generate_private_key(ec.SECP256R1())
    suite = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    with pytest.raises(Exception):  # noqa: B017, PT011 - any failure will do, no plaintext
        suite.decrypt(sealed, device_key, info=h.info())
    stranger = x25519.X25519PrivateKey.generate()
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    with pytest.raises(Exception):  # noqa: B017, PT011
        suite.decrypt(sealed, stranger, info=h.info())
