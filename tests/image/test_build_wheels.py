"""The Raspberry Pi image's wheels, made on this x86 machine (provisioning/build-wheels): the
C extensions PyPI has only as source are cross-compiled for arm64, every other dependency is
PyPI's own aarch64 wheel, and nothing built for another machine gets in."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.image.conftest import PROVISIONING, load_script

ELF_MACHINE = {0x3E: "x86-64", 0xB7: "AArch64"}


def build_wheels(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROVISIONING / "build-wheels"), *args], capture_output=True, text=True, check=False
    )


def machines(wheel: Path) -> set[str]:
    """The ELF machine of every compiled library in a wheel."""
    found: set[str] = set()
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith(".so"):
                head = archive.open(name).read(20)
                found.add(ELF_MACHINE.get(int.from_bytes(head[18:20], "little"), "other"))
    return found


@pytest.fixture(scope="module")
def arm64_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheels-arm64")
    done = build_wheels("--arch", "arm64", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_the_source_only_extensions_are_compiled_for_arm64(arm64_wheels: Path) -> None:
    for project in ("pyscard", "systemd_python"):
        (wheel,) = arm64_wheels.glob(f"{project}-*-cp311-cp311-linux_aarch64.whl")
        assert machines(wheel) == {"AArch64"}, wheel.name


def test_every_compiled_dependency_is_for_arm64(arm64_wheels: Path) -> None:
    compiled = {w.name: machines(w) for w in arm64_wheels.glob("*.whl") if machines(w)}
    assert {"cryptography", "pygame_ce", "cffi", "pyscard", "systemd_python"} <= {
        name.split("-")[0] for name in compiled
    }
    assert all(found == {"AArch64"} for found in compiled.values()), compiled


def test_the_arm64_set_is_what_the_application_needs(arm64_wheels: Path) -> None:
    names = {w.name.split("-")[0].lower() for w in arm64_wheels.glob("*.whl")}
    # the application, what the appliance imports, and pip to install them in the image;
    # nothing of the clinic server's stack
    assert {
        "onshi_kiosk",
        "pip",
        "pyscard",
        "systemd_python",
        "pygame_ce",
        "cryptography",
        "httpx",
        "gpiozero",
        "tomli_w",
        "budoux",
    } <= names
    assert not names & {"fastapi", "uvicorn", "psycopg", "argon2_cffi", "jinja2"}


def test_a_wheel_built_for_another_machine_is_refused_by_name(
    arm64_wheels: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mixed"
    shutil.copytree(arm64_wheels, out)
    x86_library = next(Path("/usr/lib/x86_64-linux-gnu").glob("libz.so.1.*"))
    with zipfile.ZipFile(out / "intruder-1.0-py3-none-any.whl", "w") as wheel:
        wheel.write(x86_library, "intruder/_native.so")
    script = load_script("build-wheels")
    with pytest.raises(script.WheelError) as refused:
        script.check_machine(out, "arm64")
    assert str(refused.value) == (
        "intruder-1.0-py3-none-any.whl: intruder/_native.so is built for amd64, not arm64"
    )
