"""Sealing outbox records to the clinic server's outbox key (HPKE, RFC 9180).

The clinic server owns one outbox key pair (``clinic-server outbox-key`` makes it); each kiosk
is provisioned with the public half only. A kiosk can therefore seal records but never open
them again, and neither can whoever takes its SD card: the private half never leaves the
server.

Two suites, both with HKDF-SHA256 and ChaCha20-Poly1305 (fast without AES instructions, as on
a Raspberry Pi 4, and a 256-bit key):

``mlkem768-x25519`` (the default)
    the hybrid post-quantum KEM ML-KEM-768 + X25519: a record stays confidential if either
    half holds, which matters for health records kept for years ("harvest now, decrypt
    later"). It costs 1,120 bytes of encapsulated key per record and about 0.1 ms to seal.
``x25519``
    X25519 alone: 32 bytes per record, slightly faster; kept for comparison in the benchmark.

Every record gets its own encapsulation (single-shot HPKE), and the HPKE ``info`` is the
record's canonical header (``RecordHeader.info``), binding the body to the device, sequence,
idempotency key and kind.

Key files are small JSON documents::

    {"format": "onshi-outbox-public-key-v1", "kem": "mlkem768-x25519",
     "key_id": "<16 hex>", "public": "<base64>"}
    {"format": "onshi-outbox-private-key-v1", "kem": ..., "key_id": ..., "private": "<base64>"}

``key_id`` is the first 8 bytes of SHA-256 over the KEM name and public key; records carry it
so a server that rotated its key still finds the right private key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from contract.errors import ConfigError, UnsealError
from contract.outbox_record import RecordHeader

KemName = Literal["mlkem768-x25519", "x25519"]
KEMS: tuple[KemName, ...] = ("mlkem768-x25519", "x25519")
DEFAULT_KEM: KemName = "mlkem768-x25519"

_PUBLIC_FORMAT = "onshi-outbox-public-key-v1"
_PRIVATE_FORMAT = "onshi-outbox-private-key-v1"

_SUITES = {
    "mlkem768-x25519": hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305
    ),
    "x25519": hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305),
}
_MLKEM_SEED = 64
_MLKEM768_PUBLIC = 1184
_X25519 = 32
_AEAD_TAG = 16

_PublicKey = hpke.MLKEM768X25519PublicKey | x25519.X25519PublicKey
_PrivateKey = hpke.MLKEM768X25519PrivateKey | x25519.X25519PrivateKey


def _key_id(kem: KemName, public_raw: bytes) -> str:
    return hashlib.sha256(kem.encode("ascii") + b"\0" + public_raw).hexdigest()[:16]


def _check_kem(kem: object) -> KemName:
    if kem == "mlkem768-x25519":
        return "mlkem768-x25519"
    if kem == "x25519":
        return "x25519"
    raise ConfigError(f"unknown outbox KEM {kem!r}; known: {', '.join(KEMS)}")


def _public_from_raw(kem: KemName, raw: bytes) -> _PublicKey:
    if kem == "x25519":
        if len(raw) != _X25519:
            raise ValueError("an X25519 public key is 32 bytes")
        return x25519.X25519PublicKey.from_public_bytes(raw)
    if len(raw) != _MLKEM768_PUBLIC + _X25519:
        raise ValueError("an ML-KEM-768 + X25519 public key is 1,216 bytes")
    return hpke.MLKEM768X25519PublicKey(
        mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PUBLIC]),
        x25519.X25519PublicKey.from_public_bytes(raw[_MLKEM768_PUBLIC:]),
    )


def _read_json(path: Path, what: str) -> dict[str, str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc}") from exc
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise ConfigError(f"{path} is not an outbox key file")
    return doc


@dataclass(frozen=True)
class OutboxPublicKey:
    """The clinic server's public outbox key: all a kiosk needs, and all it has."""

    kem: KemName
    raw: bytes

    @property
    def key_id(self) -> str:
        return _key_id(self.kem, self.raw)

    def sealer(self) -> Sealer:
        return Sealer(self)

    def to_json(self) -> str:
        doc = {
            "format": _PUBLIC_FORMAT,
            "kem": self.kem,
            "key_id": self.key_id,
            "public": base64.b64encode(self.raw).decode("ascii"),
        }
        return json.dumps(doc, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "outbox public key") -> OutboxPublicKey:
        try:
            doc = json.loads(text)
            if doc.get("format") != _PUBLIC_FORMAT:
                raise ValueError(f"format is not {_PUBLIC_FORMAT}")
            kem = _check_kem(doc.get("kem"))
            raw = base64.b64decode(doc["public"], validate=True)
            _public_from_raw(kem, raw)
        except ConfigError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError, binascii.Error) as exc:
            raise ConfigError(f"{source} is not a valid outbox public key: {exc}") from exc
        key = cls(kem, raw)
        if doc.get("key_id", key.key_id) != key.key_id:
            raise ConfigError(f"{source}: key_id does not match the key")
        return key

    @classmethod
    def load(cls, path: Path) -> OutboxPublicKey:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the outbox public key {path}: {exc}") from exc
        return cls.from_json(text, source=str(path))


