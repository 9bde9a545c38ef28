"""The checks of ``kiosk doctor`` that look at files: pointed at folders built here."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contract.self_check import Finding, State, exit_status, to_json, to_text
from kiosk.doctor import devices, identity, pcsc, system
from kiosk.hw.config import GpioConfig
from kiosk.server_config import DeviceConfig
from kiosk.ui.config import DisplayConfig, VoiceConfig

# --- the screen and touch ----------------------------------------------------------------------


def make_drm(sys_root: Path, connectors: dict[str, tuple[str, str]]) -> None:
    drm = sys_root / "class/drm"
    (drm / "card1").mkdir(parents=True)
    for name, (status, modes) in connectors.items():
        folder = drm / f"card1-{name}"
        folder.mkdir()
        (folder / "status").write_text(status + "\n")
        (folder / "modes").write_text(modes)


def test_a_connected_display_with_a_mode_passes(tmp_path: Path) -> None:
    make_drm(tmp_path, {"DSI-1": ("connected", "800x480\n"), "HDMI-A-1": ("disconnected", "")})
    finding = devices.check_display(DisplayConfig(layout="landscape"), tmp_path)
    assert finding.state is State.OK
    assert finding.detail == "DSI-1 800x480 (landscape); layout landscape"
    make_drm(tmp_path / "td2", {"DSI-2": ("connected", "720x1280\n")})
    portrait = devices.check_display(DisplayConfig(layout="portrait"), tmp_path / "td2")
    assert portrait.detail == "DSI-2 720x1280 (portrait); layout portrait"


def test_no_display_fails_on_a_kiosk_and_warns_with_a_desktop_driver(tmp_path: Path) -> None:
    make_drm(tmp_path, {"DSI-1": ("disconnected", "")})
    finding = devices.check_display(DisplayConfig(video_driver="kmsdrm"), tmp_path)
    assert finding.state is State.FAILED
    assert "no connected display (DRM card1)" in finding.detail
    assert "connect the Touch Display's ribbon cable" in finding.advice
    dev = devices.check_display(DisplayConfig(video_driver="dummy"), tmp_path / "none")
    assert dev.state is State.WARNING
    assert "no DRM device" in dev.detail
    assert "expected on a development machine" in dev.advice


def test_a_connector_without_a_mode_warns(tmp_path: Path) -> None:
    make_drm(tmp_path, {"DSI-1": ("connected", "")})
    finding = devices.check_display(DisplayConfig(), tmp_path)
    assert finding.state is State.WARNING
    assert "reports no mode" in finding.advice


TOUCHSCREEN = """I: Bus=0018 Vendor=0000 Product=0000 Version=0000
N: Name="generic ft5x06 (79)"
H: Handlers=kbd event3
B: PROP=2
B: EV=b
B: ABS=2608000 3

