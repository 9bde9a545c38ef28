"""Real update bundles, made here with RAUC under keys made here (provisioning/update-keys)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

PROVISIONING = Path(__file__).resolve().parents[3] / "provisioning"
COMPATIBLE = "onshi-kiosk-amd64"


@dataclass(frozen=True)
class Keys:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "update-ca.cert.pem"


def make_keys(folder: Path) -> Keys:
    subprocess.run(
        [str(PROVISIONING / "update-keys"), str(folder)], check=True, capture_output=True
    )
    return Keys(folder)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("update-keys") / "keys")


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("other-keys") / "keys")


@pytest.fixture(scope="session")
def system_conf(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Path:
    """RAUC's system.conf as a unit has it, with this test's keyring."""
    path = tmp_path_factory.mktemp("rauc") / "system.conf"
    path.write_text(
        f"[system]\ncompatible={COMPATIBLE}\nbootloader=noop\nbundle-formats=-plain\n"
        f"[keyring]\npath={keys.ca}\ncheck-purpose=codesign\n"
    )
    return path


#: make_bundle(name, version=..., build=..., compatible=..., keys=...) -> the .raucb
MakeBundle = Callable[..., Path]


@pytest.fixture(scope="session")
def make_bundle(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> MakeBundle:
    """A verity bundle of a small root file system (ext4, 3 MiB of random data in it)."""
    work = tmp_path_factory.mktemp("bundles")
    root = work / "root.ext4"
    with root.open("wb") as f:
        f.truncate(8 * 1024 * 1024)
    tree = work / "tree"
    tree.mkdir()
    (tree / "filler").write_bytes(os.urandom(3 * 1024 * 1024))
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(root)], check=True)

    def make(
        name: str,
        *,
        version: str = "0.2.0",
        build: int = 2000,
        compatible: str = COMPATIBLE,
        signer: Keys | None = None,
    ) -> Path:
        signer = signer or keys
        folder = work / f"in-{name}"
        folder.mkdir()
        (folder / "root.ext4").hardlink_to(root)
        (folder / "manifest.raucm").write_text(
            f"[update]\ncompatible={compatible}\nversion={version}\nbuild={build}\n\n"
            "[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=root.ext4\n"
        )
        bundle = work / f"{name}.raucb"
        subprocess.run(
            [
                "rauc",
                "bundle",
                f"--cert={signer.folder / 'signing.cert.pem'}",
                f"--key={signer.folder / 'signing.key.pem'}",
                str(folder),
                str(bundle),
            ],
            check=True,
            capture_output=True,
        )
        return bundle

    return make
