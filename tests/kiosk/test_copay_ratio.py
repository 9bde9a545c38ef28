"""The copay ratio on the result screen, only when the clinic turns it on: ``[result]
show_copay_ratio`` (off by default), carried from the server's answer through the flow to the
screen; when off it never reaches the screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.errors import ConfigError
from kiosk.flow.events import Answer, PinAccepted
from kiosk.flow.screens import Language, Screen, ScreenId
from kiosk.flow.settings import FlowSettings
from kiosk.flow.states import ResultOk
from kiosk.flow.views import screen_of
from kiosk.ui.catalog import default_catalogs
from kiosk.ui.view import Msg, describe
from tests.kiosk.test_config import GOOD, parse
from tests.support.machine import VID, Driver

WITH_COPAY = Answer(VID, False, "eligible", "eligible", 1, copay_percent=30)


def _texts(screen: Screen) -> list[str]:
    view = describe(screen)
    catalog = default_catalogs()[screen.language]
    out = []
    for text in (view.title, *(para.text for para in view.body)):
        assert isinstance(text, Msg)
        out.append(catalog.text(text.key, text.n, text.on))
    return out


# --- the setting -------------------------------------------------------------------------------


def test_the_copay_ratio_is_off_by_default(tmp_path: Path) -> None:
    assert "[result]" not in GOOD
    assert parse(GOOD, tmp_path).flow.show_copay_ratio is False
    assert FlowSettings().show_copay_ratio is False


def test_the_clinic_turns_it_on(tmp_path: Path) -> None:
    config = parse(GOOD + "\n[result]\nshow_copay_ratio = true\n", tmp_path)
    assert config.flow.show_copay_ratio is True


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ('show_copay_ratio = "yes"', "[result] show_copay_ratio must be true or false"),
        ("show_copay_ratio = 1", "[result] show_copay_ratio must be true or false"),
        ("show_copay = true", "show_copay"),
    ],
)
def test_a_bad_result_setting_is_named(tmp_path: Path, table: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse(GOOD + f"\n[result]\n{table}\n", tmp_path)


def test_the_example_file_documents_it_off() -> None:
    example = (Path(__file__).parents[2] / "examples" / "kiosk.toml").read_text("utf-8")
    assert "[result]\nshow_copay_ratio = false" in example


# --- the flow ----------------------------------------------------------------------------------


def _result(settings: FlowSettings) -> ResultOk:
    driver = Driver.with_settings(settings)
    driver.read()
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    driver.answer(WITH_COPAY)
    state = driver.state
    assert isinstance(state, ResultOk)
    return state


def test_on_the_ratio_reaches_the_result_screen() -> None:
    state = _result(FlowSettings(show_copay_ratio=True))
    assert state.copay_percent == 30
    assert screen_of(state).copay_percent == 30


def test_off_the_ratio_never_reaches_the_result_screen() -> None:
    state = _result(FlowSettings())
    assert state.copay_percent is None
    screen = screen_of(state)
    assert screen.copay_percent is None
    for language in Language:
        assert not any("30" in text for text in _texts(Screen(ScreenId.RESULT_OK, language)))


# --- the screen --------------------------------------------------------------------------------


@pytest.mark.parametrize("language", list(Language))
def test_the_result_screen_shows_the_ratio_in_every_language(language: Language) -> None:
    on = _texts(Screen(ScreenId.RESULT_OK, language, copay_percent=20))
    off = _texts(Screen(ScreenId.RESULT_OK, language))
    assert "20%" in on[0]
    assert not any("%" in text for text in off)
    assert len(on) == len(off) == 3, "still the title and two lines"
    assert on[1:] == off[1:]
