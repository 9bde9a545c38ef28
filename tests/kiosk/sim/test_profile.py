"""Card profiles: the TOML file, its atomic saving, kinds, ATRs and the timing model."""

from __future__ import annotations

import stat
import tomllib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kiosk.sim.profile import (
    DEFAULT_ATRS,
    CardKind,
    CardProfile,
    ProfileError,
    TimingModel,
    contactless_atr,
    generate,
)


def test_a_saved_profile_loads_back_equal(card_profile_factory):
    profile = card_profile_factory(pin="0420", pin_tries_left=2, outcome="valid-employee")
    again = CardProfile.load(profile.path)
    assert again == profile
    assert again.path == profile.path


def test_the_profile_file_is_toml_readable_only_by_its_owner(card_profile_factory):
    profile = card_profile_factory()
    assert stat.S_IMODE(profile.path.stat().st_mode) == 0o600
    document = tomllib.loads(profile.path.read_text(encoding="utf-8"))
    assert document["kind"] == "mynumber"
    assert document["counters"]["user_auth_pin_tries_left"] == 3
    assert document["jpki"]["user_auth_certificate"].startswith("-----BEGIN CERTIFICATE-----")


def test_saving_leaves_no_temporary_file(card_profile_factory):
    profile = card_profile_factory()
    for tries in (2, 1, 0):
        profile.pin_tries_left = tries
        profile.save()
    assert [p.name for p in profile.path.parent.iterdir()] == [profile.path.name]
    assert CardProfile.load(profile.path).pin_tries_left == 0


def test_a_card_without_pin_has_no_pin_in_its_file(card_profile_factory):
    profile = card_profile_factory(pin=None)
    assert "pin =" not in profile.path.read_text(encoding="utf-8")
    assert CardProfile.load(profile.path).pin is None


def test_a_non_jpki_card_needs_no_ca_and_carries_no_key(tmp_path):
    profile = generate(CardKind.NON_JPKI, None, id="transit", pin=None, path=tmp_path / "t.toml")
    again = CardProfile.load(tmp_path / "t.toml")
    assert again.user_auth_key_pem is None
    assert again.user_auth_certificate is None
    assert again.atr == DEFAULT_ATRS[CardKind.NON_JPKI] == profile.atr


def test_generated_certificate_has_the_requested_validity(card_profile_factory):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = datetime(2029, 1, 1, tzinfo=UTC)
    profile = card_profile_factory(not_before=start, not_after=end, serial=4242)
    certificate = profile.certificate()
    assert certificate.not_valid_before_utc == start
    assert certificate.not_valid_after_utc == end
    assert certificate.serial_number == 4242
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert profile.user_auth_key().public_key().public_numbers() == public_key.public_numbers()


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        ('pin = "1234"', 'pin = "12a4"', "4 ASCII digits"),
        ('pin = "1234"', 'pin = "12345"', "4 ASCII digits"),
        ("user_auth_pin_tries_left = 3", "user_auth_pin_tries_left = 4", "from 0 to 3"),
        ("user_auth_pin_tries_left = 3", "user_auth_pin_tries_left = -1", "from 0 to 3"),
        ('kind = "mynumber"', 'kind = "credit"', "malformed"),
        ("format = 1", "format = 2", "unknown format"),
        ("format = 1", "this is not toml", "cannot read"),
    ],
)
def test_a_malformed_profile_is_refused(card_profile_factory, before, after, message):
    profile = card_profile_factory()
    text = profile.path.read_text(encoding="utf-8")
    assert before in text
    profile.path.write_text(text.replace(before, after, 1), encoding="utf-8")
    with pytest.raises(ProfileError, match=message):
        CardProfile.load(profile.path)


def test_a_profile_without_its_certificate_is_refused(card_profile_factory):
    profile = card_profile_factory()
    text = profile.path.read_text(encoding="utf-8")
    start = text.index("user_auth_certificate = ")
    end = text.index('"""', text.index('"""', start) + 3) + 3
    profile.path.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(ProfileError, match="needs user_auth_certificate"):
        CardProfile.load(profile.path)


def test_saving_needs_a_place(card_profile_factory):
    profile = card_profile_factory(save=False)
    with pytest.raises(ProfileError, match="no file"):
        profile.save()


def test_token_labels():
    assert CardKind.MYNUMBER.token_label == "JPKIAPICCTOKEN2"
    assert CardKind.ANDROID.token_label == "JPKIAPGPSETOKEN"
    assert CardKind.IPHONE.token_label == "JPKIAPIOSTOKEN"
    assert CardKind.JUKI.token_label == "JPKIAPICCTOKEN"
    assert CardKind.NON_JPKI.token_label is None


@pytest.mark.parametrize("kind", list(CardKind))
def test_default_atrs_are_well_formed_contactless_atrs(kind):
    atr = DEFAULT_ATRS[kind]
    assert atr[0] == 0x3B
    assert atr[2:4] == b"\x80\x01"
    assert len(atr) == 5 + (atr[1] & 0x0F)
    check = 0
    for byte in atr[1:]:
        check ^= byte
    assert check == 0  # TCK makes the XOR of T0..TCK zero


def test_contactless_atr_without_historical_bytes():
    assert contactless_atr(b"") == bytes.fromhex("3B80800101")


def test_realistic_timing_uses_the_published_figures():
    timing = TimingModel.realistic()
    assert timing.apdu_latency_s == pytest.approx(0.010)
    assert timing.bit_rate == 424_000
    assert 0.15 <= timing.signature_s <= 0.7


def test_delay_adds_latency_transfer_and_signature():
    timing = TimingModel(apdu_latency_s=0.01, bit_rate=8000, signature_s=0.5)
    assert timing.delay_for(b"\0" * 5, b"\0" * 5, signing=False) == pytest.approx(0.01 + 0.01)
    assert timing.delay_for(b"\0" * 5, b"\0" * 5, signing=True) == pytest.approx(0.52)
    assert TimingModel().delay_for(b"\0" * 300, b"\0" * 300, signing=True) == 0


def test_negative_timing_is_refused():
    with pytest.raises(ValueError, match="negative"):
        TimingModel(apdu_latency_s=-1)
