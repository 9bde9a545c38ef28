"""The whole transition table, walked: every state reachable from the one initial state, every
state with a timeout and a way back to idle, removal handled wherever a card is on the reader.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from kiosk.flow.effects import EndSession, Record, ShowScreen, StartTimer
from kiosk.flow.events import CardLifted, TimerFired
from kiosk.flow.machine import FlowMachine
from kiosk.flow.screens import ScreenId
from kiosk.flow.settings import FlowSettings
from kiosk.flow.states import (
    STATE_TYPES,
    CardSession,
    Concluded,
    FlowState,
    Idle,
    RemovedEarly,
    StaffMode,
    TakeCard,
    VisualCheckWait,
)
from kiosk.flow.views import card_present, lights_of, screen_of, timeout_of
from tests.support.machine import events_for

MACHINE = FlowMachine()


def key(state: FlowState) -> FlowState:
    """The state without its counters, so the walk ends."""
    normal = replace(state, timer=0, session=0, visit=0)
    if isinstance(normal, CardSession):
        normal = replace(normal, wrong_pins=min(normal.wrong_pins, 1))
    if isinstance(normal, VisualCheckWait):
        normal = replace(normal, alerts=min(normal.alerts, 1))
    if isinstance(normal, TakeCard):
        result = key(normal.result) if normal.result is not None else None
        normal = replace(normal, elapsed_s=min(normal.elapsed_s, 40.0), result=result)
    return normal


def walk() -> tuple[dict[FlowState, FlowState], dict[FlowState, set[FlowState]]]:
    """Breadth-first over every event in every reachable state."""
    start, _ = MACHINE.initial()
    seen = {key(start): start}
    edges: dict[FlowState, set[FlowState]] = {}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        here = edges.setdefault(key(state), set())
        for event in events_for(state):
            new, _ = MACHINE.step(state, event)
            k = key(new)
            here.add(k)
            if k not in seen:
                seen[k] = new
                queue.append(new)
        assert len(seen) < 5000, "the walk does not end: a counter leaks into the state"
    return seen, edges


SEEN, EDGES = walk()


def test_there_is_one_initial_state_and_it_is_idle() -> None:
    state, effects = MACHINE.initial()
    assert type(state) is Idle
    assert any(isinstance(e, StartTimer) for e in effects)


def test_every_state_is_reachable_from_the_initial_state() -> None:
    reached = {type(s) for s in SEEN.values()}
    assert reached == set(STATE_TYPES)


def test_every_state_has_its_own_screen() -> None:
    assert {t.screen_id for t in STATE_TYPES} == set(ScreenId)
    assert len(STATE_TYPES) == len(ScreenId)
    for state in SEEN.values():
        assert screen_of(state).id is state.screen_id
        lights_of(state)


def test_every_reachable_state_has_a_timeout_that_does_something() -> None:
    for state in SEEN.values():
        seconds = timeout_of(state, FlowSettings())
        assert seconds > 0
        new, effects = MACHINE.step(state, TimerFired(state.timer))
        assert effects, f"{state} ignores its own timeout"
        assert any(isinstance(e, StartTimer) and e.generation == new.timer for e in effects)


def test_no_state_is_a_trap_every_one_leads_back_to_idle() -> None:
    idle = {k for k in EDGES if isinstance(k, Idle)}
    can_reach_idle = set(idle)
    changed = True
    while changed:
        changed = False
        for state, targets in EDGES.items():
            if state not in can_reach_idle and targets & can_reach_idle:
                can_reach_idle.add(state)
                changed = True
    trapped = set(EDGES) - can_reach_idle
    assert not trapped


def test_removal_is_handled_in_every_state_that_holds_a_card() -> None:
    holding = [s for s in SEEN.values() if card_present(s)]
    assert {type(s) for s in holding} >= {
        *(t for t in STATE_TYPES if issubclass(t, CardSession | Concluded)),
        TakeCard,
        StaffMode,
    }
    for state in holding:
        new, effects = MACHINE.step(state, CardLifted())
        assert not card_present(new), f"{type(state).__name__} ignores the removal"
        if isinstance(state, CardSession):
            assert isinstance(new, RemovedEarly)
            assert EndSession(state.session) in effects
        # then, by its timeouts alone, it gets back to idle
        for _ in range(3):
            if isinstance(new, Idle):
                break
            new, _ = MACHINE.step(new, TimerFired(new.timer))
        if not isinstance(state, StaffMode):
            assert isinstance(new, Idle), f"after removal in {type(state).__name__}: {new}"


def test_every_change_of_state_is_logged_shown_and_timed() -> None:
    for state in SEEN.values():
        for event in events_for(state):
            new, effects = MACHINE.step(state, event)
            if type(new) is type(state):
                continue
            transitions = [
                e for e in effects if isinstance(e, Record) and e.kind == "flow.transition"
            ]
            assert len(transitions) == 1
            assert transitions[0].payload["to"] == new.name
            assert ShowScreen(screen_of(new)) in effects
            assert StartTimer(timeout_of(new, FlowSettings()), new.timer) in effects
            if isinstance(state, CardSession) and not isinstance(new, CardSession):
                assert EndSession(state.session) in effects
