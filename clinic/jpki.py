"""Patients' certificates: the JPKI user-authentication CAs the clinic trusts, and their CRLs.

``JpkiTrust`` answers the certificate checks of a verification, in the order the server makes
them (after the nonce and the signature): is it an end-entity certificate shaped like a user's
(not a CA, KeyUsage ``digitalSignature``) issued directly by a configured CA, is it
on that CA's current CRL, is it within its validity or the three-month grace after expiry that
still allows eligibility checks (docs/eligibility.md).

CRLs come from a file path or an http(s) URL and are refreshed on a schedule by the server
(``refresh``); a CRL is accepted only when the CA it names signed it. With no current CRL for a
CA the revocation check cannot be made, and the verification stops with
``revocation.unavailable`` rather than passing a possibly revoked card.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from clinic.crl_store import CrlStore, StoredCrl, issuer_key
from clinic.errors import StorageError

log = logging.getLogger(__name__)

GRACE_MONTHS = 3

#: A CRL past its nextUpdate is still used for this long (a late publication is common).
CRL_OVERDUE_TOLERANCE = dt.timedelta(hours=24)


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """``moment`` plus calendar months, the day clamped to the target month's length."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def verify_card_signature(certificate: x509.Certificate, message: bytes, signature: bytes) -> bool:
    """RSA PKCS#1 v1.5 with SHA-256, as the card computes it (docs/card.md)."""
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def user_shape_problem(
    certificate: x509.Certificate, cas: Sequence[x509.Certificate]
) -> str | None:
    """Why ``certificate`` is not shaped like a JPKI user-authentication certificate, or None.

    The chain is one step, from a configured CA to an end entity: the certificate is neither
    a configured CA nor self-issued, its BasicConstraints (when present) say ``ca=False``, and
    its KeyUsage is present, allows ``digitalSignature`` (the card signs the challenge) and
    neither certificate nor CRL signing.
    """
    fingerprint = certificate.fingerprint(hashes.SHA256())
    if any(ca.fingerprint(hashes.SHA256()) == fingerprint for ca in cas):
        return "a configured CA's own certificate"
    if certificate.subject == certificate.issuer:
        return "self-issued"
    try:
        extensions = certificate.extensions
    except ValueError:
        return "unreadable extensions"
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return "a CA certificate (BasicConstraints ca=True)"
    except x509.ExtensionNotFound:
        pass
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return "no KeyUsage"
    if not usage.digital_signature:
        return "KeyUsage without digitalSignature"
    if usage.key_cert_sign or usage.crl_sign:
        return "KeyUsage allows certificate or CRL signing"
    return None


Validity = Literal["valid", "in_grace", "expired", "not_yet_valid"]


def validity_at(certificate: x509.Certificate, now: dt.datetime) -> Validity:
    if now < certificate.not_valid_before_utc:
        return "not_yet_valid"
    not_after = certificate.not_valid_after_utc
    if now <= not_after:
        return "valid"
    if now <= add_months(not_after, GRACE_MONTHS):
        return "in_grace"
    return "expired"


@dataclass(frozen=True)
class CrlState:
    """The CRL in force for one CA."""

    revoked: frozenset[int]
    this_update: dt.datetime
    next_update: dt.datetime | None
    source: str
    loaded_at: dt.datetime


