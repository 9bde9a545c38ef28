"""The generated population covers every outcome with consistent, parseable files."""

from __future__ import annotations

import json
import stat
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.outcomes import GRACE_DAYS, OUTCOMES
from kiosk.sim.people import age_on, check_digit, fifth_birthday_after, half_width_katakana
from kiosk.sim.population import Population, generate_population
from kiosk.sim.profile import CardKind, CardProfile

TODAY = date(2026, 3, 15)
SEED = 7
RECORD_FIELDS = {
    "InsuredCardClassification", "InsurerNumber", "InsurerName", "InsuredCardSymbol",
    "InsuredIdentificationNumber", "InsuredBranchNumber", "PersonalFamilyClassification",
    "Name", "NameKana", "Sex1", "Birthdate", "Address", "PostNumber", "QualificationDate",
    "DisqualificationDate", "InsuredCardValidDate", "InsuredCardExpirationDate",
    "InsuredPartialContributionRatio", "PreschoolClassification", "ReasonOfLoss",
    "ElderlyRecipientCertificateInfo", "LimitApplicationCertificateRelatedInfo",
    "PublicExpenseInfo",
}  # fmt: skip


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Population:
    return generate_population(
        tmp_path_factory.mktemp("population"), len(OUTCOMES), seed=SEED, today=TODAY
    )


@pytest.fixture(scope="module")
def insured(population: Population) -> dict[str, dict[str, Any]]:
    lines = population.insured_path.read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    return {entry["card_id"]: entry for entry in entries}


def records_of(insured: dict[str, dict[str, Any]], population: Population, outcome: str):
    return insured[population.card(outcome).id]["records"]


def birthdate(record: dict[str, Any]) -> date:
    return date.fromisoformat(
        f"{record['Birthdate'][:4]}-{record['Birthdate'][4:6]}-{record['Birthdate'][6:]}"
    )


def test_one_card_per_outcome_covers_every_outcome_in_order(population):
    assert len(OUTCOMES) == 21
    assert [card.outcome for card in population.cards] == [o.name for o in OUTCOMES]
    assert population.cards[0].id == "p001-valid-employee"
    assert all(card.id.startswith(f"p{i:03d}-") for i, card in enumerate(population.cards, 1))


def test_a_larger_population_cycles_through_the_outcomes(tmp_path):
    bigger = generate_population(tmp_path / "p", 24, seed=1, today=TODAY)
    assert [card.outcome for card in bigger.cards[21:]] == [o.name for o in OUTCOMES[:3]]
    assert bigger.cards[23].id == "p024-valid-national"


def test_the_manifest_reads_back_as_the_population(population):
    assert Population.load(population.root) == population


def test_every_profile_loads_and_makes_a_card(population):
    for card in population.cards:
        profile = card.load_profile()
        assert profile.id == card.id
        assert profile.kind is card.kind
        assert profile.outcome == card.outcome
        assert (profile.pin is not None) == card.pin_present
        VirtualJpkiCard(profile)
        assert stat.S_IMODE(card.profile_path.stat().st_mode) == 0o600


def test_the_ca_key_is_private_and_the_ca_loads(population):
    assert stat.S_IMODE((population.ca_directory / "jpki-ca.key.pem").stat().st_mode) == 0o600
    ca = population.load_ca()
    for card in population.cards:
        if card.kind.has_user_authentication:
            card.load_profile().certificate().verify_directly_issued_by(ca.certificate)


def test_the_crl_revokes_exactly_the_revoked_cards(population):
    crl = x509.load_pem_x509_crl(population.crl_path.read_bytes())
    public_key = population.load_ca().certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert crl.is_signature_valid(public_key)
    revoked = {str(entry.serial_number) for entry in crl}
    expected = {
        c.certificate_serial for c in population.cards if c.outcome == "revoked-certificate"
    }
    assert revoked == expected
    assert len(revoked) == 1


def test_manifest_certificate_identity_matches_the_profile(population):
    for card in population.cards:
        if not card.kind.has_user_authentication:
            assert card.certificate_serial is None
            continue
        certificate = card.load_profile().certificate()
        assert card.certificate_serial == str(certificate.serial_number)
        assert card.certificate_issuer == certificate.issuer.rfc4514_string()