I: Bus=0003 Vendor=046d Product=c077 Version=0111
N: Name="Logitech USB Optical Mouse"
H: Handlers=mouse0 event4
B: PROP=0
B: EV=17
"""


def make_input(root: Path, text: str, events: tuple[str, ...] = ("event3",)) -> None:
    (root / "proc/bus/input").mkdir(parents=True)
    (root / "proc/bus/input/devices").write_text(text)
    (root / "dev/input").mkdir(parents=True)
    for event in events:
        (root / "dev/input" / event).write_text("")


def test_a_touchscreen_with_its_event_device_passes(tmp_path: Path) -> None:
    make_input(tmp_path, TOUCHSCREEN)
    finding = devices.check_touch(tmp_path / "proc", tmp_path / "dev", video_driver="kmsdrm")
    assert finding.state is State.OK
    assert finding.detail == f"generic ft5x06 (79) on {tmp_path}/dev/input/event3"


def test_only_a_mouse_is_no_touchscreen(tmp_path: Path) -> None:
    make_input(tmp_path, TOUCHSCREEN.split("\n\n")[1])
    finding = devices.check_touch(tmp_path / "proc", tmp_path / "dev", video_driver="kmsdrm")
    assert finding.state is State.FAILED
    assert "check the display's touch connection" in finding.advice


def test_a_missing_event_node_fails(tmp_path: Path) -> None:
    make_input(tmp_path, TOUCHSCREEN, events=())
    finding = devices.check_touch(tmp_path / "proc", tmp_path / "dev", video_driver="kmsdrm")
    assert finding.state is State.FAILED
    assert "event3 is missing" in finding.detail


# --- GPIO and voice ----------------------------------------------------------------------------


def test_mock_pins_are_said_to_be_mock(tmp_path: Path) -> None:
    finding = devices.check_gpio(GpioConfig(backend="mock"), tmp_path)
    assert finding.state is State.WARNING
    assert finding.detail.startswith("mock pin factory")
    assert "green 17" in finding.detail
    assert 'backend = "lgpio"' in finding.advice


def test_lgpio_without_a_gpio_chip_fails(tmp_path: Path) -> None:
    finding = devices.check_gpio(GpioConfig(backend="lgpio"), tmp_path)
    assert finding.state is State.FAILED
    assert "no /dev/gpiochip*" in finding.detail


def test_the_configured_chip_must_exist(tmp_path: Path) -> None:
    (tmp_path / "gpiochip0").write_text("")
    finding = devices.check_gpio(GpioConfig(backend="lgpio", chip=4), tmp_path)
    assert finding.state is State.FAILED
    assert "gpiochip4 is missing" in finding.detail
    assert finding.advice == "fix [gpio] chip"


def test_voice_files_present_pass_and_missing_ones_fail(tmp_path: Path) -> None:
    from kiosk.flow.screens import Language
    from kiosk.ui.voice import MANIFEST, all_prompts

    voice = tmp_path / "voice"
    finding = devices.check_voice(VoiceConfig(directory=voice))
    assert finding.state is State.FAILED
    assert f"kiosk voice build --out {voice}" in finding.advice
    voice.mkdir()
    (voice / MANIFEST).write_text("{}")
    for language in Language:
        (voice / language.value).mkdir()
        for prompt in all_prompts():
            (voice / language.value / f"{prompt.name}.wav").write_bytes(b"RIFF")
    assert devices.check_voice(VoiceConfig(directory=voice)).state is State.OK
    first = next(iter(all_prompts()))
    (voice / "ja" / f"{first.name}.wav").unlink()
    missing = devices.check_voice(VoiceConfig(directory=voice))
    assert missing.state is State.FAILED
    assert missing.detail.startswith("1 of ")
    assert devices.check_voice(VoiceConfig(enabled=False, directory=voice)).state is State.OK


# --- the reader's model ------------------------------------------------------------------------


def test_an_rcs380_is_recognised_by_its_usb_id(tmp_path: Path) -> None:
    device = tmp_path / "1-1.2"
    device.mkdir()
    (device / "idVendor").write_text("054c\n")
    (device / "idProduct").write_text("06c3\n")
    assert pcsc.rcs380_connected(tmp_path)
    (device / "idProduct").write_text("0dc8\n")  # an RC-S300
    assert not pcsc.rcs380_connected(tmp_path)


# --- the clock, the disk, the root file system -----------------------------------------------


def test_the_clock_synchronised_passes_and_unsynchronised_fails() -> None:
    assert system.check_clock(lambda: True).state is State.OK
    unsynced = system.check_clock(lambda: False)
    assert unsynced.state is State.FAILED
    assert unsynced.detail == "not synchronised"
    assert "timedatectl timesync-status" in unsynced.advice
    assert system.check_clock(lambda: None).state is State.WARNING


def fake_statvfs(
    free_blocks: int, blocks: int = 1_000_000, size: int = 4096
) -> Callable[[Path], os.statvfs_result]:
    """A file system of ``blocks`` with ``free_blocks`` free, whatever the path."""

    def statvfs(path: Path) -> os.statvfs_result:
        return os.statvfs_result((size, size, blocks, free_blocks, free_blocks, 0, 0, 0, 0, 255))

    return statvfs


def test_a_full_data_partition_fails(tmp_path: Path) -> None:
    finding = system.check_disk(tmp_path, needed_bytes=64 << 20, statvfs=fake_statvfs(100))
    assert finding.state is State.FAILED
    assert finding.detail.startswith("0 MiB free of 3906 MiB (0%)")
    assert "the outbox may need 64 MiB" in finding.detail
    assert "free space on the data partition" in finding.advice


def test_a_nearly_full_partition_warns_and_a_roomy_one_passes(tmp_path: Path) -> None:
    low = system.check_disk(tmp_path, needed_bytes=64 << 20, statvfs=fake_statvfs(50_000))
    assert low.state is State.WARNING
    roomy = system.check_disk(tmp_path, needed_bytes=64 << 20, statvfs=fake_statvfs(500_000))
    assert roomy.state is State.OK


def test_the_real_disk_is_looked_at(tmp_path: Path) -> None:
    finding = system.check_disk(tmp_path, needed_bytes=1)
    assert finding.state in (State.OK, State.WARNING)
    assert str(tmp_path) in finding.detail


def test_a_missing_data_folder_fails(tmp_path: Path) -> None:
    finding = system.check_disk(tmp_path / "absent", needed_bytes=1)
    assert finding.state is State.FAILED
    assert "is the data partition mounted?" in finding.advice


def test_root_read_only_passes_and_writable_warns(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/mmcblk0p2 / ext4 ro,noatime 0 0\nproc /proc proc rw 0 0\n")
    assert system.check_root_read_only(mounts).state is State.OK
    mounts.write_text(
        "/dev/mmcblk0p2 / ext4 ro,noatime 0 0\noverlayroot / overlay rw,relatime 0 0\n"
    )
    writable = system.check_root_read_only(mounts)
    assert writable.state is State.WARNING
    assert "Overlay File System" in writable.advice


# --- enrolment and the certificate ---------------------------------------------------------------


def write_device(
    folder: Path, *, not_after: dt.datetime, key: ec.EllipticCurvePrivateKey | None = None
) -> DeviceConfig:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reception-1")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=800))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "device.pem", folder / "device.key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return DeviceConfig(cert_path, key_path)


NOW = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("days", "state", "words"),
    [
        (400, State.OK, "days left"),
        (10, State.WARNING, "(10 days left)"),
        (-1, State.FAILED, "expired on 2027-05-31"),
    ],
)
def test_the_device_certificate_s_expiry(
    tmp_path: Path, days: int, state: State, words: str
) -> None:
    device = write_device(tmp_path, not_after=NOW + dt.timedelta(days=days))
    finding = identity.check_certificate_expiry(device, NOW)
    assert finding.state is state
    assert words in finding.detail
    if state is not State.OK:
        assert "clinic-server device issue NAME --out DIR" in finding.advice


def test_enrolment_needs_the_files_and_a_matching_pair(tmp_path: Path) -> None:
    device = write_device(tmp_path / "a", not_after=NOW)
    assert identity.check_enrolment(device).state is State.OK
    missing = identity.check_enrolment(DeviceConfig(tmp_path / "none.pem", device.key))
    assert missing.state is State.FAILED
    assert "this kiosk is not enrolled" in missing.advice
    other = write_device(tmp_path / "b", not_after=NOW)
    mixed = identity.check_enrolment(DeviceConfig(device.certificate, other.key))
    assert mixed.state is State.FAILED
    assert "does not belong to" in mixed.detail
    device.key.chmod(0o644)
    loose = identity.check_enrolment(device)
    assert loose.state is State.WARNING
    assert loose.advice == f"chmod 600 {device.key}"


# --- the report ----------------------------------------------------------------------------------


def test_the_report_says_one_line_per_check_and_fails_on_a_failure() -> None:
    findings = [
        Finding("clock", State.OK, "synchronised (NTP)"),
        Finding("disk", State.FAILED, "0 MiB free", "free space"),
    ]
    text = to_text(findings)
    assert text.splitlines() == [
        "ok       clock  synchronised (NTP)",
        "failed   disk   0 MiB free -> free space",
        "1 ok, 0 warning(s), 1 failed",
    ]
    assert exit_status(findings) == 1
    assert exit_status(findings[:1]) == 0
    assert '"advice": "free space"' in to_json(findings)
