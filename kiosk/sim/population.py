"""A synthetic population of cards and insured persons for tests, demos and training.

``generate_population(out, count, seed=..., today=...)`` writes::

    out/ca/jpki-ca.pem          the simulated JPKI user-authentication CA certificate
    out/ca/jpki-ca.key.pem      its private key (mode 0600; generated, never committed)
    out/ca/jpki-ca.crl.pem      its CRL, revoking the certificates of the revoked cards
    out/cards/<id>.toml         one card profile per card (kiosk.sim.profile; mode 0600)
    out/insured.jsonl           what the national system knows, one line per JPKI card
    out/population.json         the manifest: each card, its outcome and what to expect

The formats are specified in ``kiosk/sim/FORMATS.md`` (the simulated national system and the
clinic server load ``insured.jsonl``); in short:

- ``insured.jsonl``: UTF-8, one JSON object per line, for every card that has a JPKI
  user-authentication certificate: ``{"card_id", "certificate": {"issuer": RFC 4514,
  "serial": decimal string}, "validity_code": 1-5, "records": [...]}``. ``validity_code`` is
  what the national system answers when the certificate itself is acceptable (1 有効, 2 無効,
  3 無効・新しい資格あり, 4 該当資格なし, 5 複数該当). Records use the field names of the national
  interface (docs/eligibility.md); every field is present, ``null`` when absent, and
  ``PublicExpenseInfo`` is a list (empty when none). Validity 4 has no records; validity 3
  lists the invalid record first and the newer qualification second; validity 5 lists both
  matches. Revoked and expired certificates keep their records: the clinic server refuses
  them before asking the national system.
- ``population.json``: ``{"format": 1, "today", "seed", "ca": {...}, "insured", "cards": [...]}``
  with, per card, ``id``, ``profile`` (path relative to ``out``), ``kind``, ``token_label``,
  ``outcome``, ``features``, ``expected_validity_code`` (null when no check can be made with
  this card), ``expected_route`` (``ok`` / ``staff`` / ``error``), ``certificate``
  (``issuer``, ``serial``, ``not_before``, ``not_after``, or null) and ``pin_present``.

The cards cycle through :data:`OUTCOMES` in order, so any count of at least
``len(OUTCOMES)`` (21) contains every outcome. Everything but the RSA keys is reproducible
from ``seed`` and ``today``. People are obviously fictional: surnames such as 見本 (sample) and
試験 (test), towns that do not exist, a My Number never stored anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from random import Random
from typing import Any

from cryptography.hazmat.primitives import serialization

from kiosk.sim.outcomes import INSURANCE_PLANS, JST, OUTCOMES, CertificateState, Route
from kiosk.sim.people import (
    COMPANIES,
    GIVEN_NAMES,
    PREFECTURES,
    SURNAMES,
    TOWNS,
    Person,
    birthday_in,
    check_digit,
    fifth_birthday_after,
    half_width_katakana,
    yyyymmdd,
)
from kiosk.sim.pki import CA_CERTIFICATE_FILE, CA_KEY_FILE, CRL_FILE, TestJpkiCa, new_rsa_key
from kiosk.sim.profile import PIN_MAX_TRIES, CardKind, CardProfile

# --- the files' description of a card ----------------------------------------------------------

MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class PopulationCard:
    """One card of a population, as the manifest describes it."""

    id: str
    profile_path: Path
    kind: CardKind
    outcome: str
    features: tuple[str, ...]
    expected_validity_code: int | None
    expected_route: Route
    certificate_issuer: str | None
    certificate_serial: str | None
    pin_present: bool

    def load_profile(self) -> CardProfile:
        return CardProfile.load(self.profile_path)


@dataclass(frozen=True)
class Population:
    """A generated population: where it is and what it holds."""

    root: Path
    today: date
    seed: int | None
    cards: tuple[PopulationCard, ...]

    @property
    def ca_directory(self) -> Path:
        return self.root / "ca"

    @property
    def crl_path(self) -> Path:
        return self.ca_directory / CRL_FILE

    @property
    def insured_path(self) -> Path:
        return self.root / "insured.jsonl"

    def card(self, outcome: str) -> PopulationCard:
        """The first card with this outcome."""
        for card in self.cards:
            if card.outcome == outcome:
                return card
        raise KeyError(f"no card with outcome {outcome!r} in {self.root}")

    def load_ca(self) -> TestJpkiCa:
        return TestJpkiCa.load(self.ca_directory)

    @classmethod
    def load(cls, root: Path) -> Population:
        """Read the manifest ``root/population.json``."""
        manifest = json.loads((root / "population.json").read_text(encoding="utf-8"))
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{root}: unknown population format {manifest.get('format')!r}")
        cards = tuple(
            PopulationCard(
                id=entry["id"],
                profile_path=root / entry["profile"],
                kind=CardKind(entry["kind"]),
                outcome=entry["outcome"],
                features=tuple(entry["features"]),
                expected_validity_code=entry["expected_validity_code"],
                expected_route=entry["expected_route"],
                certificate_issuer=(entry["certificate"] or {}).get("issuer"),
                certificate_serial=(entry["certificate"] or {}).get("serial"),
                pin_present=entry["pin_present"],
            )
            for entry in manifest["cards"]
        )
        return cls(root, date.fromisoformat(manifest["today"]), manifest["seed"], cards)


class _Generator:
    """Draws everything from one seeded random source, in a fixed order."""

    def __init__(self, rng: Random, today: date) -> None:
        self.rng = rng
        self.today = today
        self._serials: set[int] = set()

    def person(self, ages: tuple[int, int], birthday: date | None = None) -> Person:
        rng = self.rng
        age = rng.randint(*ages)
        if birthday is None:
            latest = birthday_in(self.today, self.today.year - age)
            birthdate = latest - timedelta(days=rng.randint(0, 364))
        else:  # the month and day are given (a certificate expiring on this birthday)
            birthdate = birthday_in(birthday, self.today.year - age)
        sex = rng.choice(("1", "2"))
        surname, surname_kana = rng.choice(SURNAMES)
        given, given_kana = rng.choice(GIVEN_NAMES[sex])
        prefecture = rng.choice(PREFECTURES)
        address = (
            f"{prefecture.name}{prefecture.city}{rng.choice(TOWNS)}"
            f"{rng.randint(1, 5)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
        )
        return Person(
            name=f"{surname}　{given}",
            name_kana=half_width_katakana(f"{surname_kana}　{given_kana}"),
            sex=sex,
            birthdate=birthdate,
            address=address,
            post_number=f"{prefecture.post_prefix}-{rng.randint(0, 9999):04d}",
            prefecture=prefecture,
        )

    def serial(self) -> int:
        while True:
            serial = self.rng.randrange(10**7, 10**9)
            if serial not in self._serials:
                self._serials.add(serial)
                return serial

    def days_ago(self, low: int, high: int) -> date:
        return self.today - timedelta(days=self.rng.randint(low, high))

    def next_july_31(self) -> date:
        """Elderly, NHI and 後期高齢者 certificates renew on 1 August."""
        end = date(self.today.year, 7, 31)
        return end if end >= self.today else date(self.today.year + 1, 7, 31)

    # --- insurers --------------------------------------------------------------------------

    def employee_insurer(self, person: Person) -> dict[str, Any]:
        rng, prefecture = self.rng, person.prefecture
        if rng.random() < 0.5:  # 協会けんぽ: 法別番号 01
            body = f"01{prefecture.code}{rng.randint(1, 9):03d}"
            return {
                "InsurerNumber": body + check_digit(body),
                "InsurerName": f"全国健康保険協会 {prefecture.branch}支部",
                "InsuredCardSymbol": str(rng.randrange(10**7, 10**8)),
                "InsuredIdentificationNumber": str(rng.randint(1, 1999)),
            }
        body = f"06{prefecture.code}{rng.randint(100, 999)}"  # 健康保険組合: 法別番号 06
        return {
            "InsurerNumber": body + check_digit(body),
            "InsurerName": f"{rng.choice(COMPANIES)}健康保険組合",
            "InsuredCardSymbol": str(rng.randint(1, 99)),
            "InsuredIdentificationNumber": str(rng.randint(1, 9999)),
        }

    def national_insurer(self, person: Person) -> dict[str, Any]:
        rng, prefecture = self.rng, person.prefecture
        body = f"{prefecture.code}{rng.randint(900, 999)}"  # 6 digits, no 法別番号
        return {
            "InsurerNumber": body + check_digit(body),
            "InsurerName": prefecture.city,
            "InsuredCardSymbol": f"{rng.randint(1, 99):02d}",
            "InsuredIdentificationNumber": f"{rng.randrange(10**6, 10**7)}",
        }

    def late_elderly_insurer(self, person: Person) -> dict[str, Any]:
        prefecture = person.prefecture
        body = f"39{prefecture.code}{self.rng.randint(1, 9):03d}"  # 後期高齢者医療: 法別番号 39
        return {
            "InsurerNumber": body + check_digit(body),
            "InsurerName": f"{prefecture.name}後期高齢者医療広域連合",
            "InsuredCardSymbol": None,
            "InsuredIdentificationNumber": f"{self.rng.randrange(10**7, 10**8)}",
        }

    # --- records ---------------------------------------------------------------------------

    def record(
        self,
        person: Person,
        insurer: dict[str, Any],
        *,
        family: bool = False,
        ratio: str = "030",
        qualified: date | None = None,
        card_expires: date | None = None,
    ) -> dict[str, Any]:
        if qualified is None:  # some day since coming of age, within the last 20 years
            adult = birthday_in(person.birthdate, person.birthdate.year + 18)
            earliest = max(adult, self.today - timedelta(days=20 * 365))
            latest = self.today - timedelta(days=30)
            qualified = earliest + timedelta(
                days=self.rng.randint(0, max(0, (latest - earliest).days))
            )
        return {
            "InsuredCardClassification": "01",
            "InsurerNumber": insurer["InsurerNumber"],
            "InsurerName": insurer["InsurerName"],
            "InsuredCardSymbol": insurer["InsuredCardSymbol"],
            "InsuredIdentificationNumber": insurer["InsuredIdentificationNumber"],
            "InsuredBranchNumber": f"{self.rng.randint(1, 3):02d}" if family else "00",
            "PersonalFamilyClassification": "2" if family else "1",
            "Name": person.name,
            "NameKana": person.name_kana,
            "Sex1": person.sex,
            "Birthdate": yyyymmdd(person.birthdate),
            "Address": person.address,
            "PostNumber": person.post_number,
            "QualificationDate": yyyymmdd(qualified),
            "DisqualificationDate": None,
            "InsuredCardValidDate": yyyymmdd(qualified),
            "InsuredCardExpirationDate": yyyymmdd(card_expires),
            "InsuredPartialContributionRatio": ratio,
            "PreschoolClassification": None,
            "ReasonOfLoss": None,
            "ElderlyRecipientCertificateInfo": None,
            "LimitApplicationCertificateRelatedInfo": None,
            "PublicExpenseInfo": [],
        }

    def records(self, plan: str, person: Person) -> list[dict[str, Any]]:
        """The national system's records for ``person`` under insurance ``plan``."""
        rng = self.rng
        if plan in ("employee", "several", "disqualified", "newer"):
            main = self.record(person, self.employee_insurer(person))
            if plan == "disqualified":
                main["DisqualificationDate"] = yyyymmdd(self.days_ago(10, 120))
                main["ReasonOfLoss"] = rng.choice(("02", "99"))
                return [main]
            if plan == "newer":  # left the job, joined the municipal NHI the same day
                lost = self.days_ago(10, 120)
                main["DisqualificationDate"] = yyyymmdd(lost)
                main["ReasonOfLoss"] = "03"
                newer = self.record(
                    person,
                    self.national_insurer(person),
                    qualified=lost,
                    card_expires=self.next_july_31(),
                )
                return [main, newer]
            if plan == "several":  # registered twice: the employer's and the municipal one
                other = self.record(
                    person, self.national_insurer(person), card_expires=self.next_july_31()
                )
                return [main, other]
            return [main]
        if plan == "family":
            return [self.record(person, self.employee_insurer(person), family=True)]
        if plan == "national":
            return [
                self.record(person, self.national_insurer(person), card_expires=self.next_july_31())
            ]
        if plan == "late-elderly":
            return [
                self.record(
                    person,
                    self.late_elderly_insurer(person),
                    ratio=rng.choice(("010", "030")),
                    qualified=birthday_in(person.birthdate, person.birthdate.year + 75),
                    card_expires=self.next_july_31(),
                )
            ]
        if plan in ("elderly-20", "elderly-30-limit"):
            ratio = "020" if plan == "elderly-20" else "030"
            insurer = (
                self.employee_insurer(person)
                if rng.random() < 0.5
                else self.national_insurer(person)
            )
            record = self.record(person, insurer, ratio=ratio)
            start = self._elderly_start(person)
            record["ElderlyRecipientCertificateInfo"] = {
                "ElderlyRecipientCertificateDate": yyyymmdd(start - timedelta(days=14)),
                "ElderlyRecipientValidStartDate": yyyymmdd(start),
                "ElderlyRecipientValidEndDate": yyyymmdd(self.next_july_31()),
                "ElderlyRecipientContributionRatio": ratio,
            }
            if plan == "elderly-30-limit":
                limit_start = max(start, self.today.replace(day=1))
                record["LimitApplicationCertificateRelatedInfo"] = {
                    "LimitApplicationCertificateClassification": "01",
                    # B02 現役並みⅡ, B03 現役並みⅠ (the classes a 30 % elderly recipient holds)
                    "LimitApplicationCertificateClassificationFlag": rng.choice(("B02", "B03")),
                    "LimitApplicationCertificateDate": yyyymmdd(limit_start - timedelta(days=7)),
                    "LimitApplicationCertificateValidStartDate": yyyymmdd(limit_start),
                    "LimitApplicationCertificateValidEndDate": yyyymmdd(self.next_july_31()),
                    "LimitApplicationCertificateLongTermDate": None,
                }
            return [record]
        if plan == "preschool-public-expense":
            record = self.record(
                person,
                self.employee_insurer(person),
                family=True,
                ratio="020",
                qualified=person.birthdate,
            )
            record["PreschoolClassification"] = "1"
            payer = f"88{person.prefecture.code}{rng.randint(100, 999)}"  # 乳幼児医療 (local)
            beneficiary = f"{rng.randrange(10**5, 10**6)}"
            record["PublicExpenseInfo"] = [
                {
                    "PublicExpenseNumber": payer + check_digit(payer),
                    "BeneficiaryNumber": beneficiary + check_digit(beneficiary),
                }
            ]
            return [record]
        if plan == "none":
            return []
        raise ValueError(f"unknown insurance plan {plan!r}")

    def _elderly_start(self, person: Person) -> date:
        """高齢受給者証: from the month after the 70th birthday (the day itself if the 1st),
        renewed every 1 August."""
        seventy = birthday_in(person.birthdate, person.birthdate.year + 70)
        if seventy.day == 1:
            start = seventy
        else:
            start = date(seventy.year + seventy.month // 12, seventy.month % 12 + 1, 1)
        renewal = date(self.today.year if self.today.month >= 8 else self.today.year - 1, 8, 1)
        return max(start, renewal)

    # --- certificates ----------------------------------------------------------------------

    def certificate_dates(self, state: CertificateState, person: Person) -> tuple[date, date]:
        """(issued, expires) for the user-authentication certificate."""
        if state in ("expired-in-grace", "expired-past-grace"):
            expires = birthday_in(person.birthdate, self.today.year)
            if expires > self.today:
                expires = birthday_in(person.birthdate, self.today.year - 1)
            issued = birthday_in(person.birthdate, expires.year - 5) + timedelta(
                days=self.rng.randint(1, 300)
            )
            return issued, expires
        born_plus = person.birthdate + timedelta(days=30)
        issued = max(self.days_ago(30, 4 * 365 - 1), born_plus)
        if issued >= self.today:
            issued = self.today - timedelta(days=1)
        return issued, fifth_birthday_after(issued, person.birthdate)

    def expiry_birthday(self, state: CertificateState) -> date | None:
        """For expired certificates, the birthday (month, day) that makes them expire when wanted:
        about a month ago inside the grace period, about four months ago past it."""
        if state == "expired-in-grace":
            return self.days_ago(20, 45)
        if state == "expired-past-grace":
            return self.days_ago(110, 150)
        return None


# --- the population --------------------------------------------------------------------------


def generate_population(
    out: Path, count: int, *, seed: int | None = None, today: date | None = None
) -> Population:
    """Write a population of ``count`` cards into ``out`` (see the module docstring).

    ``out`` must be empty, missing, or an earlier population (whose cards are replaced).
    """
    if count < 1:
        raise ValueError("a population has at least one card")
    today = today or datetime.now(JST).date()
    _prepare(out)
    rng = Random(seed)
    generator = _Generator(rng, today)
    ca = TestJpkiCa.create(now=datetime.combine(today, time(9, 0), JST))
    ca.save(out / "ca")
    issuer = ca.certificate.subject.rfc4514_string()

    cards: list[PopulationCard] = []
    manifest_cards: list[dict[str, Any]] = []
    insured_lines: list[str] = []
    revoked: list[int] = []
    for index in range(count):
        outcome = OUTCOMES[index % len(OUTCOMES)]
        card_id = f"p{index + 1:03d}-{outcome.name}"
        plan = INSURANCE_PLANS[outcome.insurance]
        person = generator.person(plan.ages, generator.expiry_birthday(outcome.certificate))
        records = generator.records(outcome.insurance, person)
        pin = f"{rng.randint(0, 9999):04d}"
        tries = {"locked": 0, "one-left": 1}.get(outcome.pin, PIN_MAX_TRIES)
        serial = generator.serial() if outcome.kind.has_user_authentication else None
        issued, expires = generator.certificate_dates(outcome.certificate, person)
        profile_path = out / "cards" / f"{card_id}.toml"
        profile = CardProfile.generate(
            outcome.kind,
            ca,
            id=card_id,
            pin=pin if outcome.pin != "none" and outcome.kind is not CardKind.NON_JPKI else None,
            pin_tries_left=tries,
            not_before=datetime.combine(issued, time(9, 0), JST),
            not_after=datetime.combine(expires, time(23, 59, 59), JST),
            serial=serial,
            key=new_rsa_key() if outcome.kind.has_user_authentication else None,
            outcome=outcome.name,
            pin_verified_on_phone=outcome.pin == "verified-on-phone",
            path=profile_path,
        )
        certificate_entry = None
        if serial is not None:
            certificate = profile.certificate()
            certificate_entry = {
                "issuer": issuer,
                "serial": str(serial),
                "not_before": certificate.not_valid_before_utc.isoformat(),
                "not_after": certificate.not_valid_after_utc.isoformat(),
            }
            if outcome.certificate == "revoked":
                revoked.append(serial)
            insured_lines.append(
                json.dumps(
                    {
                        "card_id": card_id,
                        "certificate": {"issuer": issuer, "serial": str(serial)},
                        "validity_code": outcome.validity_code,
                        "records": records,
                    },
                    ensure_ascii=False,
                )
            )
        manifest_cards.append(
            {
                "id": card_id,
                "profile": profile_path.relative_to(out).as_posix(),
                "kind": str(outcome.kind),
                "token_label": outcome.kind.token_label,
                "outcome": outcome.name,
                "features": list(outcome.features),
                "expected_validity_code": outcome.expected_validity_code,
                "expected_route": outcome.route,
                "certificate": certificate_entry,
                "pin_present": profile.pin is not None,
            }
        )
        cards.append(
            PopulationCard(
                id=card_id,
                profile_path=profile_path,
                kind=outcome.kind,
                outcome=outcome.name,
                features=outcome.features,
                expected_validity_code=outcome.expected_validity_code,
                expected_route=outcome.route,
                certificate_issuer=issuer if serial is not None else None,
                certificate_serial=str(serial) if serial is not None else None,
                pin_present=profile.pin is not None,
            )
        )

    this_update = datetime.combine(today, time(0, 0), JST)
    crl = ca.crl(revoked, this_update=this_update, next_update=this_update + timedelta(days=30))
    (out / "ca" / CRL_FILE).write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    (out / "insured.jsonl").write_text(
        "".join(line + "\n" for line in insured_lines), encoding="utf-8"
    )
    manifest = {
        "format": MANIFEST_FORMAT,
        "today": today.isoformat(),
        "seed": seed,
        "ca": {
            "certificate": f"ca/{CA_CERTIFICATE_FILE}",
            "key": f"ca/{CA_KEY_FILE}",
            "crl": f"ca/{CRL_FILE}",
            "subject": issuer,
        },
        "insured": "insured.jsonl",
        "cards": manifest_cards,
    }
    (out / "population.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return Population(out, today, seed, tuple(cards))


def _prepare(out: Path) -> None:
    """Refuse to write into a folder that holds something other than a population."""
    if out.exists() and any(out.iterdir()):
        if not (out / "population.json").is_file():
            raise FileExistsError(f"{out} is not empty and holds no population.json")
        for stale in (out / "cards").glob("*.toml"):
            stale.unlink()
    (out / "cards").mkdir(parents=True, exist_ok=True)