def test_insured_file_has_one_line_per_jpki_card_with_its_certificate(population, insured):
    jpki_cards = [card for card in population.cards if card.kind.has_user_authentication]
    assert list(insured) == [card.id for card in jpki_cards]
    for card in jpki_cards:
        entry = insured[card.id]
        assert entry["certificate"] == {
            "issuer": card.certificate_issuer,
            "serial": card.certificate_serial,
        }
        for record in entry["records"]:
            assert set(record) == RECORD_FIELDS


@pytest.mark.parametrize(
    ("outcome", "validity", "records"),
    [
        ("valid-employee", 1, 1),
        ("disqualified", 2, 1),
        ("invalid-newer-qualification", 3, 2),
        ("not-registered", 4, 0),
        ("several-matches", 5, 2),
        ("revoked-certificate", 1, 1),
        ("expired-past-grace", 1, 1),
    ],
)
def test_validity_codes_and_their_records(population, insured, outcome, validity, records):
    entry = insured[population.card(outcome).id]
    assert entry["validity_code"] == validity
    assert len(entry["records"]) == records


def test_disqualified_record_says_when_and_why(population, insured):
    (record,) = records_of(insured, population, "disqualified")
    assert record["DisqualificationDate"] is not None
    assert record["DisqualificationDate"] <= TODAY.strftime("%Y%m%d")
    assert record["ReasonOfLoss"] in ("01", "02", "03", "99")


def test_newer_qualification_follows_the_lost_one(population, insured):
    lost, newer = records_of(insured, population, "invalid-newer-qualification")
    assert lost["DisqualificationDate"] == newer["QualificationDate"]
    assert lost["ReasonOfLoss"] == "03"
    assert newer["DisqualificationDate"] is None
    assert lost["Name"] == newer["Name"]
    assert lost["Birthdate"] == newer["Birthdate"]


def test_insurance_kinds_have_their_number_shapes(population, insured):
    (employee,) = records_of(insured, population, "valid-employee")
    assert len(employee["InsurerNumber"]) == 8
    assert employee["InsurerNumber"][:2] in ("01", "06")
    assert employee["PersonalFamilyClassification"] == "1"
    assert employee["InsuredPartialContributionRatio"] == "030"
    (family,) = records_of(insured, population, "valid-family")
    assert family["PersonalFamilyClassification"] == "2"
    (national,) = records_of(insured, population, "valid-national")
    assert len(national["InsurerNumber"]) == 6
    (late,) = records_of(insured, population, "valid-late-elderly")
    assert late["InsurerNumber"].startswith("39")
    assert late["InsuredPartialContributionRatio"] in ("010", "030")
    assert age_on(birthdate(late), TODAY) >= 75
    for entry in insured.values():
        for record in entry["records"]:
            number = record["InsurerNumber"]
            assert number[-1] == check_digit(number[:-1])


@pytest.mark.parametrize(
    ("outcome", "ratio"), [("valid-elderly-20", "020"), ("valid-elderly-30-limit", "030")]
)
def test_elderly_recipients_are_70_to_74_with_their_ratio(population, insured, outcome, ratio):
    (record,) = records_of(insured, population, outcome)
    assert 70 <= age_on(birthdate(record), TODAY) <= 74
    assert record["InsuredPartialContributionRatio"] == ratio
    info = record["ElderlyRecipientCertificateInfo"]
    assert info["ElderlyRecipientContributionRatio"] == ratio
    today = TODAY.strftime("%Y%m%d")
    assert info["ElderlyRecipientValidStartDate"] <= today <= info["ElderlyRecipientValidEndDate"]


def test_limit_application_class_is_given(population, insured):
    (record,) = records_of(insured, population, "valid-elderly-30-limit")
    limit = record["LimitApplicationCertificateRelatedInfo"]
    flag = limit["LimitApplicationCertificateClassificationFlag"]
    assert flag[0] in "AB"
    assert 1 <= int(flag[1:]) <= (6 if flag[0] == "A" else 10)
    assert limit["LimitApplicationCertificateValidStartDate"] <= TODAY.strftime("%Y%m%d")


def test_preschool_child_has_its_ratio_and_a_public_expense(population, insured):
    (record,) = records_of(insured, population, "valid-preschool-public-expense")
    assert age_on(birthdate(record), TODAY) < 6
    assert record["PreschoolClassification"] == "1"
    assert record["InsuredPartialContributionRatio"] == "020"
    assert record["PersonalFamilyClassification"] == "2"
    (expense,) = record["PublicExpenseInfo"]
    assert len(expense["PublicExpenseNumber"]) == 8
    assert len(expense["BeneficiaryNumber"]) == 7
    assert expense["PublicExpenseNumber"][-1] == check_digit(expense["PublicExpenseNumber"][:-1])