@dataclass(frozen=True)
class OutboxPrivateKey:
    """The clinic server's private outbox key. It never goes to a kiosk."""

    kem: KemName
    raw: bytes

    @classmethod
    def generate(cls, kem: KemName = DEFAULT_KEM) -> OutboxPrivateKey:
        kem = _check_kem(kem)
        x = x25519.X25519PrivateKey.generate().private_bytes_raw()
        if kem == "x25519":
            return cls(kem, x)
        seed = mlkem.MLKEM768PrivateKey.generate().private_bytes_raw()
        return cls(kem, seed + x)

    def _key(self) -> _PrivateKey:
        if self.kem == "x25519":
            return x25519.X25519PrivateKey.from_private_bytes(self.raw)
        return hpke.MLKEM768X25519PrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(self.raw[:_MLKEM_SEED]),
            x25519.X25519PrivateKey.from_private_bytes(self.raw[_MLKEM_SEED:]),
        )

    def public_key(self) -> OutboxPublicKey:
        if self.kem == "x25519":
            raw = x25519.X25519PrivateKey.from_private_bytes(self.raw).public_key()
            return OutboxPublicKey(self.kem, raw.public_bytes_raw())
        ml = mlkem.MLKEM768PrivateKey.from_seed_bytes(self.raw[:_MLKEM_SEED])
        xk = x25519.X25519PrivateKey.from_private_bytes(self.raw[_MLKEM_SEED:])
        return OutboxPublicKey(
            self.kem, ml.public_key().public_bytes_raw() + xk.public_key().public_bytes_raw()
        )

    def opener(self) -> Opener:
        return Opener(self)

    def to_json(self) -> str:
        doc = {
            "format": _PRIVATE_FORMAT,
            "kem": self.kem,
            "key_id": self.public_key().key_id,
            "private": base64.b64encode(self.raw).decode("ascii"),
        }
        return json.dumps(doc, indent=1) + "\n"

    def save(self, path: Path) -> None:
        """Write the key readable by its owner only; refuses to overwrite a key."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self.to_json())
            f.flush()
            os.fsync(f.fileno())

    @classmethod
    def load(cls, path: Path) -> OutboxPrivateKey:
        doc = _read_json(path, "outbox private key")
        try:
            if doc.get("format") != _PRIVATE_FORMAT:
                raise ValueError(f"format is not {_PRIVATE_FORMAT}")
            kem = _check_kem(doc.get("kem"))
            raw = base64.b64decode(doc["private"], validate=True)
            expected = _X25519 if kem == "x25519" else _MLKEM_SEED + _X25519
            if len(raw) != expected:
                raise ValueError(f"a {kem} private key is {expected} bytes")
            key = cls(kem, raw)
            key._key()
        except ConfigError:
            raise
        except (KeyError, ValueError, binascii.Error) as exc:
            raise ConfigError(f"{path} is not a valid outbox private key: {exc}") from exc
        if doc.get("key_id", key.public_key().key_id) != key.public_key().key_id:
            raise ConfigError(f"{path}: key_id does not match the key")
        return key


class Sealer:
    """Seals bodies on the kiosk; keeps the parsed public key for speed."""

    def __init__(self, key: OutboxPublicKey) -> None:
        self.kem = key.kem
        self.key_id = key.key_id
        self._key = _public_from_raw(key.kem, key.raw)
        self._suite = _SUITES[key.kem]
        kem = hpke.KEM.X25519 if key.kem == "x25519" else hpke.KEM.MLKEM768_X25519
        #: Bytes a sealed body has on top of its plaintext (encapsulated key and tag).
        self.overhead = kem.enc_length() + _AEAD_TAG

    def seal(self, plaintext: bytes, header: RecordHeader) -> bytes:
        """Seal ``plaintext`` for the server, bound to ``header``."""
        if header.key_id != self.key_id:
            raise ValueError("the header names another outbox key")
        return self._suite.encrypt(plaintext, self._key, info=header.info())


class Opener:
    """Opens sealed bodies on the server; keeps the parsed key for speed."""

    def __init__(self, key: OutboxPrivateKey) -> None:
        self.kem = key.kem
        self.key_id = key.public_key().key_id
        self._key = key._key()
        self._suite = _SUITES[key.kem]

    def open(self, sealed: bytes, header: RecordHeader) -> bytes:
        """The plaintext body; UnsealError if it was not sealed for this key and header."""
        if header.key_id != self.key_id:
            raise UnsealError(f"sealed to another outbox key ({header.key_id})")
        try:
            return self._suite.decrypt(sealed, self._key, info=header.info())
        except (InvalidTag, ValueError) as exc:
            raise UnsealError(f"sealed body does not open: {type(exc).__name__}") from None