class JpkiTrust:
    """The configured JPKI user-authentication CAs and their revocation lists."""

    def __init__(
        self,
        cas: Sequence[x509.Certificate],
        crl_sources: Sequence[str] = (),
        *,
        fetch: Callable[[str], bytes] | None = None,
    ) -> None:
        self._cas = list(cas)
        self._crl_sources = list(crl_sources)
        self._fetch = fetch or fetch_source
        self._crls: dict[bytes, CrlState] = {}  # CA subject DER -> CRL
        self._chain_cache: dict[bytes, x509.Certificate | None] = {}
        self._lock = threading.Lock()
        self._store: CrlStore | None = None
        #: The last refresh problem, shown on the dashboard; None when all went well.
        self.last_error: str | None = None

    @classmethod
    def from_files(cls, ca_files: Sequence[Path], crl_sources: Sequence[str] = ()) -> JpkiTrust:
        cas: list[x509.Certificate] = []
        for path in ca_files:
            cas.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        return cls(cas, crl_sources)

    @property
    def cas(self) -> list[x509.Certificate]:
        return list(self._cas)

    # -- chain --

    def issuer_of(self, certificate: x509.Certificate) -> x509.Certificate | None:
        """The configured CA that issued ``certificate`` as a user's certificate, or None.

        None also when ``certificate`` is not shaped like a user's (``user_shape_problem``):
        a CA's own certificate, however well signed, is not a patient's.
        """
        key = certificate.fingerprint(hashes.SHA256())
        cached = self._chain_cache.get(key, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        found: x509.Certificate | None = None
        problem = user_shape_problem(certificate, self._cas)
        if problem is not None:
            log.info("card certificate refused: %s", problem)
        for ca in [] if problem is not None else self._cas:
            if certificate.issuer != ca.subject or not _is_ca(ca):
                continue
            try:
                certificate.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            found = ca
            break
        if len(self._chain_cache) > 100_000:
            self._chain_cache.clear()
        self._chain_cache[key] = found
        return found

    # -- revocation --

    def is_revoked(
        self, certificate: x509.Certificate, ca: x509.Certificate, now: dt.datetime
    ) -> bool | None:
        """True/False, or None when no current CRL for ``ca`` is loaded."""
        state = self._crls.get(ca.subject.public_bytes())
        if state is None:
            return None
        if state.next_update is not None and now > state.next_update + CRL_OVERDUE_TOLERANCE:
            return None
        return certificate.serial_number in state.revoked

    def crl_status(self) -> list[CrlState]:
        return list(self._crls.values())

    def share_through(self, store: CrlStore) -> None:
        """Store the CRLs this instance fetches, and take newer ones other instances stored."""
        self._store = store

    def refresh(self, now: dt.datetime | None = None) -> None:
        """Fetch every CRL source again; keep the old CRL of a source that fails."""
        now = now or dt.datetime.now(dt.UTC)
        errors: list[str] = []
        for source in self._crl_sources:
            try:
                data = self._fetch(source)
                ca, state, der = self._install(source, data, now)
            except (OSError, ValueError, httpx.HTTPError) as exc:
                errors.append(f"{source}: {exc}")
                log.warning("CRL refresh failed for %s: %s", source, exc)
                continue
            self._share(ca, state, der, now)
        self.last_error = "; ".join(errors) or None
        self.load_shared(now)

    def load_shared(self, now: dt.datetime | None = None) -> None:
        """Put in force the stored CRLs that are newer than ours (``clinic.crl_store``)."""
        if self._store is None:
            return
        now = now or dt.datetime.now(dt.UTC)
        with self._lock:
            in_force = {issuer_key(k): s.this_update.timestamp() for k, s in self._crls.items()}
        configured = {issuer_key(ca.subject.public_bytes()) for ca in self._cas}
        try:
            stored = self._store.newer_than(in_force)
        except StorageError as exc:
            log.warning("the CRLs other instances stored cannot be read: %s", exc)
            return
        for crl in stored:
            if crl.issuer not in configured:
                continue
            try:
                self._install(crl.source, crl.der, now)
            except ValueError as exc:
                log.warning("a CRL stored in the database was refused: %s", exc)

    def _share(self, ca: bytes, state: CrlState, der: bytes, now: dt.datetime) -> None:
        if self._store is None:
            return
        crl = StoredCrl(issuer_key(ca), state.this_update.timestamp(), der, state.source)
        try:
            self._store.save(crl, now=now.timestamp())
        except StorageError as exc:
            log.warning(
                "the CRL from %s could not be stored for other instances: %s", state.source, exc
            )

    def _install(self, source: str, data: bytes, now: dt.datetime) -> tuple[bytes, CrlState, bytes]:
        """Check a CRL and put it in force: its CA's subject (DER), its state, its DER."""
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_crl(data)
        )
        for ca in self._cas:
            if crl.issuer != ca.subject:
                continue
            key = ca.public_key()
            if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
                continue
            if not crl.is_signature_valid(key):
                raise ValueError("CRL signature does not verify against its CA")
            state = CrlState(
                revoked=frozenset(entry.serial_number for entry in crl),
                this_update=crl.last_update_utc,
                next_update=crl.next_update_utc,
                source=source,
                loaded_at=now,
            )
            subject = ca.subject.public_bytes()
            with self._lock:
                old = self._crls.get(subject)
                if old is not None and old.this_update > state.this_update:
                    raise ValueError("CRL is older than the one in force")
                self._crls[subject] = state
            return subject, state, crl.public_bytes(serialization.Encoding.DER)
        raise ValueError("CRL issuer is not a configured JPKI CA")


def fetch_source(source: str) -> bytes:
    """The bytes at a file path or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        response = httpx.get(source, timeout=httpx.Timeout(10.0), follow_redirects=True)
        response.raise_for_status()
        return response.content
    return Path(source.removeprefix("file://")).read_bytes()