def test_names_are_fictional_with_half_width_kana(insured):
    for entry in insured.values():
        for record in entry["records"]:
            surname = record["Name"].split("\u3000")[0]
            assert surname in ("見本", "試験", "模擬", "架空", "仮名", "検証", "試作", "標本")
            assert all(c == " " or "\uff61" <= c <= "\uff9f" for c in record["NameKana"])
            assert len(record["PostNumber"]) == 8
            assert record["PostNumber"][3] == "-"
            assert record["Sex1"] in ("1", "2")


def test_certificates_expire_on_the_holders_fifth_birthday_after_issue(population, insured):
    for card in population.cards:
        if not card.kind.has_user_authentication:
            continue
        certificate = card.load_profile().certificate()
        records = insured[card.id]["records"]
        if not records:
            continue
        born = birthdate(records[0])
        issued = certificate.not_valid_before_utc.astimezone(UTC).date()
        expires = (certificate.not_valid_after_utc + timedelta(hours=9)).date()
        assert expires == fifth_birthday_after(issued, born), card.id


def test_certificate_states(population):
    def expiry(outcome: str) -> date:
        certificate = population.card(outcome).load_profile().certificate()
        return (certificate.not_valid_after_utc + timedelta(hours=9)).date()

    assert 0 < (TODAY - expiry("expired-in-grace")).days < GRACE_DAYS
    assert (TODAY - expiry("expired-past-grace")).days > GRACE_DAYS
    assert expiry("valid-employee") > TODAY
    assert expiry("revoked-certificate") > TODAY


def test_card_side_outcomes(population):
    def profile(outcome: str) -> CardProfile:
        return population.card(outcome).load_profile()

    assert profile("pin-locked").pin_tries_left == 0
    assert profile("pin-one-try-left").pin_tries_left == 1
    assert profile("valid-employee").pin_tries_left == 3
    assert profile("face-auth").pin is None
    assert profile("android").kind is CardKind.ANDROID
    assert profile("iphone").kind is CardKind.IPHONE
    non_jpki = population.card("non-jpki")
    assert non_jpki.kind is CardKind.NON_JPKI
    assert not non_jpki.pin_present
    assert non_jpki.expected_validity_code is None
    assert non_jpki.expected_route == "error"
    assert population.card("revoked-certificate").expected_validity_code is None
    assert population.card("expired-in-grace").expected_validity_code == 1
    assert population.card("pin-locked").expected_route == "staff"


def test_the_same_seed_gives_the_same_people(population, tmp_path):
    again = generate_population(tmp_path / "again", len(OUTCOMES), seed=SEED, today=TODAY)
    assert again.insured_path.read_text(encoding="utf-8") == population.insured_path.read_text(
        encoding="utf-8"
    )
    assert [c.certificate_serial for c in again.cards] == [
        c.certificate_serial for c in population.cards
    ]


def test_regenerating_replaces_the_cards(tmp_path):
    generate_population(tmp_path, 3, seed=1, today=TODAY)
    generate_population(tmp_path, 2, seed=1, today=TODAY)
    assert len(list((tmp_path / "cards").glob("*.toml"))) == 2


def test_a_folder_holding_something_else_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError):
        generate_population(tmp_path, 20)


def test_helpers():
    assert half_width_katakana("ミホン　ジロウ") == "ﾐﾎﾝ ｼﾞﾛｳ"
    assert check_digit("0113001") == "2"  # 協会けんぽ 東京支部 01130012
    # the fifth birthday after issue: between four and five years of validity
    assert fifth_birthday_after(date(2024, 5, 1), date(1990, 5, 2)) == date(2028, 5, 2)
    assert fifth_birthday_after(date(2024, 5, 2), date(1990, 5, 2)) == date(2029, 5, 2)
    assert fifth_birthday_after(date(2023, 3, 1), date(2000, 2, 29)) == date(2028, 2, 29)
    assert age_on(date(2000, 3, 15), TODAY) == 26
    assert age_on(date(2000, 3, 16), TODAY) == 25


def test_path_of_profiles_is_inside_the_population(population):
    for card in population.cards:
        assert card.profile_path.parent == Path(population.root) / "cards"
