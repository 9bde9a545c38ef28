"""Run a program with two system calls refused as not implemented: faccessat2 and statx.

    python3 syscall_filter.py PROGRAM [ARGS...]

A foreign root's programs run under proot and QEMU's user-mode emulator (pi.root_command).
proot translates the paths of the system calls it knows, so that the root is seen at "/";
Debian 12's proot does not know faccessat2 nor statx (both newer than it), and passes them on
to the kernel with the path as the program gave it: the build machine's file of that name is
checked, not the root's. The root's C library checks access with faccessat2 (every
``[ -x FILE ]`` of a shell script: a package's maintainer script, initramfs-tools choosing its
hooks) and asks a file's status with statx, and the emulator passes both on as they are.
Refused with ENOSYS, as by a kernel that predates them, each falls back to the older call that
proot translates (faccessat, newfstatat).

The filter (seccomp, installed before the program starts, inherited by everything it starts)
refuses only those two, only in the build machine's own system call table; every other call
goes on as before. Stdlib only, like build-image.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys

#: per machine: the kernel's audit architecture, and the numbers of faccessat2 and statx
TABLES = {
    "x86_64": (0xC000003E, {439, 332}),
    "aarch64": (0xC00000B7, {439, 291}),
}
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
# classic BPF opcodes: load a 32-bit word of seccomp_data, jump if equal, return
LOAD_WORD, JUMP_IF_EQUAL, RETURN = 0x20, 0x15, 0x06
# offsets in struct seccomp_data: the system call's number, then its architecture
NR, ARCH = 0, 4


def program(machine: str) -> list[tuple[int, int, int, int]]:
    """The filter: (code, jump if true, jump if false, constant) for each instruction."""
    audit_arch, refused = TABLES[machine]
    allow = (RETURN, 0, 0, SECCOMP_RET_ALLOW)
    refuse = (RETURN, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS)
    steps = [(LOAD_WORD, 0, 0, ARCH), (JUMP_IF_EQUAL, 1, 0, audit_arch), allow,
             (LOAD_WORD, 0, 0, NR)]
    numbers = sorted(refused)
    for i, number in enumerate(numbers):  # equal: to the refusal after the last test
        steps.append((JUMP_IF_EQUAL, len(numbers) - i, 0, number))
    return [*steps, allow, refuse]


def install(machine: str | None = None) -> None:
    """Refuse faccessat2 and statx in this process and all it starts."""
    machine = machine or platform.machine()
    if machine not in TABLES:
        raise OSError(errno.ENOSYS, f"no system call table for {machine}")
    code = b"".join(struct.pack("HBBI", *step) for step in program(machine))
    buffer = ctypes.create_string_buffer(code)

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Program(len(code) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(
            PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "the system call filter was not installed")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    install()
    os.execvp(sys.argv[1], sys.argv[1:])
