"""The meaning tables: one lamp per signal, short distinct sounds, reminders that escalate."""

from __future__ import annotations

import pytest

from kiosk.hw.patterns import (
    REMINDER_SOUNDS,
    SIGNAL_PATTERNS,
    SOUND_PATTERNS,
    Lamp,
    light_pattern,
)
from kiosk.hw.signals import LightSignal, Sound


def test_every_signal_and_sound_has_a_pattern() -> None:
    assert set(SIGNAL_PATTERNS) == set(LightSignal)
    assert set(SOUND_PATTERNS) == set(Sound)


@pytest.mark.parametrize(
    ("signal", "lamp", "steady"),
    [
        (LightSignal.READY, Lamp.BLUE, True),
        (LightSignal.BUSY, Lamp.BLUE, False),
        (LightSignal.ELIGIBLE, Lamp.GREEN, True),
        (LightSignal.STAFF_NEEDED, Lamp.AMBER, True),
        (LightSignal.VISUAL_CHECK_WAITING, Lamp.AMBER, False),
        (LightSignal.ERROR, Lamp.RED, True),
    ],
)
def test_each_signal_is_its_colour_as_the_issue_says(
    signal: LightSignal, lamp: Lamp, steady: bool
) -> None:
    pattern = light_pattern(signal)
    assert pattern.lamp is lamp
    assert pattern.steady is steady


def test_off_lights_nothing_even_with_a_reminder() -> None:
    assert light_pattern(LightSignal.OFF).lamp is None
    assert light_pattern(LightSignal.OFF, reminder=3).lamp is None


def test_signals_sharing_a_lamp_differ_in_rhythm() -> None:
    seen: dict[tuple[Lamp | None, float | None, float | None], LightSignal] = {}
    for signal, pattern in SIGNAL_PATTERNS.items():
        key = (pattern.lamp, pattern.on_s, pattern.off_s)
        assert key not in seen, f"{signal} looks exactly like {seen[key]}"
        seen[key] = signal


@pytest.mark.parametrize(
    "signal", [LightSignal.ELIGIBLE, LightSignal.STAFF_NEEDED, LightSignal.ERROR]
)
def test_a_card_left_reminder_blinks_amber_faster_at_each_level_never_green(
    signal: LightSignal,
) -> None:
    patterns = [light_pattern(signal, reminder=level) for level in (1, 2, 3)]
    assert {p.lamp for p in patterns} == {Lamp.AMBER}
    periods = [p.on_s + p.off_s for p in patterns if p.on_s is not None and p.off_s is not None]
    assert len(periods) == 3
    assert periods == sorted(periods, reverse=True)
    assert len(set(periods)) == 3
    # every reminder blink is faster than any signal's own blink
    assert max(periods) < VISUAL_PERIOD


VISUAL_PERIOD = sum(
    t
    for t in (
        SIGNAL_PATTERNS[LightSignal.VISUAL_CHECK_WAITING].on_s,
        SIGNAL_PATTERNS[LightSignal.VISUAL_CHECK_WAITING].off_s,
    )
    if t is not None
)


@pytest.mark.parametrize("level", [-1, 4])
def test_a_reminder_level_outside_0_to_3_is_a_bug(level: int) -> None:
    with pytest.raises(ValueError, match="reminder level"):
        light_pattern(LightSignal.ELIGIBLE, reminder=level)


def test_every_sound_is_short_so_the_counter_never_waits_on_it() -> None:
    for sound, pattern in SOUND_PATTERNS.items():
        assert pattern.duration_s <= 2.0, sound


def test_sounds_are_told_apart_by_their_beeps() -> None:
    shapes = {(p.n, p.on_s) for p in SOUND_PATTERNS.values()}
    assert len(shapes) == len(SOUND_PATTERNS)


def test_the_spec_of_the_everyday_sounds() -> None:
    key, card = SOUND_PATTERNS[Sound.KEY], SOUND_PATTERNS[Sound.CARD_DETECTED]
    success, failure = SOUND_PATTERNS[Sound.SUCCESS], SOUND_PATTERNS[Sound.FAILURE]
    assert (card.n, success.n, failure.n, key.n) == (1, 2, 1, 1)
    assert key.on_s < card.on_s < failure.on_s  # a tick, a short beep, a long beep
    assert success.on_s == card.on_s
    assert failure.on_s >= 4 * card.on_s


def test_reminders_escalate_in_count_and_in_time_sounding() -> None:
    reminders = [SOUND_PATTERNS[REMINDER_SOUNDS[level]] for level in (1, 2, 3)]
    assert [p.n for p in reminders] == sorted({p.n for p in reminders})
    sounding = [p.sounding_s for p in reminders]
    assert sounding == sorted(sounding)
    assert len(set(sounding)) == 3
    # louder than the ordinary sounds: even the first reminder sounds longer than a failure beep
    assert reminders[0].sounding_s < reminders[1].sounding_s
    assert reminders[2].sounding_s > SOUND_PATTERNS[Sound.FAILURE].sounding_s
