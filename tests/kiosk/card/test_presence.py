"""Presence events from two snapshots of the readers (pure; the pcscd side is in test_pcsc_flow)."""

from __future__ import annotations

from kiosk.card.pcsc import Presence, PresenceEvent, ReaderState, presence_changes

EMPTY = ReaderState(present=False)
CARD = ReaderState(present=True, events=1, atr=b"\x3b\x80")


def kinds(events: list[PresenceEvent]) -> list[tuple[Presence, str | None]]:
    return [(e.kind, e.reader) for e in events]


def test_a_new_reader_with_a_card_is_added_then_its_card_inserted() -> None:
    assert kinds(presence_changes({}, {"R": CARD})) == [
        (Presence.READER_ADDED, "R"),
        (Presence.CARD_INSERTED, "R"),
    ]


def test_an_unplugged_reader_takes_its_card_with_it() -> None:
    assert kinds(presence_changes({"R": CARD, "S": EMPTY}, {"S": EMPTY})) == [
        (Presence.CARD_REMOVED, "R"),
        (Presence.READER_REMOVED, "R"),
    ]


def test_insert_and_remove_on_a_known_reader() -> None:
    assert kinds(presence_changes({"R": EMPTY}, {"R": CARD})) == [(Presence.CARD_INSERTED, "R")]
    assert kinds(presence_changes({"R": CARD}, {"R": EMPTY})) == [(Presence.CARD_REMOVED, "R")]


def test_a_card_swapped_between_two_looks_is_a_removal_and_an_insertion() -> None:
    swapped = ReaderState(present=True, events=2, atr=b"\x3b\x81")
    events = presence_changes({"R": CARD}, {"R": swapped})
    assert kinds(events) == [(Presence.CARD_REMOVED, "R"), (Presence.CARD_INSERTED, "R")]
    assert events[1].atr == b"\x3b\x81"


def test_nothing_changed_is_no_event() -> None:
    assert presence_changes({"R": CARD, "S": EMPTY}, {"R": CARD, "S": EMPTY}) == []
