"""The pure APDU codec: builders, status words, DER lengths."""

from __future__ import annotations

import pytest

from kiosk.card import apdu
from kiosk.card.apdu import Ef
from kiosk.errors import (
    CardProtocolError,
    NotMyNumberCard,
    PinLocked,
    PinNotUsable,
    SecurityStatusNotSatisfied,
    WrongPin,
)


def test_select_jpki_is_the_documented_bytes() -> None:
    assert apdu.select_jpki() == bytes.fromhex("00A4040C0AD392F000260100000001")


def test_select_ef_builds_the_documented_bytes() -> None:
    assert apdu.select_ef(Ef.USER_AUTH_CERTIFICATE) == bytes.fromhex("00A4020C02000A")
    assert apdu.select_ef(Ef.USER_AUTH_PIN) == bytes.fromhex("00A4020C020018")


@pytest.mark.parametrize("fid", [0x0001, 0x0002, 0x001A, 0x001B])
def test_signature_files_cannot_even_be_selected(fid: int) -> None:
    with pytest.raises(ValueError, match="is not a valid Ef"):
        apdu.select_ef(fid)  # type: ignore[arg-type]


def test_no_builder_can_select_the_kenmen_applications() -> None:
    builders = [apdu.select_jpki()] + [apdu.select_ef(ef) for ef in Ef]
    for command in builders:
        for aid in apdu.FORBIDDEN_AIDS:
            assert aid not in command


def test_read_binary_uses_le_00_for_256_bytes() -> None:
    assert apdu.read_binary(0, 256) == bytes.fromhex("00B0000000")
    assert apdu.read_binary(0x0312, 0x20) == bytes.fromhex("00B0031220")


@pytest.mark.parametrize(("offset", "length"), [(-1, 1), (0x8000, 1), (0, 0), (0, 257)])
def test_read_binary_refuses_out_of_range(offset: int, length: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        apdu.read_binary(offset, length)


def test_verify_carries_four_ascii_digits_and_the_empty_form_none() -> None:
    assert apdu.verify(b"1234") == bytes.fromhex("002000800431323334")
    assert apdu.pin_status() == bytes.fromhex("00200080")
    for bad in (b"123", b"12345", b"12a4"):
        with pytest.raises(ValueError, match="4 digits"):
            apdu.verify(bad)


def test_signature_command_wraps_a_sha256_digest_info() -> None:
    digest_info = apdu.sha256_digest_info(b"message")
    assert len(digest_info) == 51
    command = apdu.compute_signature(digest_info)
    assert command[:5] == bytes([0x80, 0x2A, 0x00, 0x80, 51])
    assert command[5:-1] == digest_info
    assert command[-1] == 0


def test_parse_response_needs_a_status_word() -> None:
    assert apdu.parse_response(b"\x01\x02\x90\x00") == apdu.Response(b"\x01\x02", 0x9000)
    with pytest.raises(CardProtocolError, match="no status word"):
        apdu.parse_response(b"\x90")


def test_jpki_absent_means_not_a_my_number_card() -> None:
    with pytest.raises(NotMyNumberCard):
        apdu.expect_jpki_selected(apdu.Response(b"", 0x6A82))


@pytest.mark.parametrize(
    ("sw", "tries", "verified"), [(0x63C3, 3, False), (0x63C1, 1, False), (0x9000, None, True)]
)
def test_empty_verify_reports_tries(sw: int, tries: int | None, verified: bool) -> None:
    status = apdu.parse_pin_status(apdu.Response(b"", sw))
    assert status.tries_left == tries
    assert status.verified is verified


@pytest.mark.parametrize("sw", [0x63C0, 0x6983, 0x6984])
def test_empty_verify_on_a_locked_pin_raises(sw: int) -> None:
    with pytest.raises(PinLocked):
        apdu.parse_pin_status(apdu.Response(b"", sw))


def test_empty_verify_on_a_card_without_pin_raises_not_usable() -> None:
    with pytest.raises(PinNotUsable):
        apdu.parse_pin_status(apdu.Response(b"", 0x6A88))


def test_wrong_pin_carries_the_tries_left() -> None:
    with pytest.raises(WrongPin) as caught:
        apdu.parse_verify(apdu.Response(b"", 0x63C2))
    assert caught.value.tries_left == 2


def test_wrong_pin_on_the_last_try_says_it_locked() -> None:
    with pytest.raises(PinLocked, match="last try"):
        apdu.parse_verify(apdu.Response(b"", 0x63C0))


def test_security_status_maps_to_its_own_error() -> None:
    with pytest.raises(SecurityStatusNotSatisfied):
        apdu.expect_ok(apdu.Response(b"", 0x6982), "COMPUTE DIGITAL SIGNATURE")


def test_unknown_status_is_a_protocol_error_with_the_status() -> None:
    with pytest.raises(CardProtocolError) as caught:
        apdu.expect_ok(apdu.Response(b"", 0x6F00), "READ")
    assert caught.value.sw == 0x6F00


def test_end_of_file_still_carries_data() -> None:
    assert apdu.expect_read(apdu.Response(b"abc", 0x6282), "READ") == b"abc"


@pytest.mark.parametrize(
    ("head", "total"),
    [
        (bytes.fromhex("3005"), 7),
        (bytes.fromhex("308180"), 3 + 0x80),
        (bytes.fromhex("308204d2"), 4 + 0x04D2),
    ],
)
def test_der_length_from_the_first_chunk(head: bytes, total: int) -> None:
    assert apdu.der_total_length(head) == total


@pytest.mark.parametrize(
    "head",
    [b"", b"\x30", bytes.fromhex("0482"), bytes.fromhex("3080"), bytes.fromhex("3084ffffffff")],
)
def test_malformed_der_length_is_a_protocol_error(head: bytes) -> None:
    with pytest.raises(CardProtocolError):
        apdu.der_total_length(head)


def test_absurd_certificate_length_is_refused() -> None:
    with pytest.raises(CardProtocolError, match="more than a card holds"):
        apdu.der_total_length(bytes.fromhex("3083100000"))
