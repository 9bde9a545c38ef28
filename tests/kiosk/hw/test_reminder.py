"""The card-left reminder: levels, when sounds are due, no catch-up bursts."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from kiosk.hw.config import ReminderSchedule
from kiosk.hw.reminder import CardLeftReminder, level_at, next_sound_at, sounds_due
from kiosk.hw.signals import Sound

DEFAULT = ReminderSchedule()  # levels at 5, 15, 30 s; repeats every 10 s


def sound_times(schedule: ReminderSchedule, until_s: float) -> list[float]:
    """Every sound time up to ``until_s``, enumerated the slow, obvious way."""
    times = []
    starts = schedule.remind_after_s
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else math.inf
        k = 0
        while start + k * schedule.repeat_s < end and start + k * schedule.repeat_s <= until_s:
            times.append(start + k * schedule.repeat_s)
            k += 1
    return times


def test_the_default_schedule_sounds_at_5_15_25_30_40() -> None:
    assert sound_times(DEFAULT, 45) == [5, 15, 25, 30, 40]
    assert [sounds_due(DEFAULT, t) for t in (0, 4.9, 5, 14.9, 15, 25, 29.9, 30, 40)] == [
        0,
        0,
        1,
        1,
        2,
        3,
        3,
        4,
        5,
    ]


def test_levels_rise_at_the_configured_times() -> None:
    assert [level_at(DEFAULT, t) for t in (0, 4.99, 5, 14.99, 15, 29.99, 30, 3600)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]


def test_a_runner_that_checks_every_second_hears_each_level_in_turn() -> None:
    reminder = CardLeftReminder(DEFAULT)
    heard = []
    for t in range(0, 61):
        step = reminder.check(float(t))
        if step.sound is not None:
            heard.append((t, step.sound))
    assert heard == [
        (5, Sound.REMINDER_1),
        (15, Sound.REMINDER_2),
        (25, Sound.REMINDER_2),
        (30, Sound.REMINDER_3),
        (40, Sound.REMINDER_3),
        (50, Sound.REMINDER_3),
        (60, Sound.REMINDER_3),
    ]


def test_a_runner_that_wakes_late_gets_one_sound_not_a_burst() -> None:
    reminder = CardLeftReminder(DEFAULT)
    step = reminder.check(45.0)  # asleep through five due sounds
    assert step.level == 3
    assert step.sound is Sound.REMINDER_3
    assert reminder.check(45.5).sound is None
    assert reminder.check(50.0).sound is Sound.REMINDER_3


def test_next_in_s_is_when_the_runner_should_check_again() -> None:
    reminder = CardLeftReminder(DEFAULT)
    assert reminder.check(0.0).next_in_s == 5.0
    assert reminder.check(5.0).next_in_s == 10.0
    assert reminder.check(12.5).next_in_s == 2.5
    assert reminder.check(29.0).next_in_s == 1.0
    assert reminder.check(31.0).next_in_s == 9.0


def test_reset_starts_over_for_the_next_result() -> None:
    reminder = CardLeftReminder(DEFAULT)
    assert reminder.check(6.0).sound is Sound.REMINDER_1
    reminder.reset()
    assert reminder.check(6.0).sound is Sound.REMINDER_1


def test_a_clock_going_backwards_repeats_nothing() -> None:
    reminder = CardLeftReminder(DEFAULT)
    assert reminder.check(16.0).sound is Sound.REMINDER_2
    assert reminder.check(6.0).sound is None


schedules = st.builds(
    lambda a, b, c, r: ReminderSchedule((a, a + b, a + b + c), r),
    st.floats(0.5, 30),
    st.floats(0.5, 60),
    st.floats(0.5, 60),
    st.floats(1, 30),
)


@given(schedules, st.floats(0, 300))
def test_the_arithmetic_agrees_with_enumerating_the_sounds(
    schedule: ReminderSchedule, elapsed: float
) -> None:
    times = sound_times(schedule, elapsed)
    assert sounds_due(schedule, elapsed) == len(times)
    following = sound_times(schedule, elapsed + 61 * schedule.repeat_s + 200)
    later = [t for t in following if t > elapsed]
    assert math.isclose(next_sound_at(schedule, elapsed), later[0], abs_tol=1e-6)


@given(schedules, st.lists(st.floats(0, 300), min_size=1, max_size=30))
def test_each_check_gives_at_most_one_sound_of_the_current_level(
    schedule: ReminderSchedule, checks: list[float]
) -> None:
    reminder = CardLeftReminder(schedule)
    played = 0
    for elapsed in sorted(checks):
        step = reminder.check(elapsed)
        if step.sound is not None:
            played += 1
            assert step.sound.value == f"reminder_{step.level}"
        assert step.next_in_s > 0
    assert played <= sounds_due(schedule, max(checks))
