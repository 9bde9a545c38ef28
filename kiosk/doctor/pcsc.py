"""The PC/SC service, the reader, and the card on it (spending no PIN try).

The card probe is the card layer's own (:func:`kiosk.card.probe.probe`): it selects the JPKI
application, reads the token label and the user-authentication certificate and asks for the
PIN tries left with the empty VERIFY, which spends no try. It never sends a PIN, never selects
the 券面 applications and never reads the My Number.
"""

from __future__ import annotations

from pathlib import Path

from contract.self_check import Finding, failed, ok, warning

#: Sony's RC-S380 (PaSoRi): USB ids 054c:06c1 and 054c:06c3. Not a CCID reader: on Linux
#: pcscd cannot use it.
RCS380_USB_IDS = frozenset({("054c", "06c1"), ("054c", "06c3")})
RCS380_ADVICE = (
    "Sony's RC-S380 is not a PC/SC (CCID) reader on Linux: replace it with an RC-S300 or "
    "an ACS ACR1252U (hardware.md)"
)


def rcs380_connected(usb_root: Path = Path("/sys/bus/usb/devices")) -> bool:
    """Whether a USB device with an RC-S380's vendor and product id is plugged in."""
    for device in usb_root.glob("*"):
        try:
            vendor = (device / "idVendor").read_text().strip().lower()
            product = (device / "idProduct").read_text().strip().lower()
        except OSError:
            continue
        if (vendor, product) in RCS380_USB_IDS:
            return True
    return False


def _is_rcs380(name: str) -> bool:
    return "rc-s380" in name.lower()


def check_reader(
    wanted: str | None, *, usb_root: Path = Path("/sys/bus/usb/devices")
) -> tuple[Finding, str | None]:
    """The PC/SC service and the configured reader; the reader's name when it is there."""
    from kiosk.card.pcsc import PcscContext
    from kiosk.errors import CardError

    name = "pc/sc reader"
    rcs380 = rcs380_connected(usb_root)
    try:
        with PcscContext() as context:
            readers = context.readers()
    except CardError as exc:
        return (
            failed(
                name,
                f"the PC/SC service does not answer ({exc})",
                "start it: systemctl start pcscd.socket (package pcscd); "
                "check `systemctl status pcscd`",
            ),
            None,
        )
    if any(_is_rcs380(r) for r in readers) or (rcs380 and not readers):
        return failed(name, f"readers: {', '.join(readers) or 'none'}", RCS380_ADVICE), None
    if not readers:
        return (
            failed(
                name,
                "pcscd runs but sees no reader",
                "plug the USB card reader in (a PC/SC CCID reader: RC-S300 or ACR1252U); "
                "`pcsc_scan` lists what pcscd sees",
            ),
            None,
        )
    if wanted is not None and wanted not in readers:
        return (
            failed(
                name,
                f"no reader named {wanted!r} (readers: {', '.join(readers)})",
                'fix [reader] name in the configuration, or set it to "auto"',
            ),
            None,
        )
    reader = wanted or readers[0]
    if rcs380:
        return warning(name, f"using {reader}", RCS380_ADVICE + " (one is plugged in)"), reader
    return ok(name, f"pcscd runs; reader {reader}"), reader


def check_card(reader: str | None, *, command_timeout_s: float = 5.0) -> Finding:
    """Probe the card on ``reader`` when there is one (no PIN, no try spent)."""
    from kiosk.card.pcsc import PcscContext
    from kiosk.card.probe import probe
    from kiosk.errors import CardError

    name = "card probe"
    if reader is None:
        return warning(name, "skipped: no reader", "fix the reader first")
    try:
        with PcscContext() as context:
            if not context.card_present(reader):
                return ok(name, "no card on the reader (place one to probe it; no try spent)")
            with context.connect(reader, command_timeout_s=command_timeout_s) as link:
                result = probe(link, reader=reader)
    except CardError as exc:
        return failed(
            name,
            f"the card on {reader} did not answer as a My Number card ({exc.code})",
            "try another card; if every card fails, clean or replace the reader",
        )
    tries = "-" if result.pin_tries_left is None else str(result.pin_tries_left)
    return ok(
        name,
        f"{result.token.value}, PIN {result.pin} (tries left {tries}), "
        f"{result.apdus} APDUs in {result.seconds * 1000:.0f} ms",
    )
