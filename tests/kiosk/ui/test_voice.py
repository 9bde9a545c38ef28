"""Voice guidance: which prompt each screen says, and the build that renders them all."""

from __future__ import annotations

import argparse
import json
import re
import wave
from dataclasses import replace
from pathlib import Path

import pytest

from kiosk.flow.notices import Notice
from kiosk.flow.screens import Language, PinUnavailable, Screen, ScreenId
from kiosk.ui import cli, voice, voice_audio
from kiosk.ui.catalog import Catalog, default_catalogs
from kiosk.ui.samples import sample_screens
from kiosk.ui.view import Msg

CJK_OR_KANA = "\u3040-\u30ff\u3400-\u9fff"


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        return w.getnframes() / w.getframerate()


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kiosk")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.handler(args)
    return code


def test_every_patient_screen_has_a_prompt_and_staff_mode_none() -> None:
    for screen in sample_screens():
        prompt = voice.prompt_for(screen)
        if screen.id is ScreenId.STAFF_MODE:
            assert prompt is None
        else:
            assert prompt is not None, screen


def test_typing_digits_does_not_change_the_prompt_a_wrong_pin_does() -> None:
    pin = Screen(ScreenId.PIN_ENTRY, tries_left=3)
    names = {voice.prompt_for(replace(pin, digits_typed=d)) for d in range(4)}
    assert len(names) == 1
    wrong = voice.prompt_for(replace(pin, tries_left=2, wrong_pin=True))
    assert wrong is not None
    assert wrong.name == "pin_wrong-2"


def test_prompts_name_the_notice_and_what_to_do() -> None:
    revoked = voice.prompt_for(Screen(ScreenId.ERROR, notice=Notice.REVOKED))
    assert revoked is not None
    assert revoked.name == "notice-revoked-desk"
    assert voice.prompt_parts(revoked, Language.JA) == (
        "カードの電子証明書が失効しています",
        "カードをお取りになり、受付にお越しください。",
    )
    lifted = voice.prompt_for(Screen(ScreenId.REMOVED_EARLY, notice=Notice.CARD_REMOVED_EARLY))
    assert lifted is not None
    assert lifted.name == "notice-card_removed_early"
    for reason in PinUnavailable:
        floor = Screen(ScreenId.CHOOSE_CHECK, pin_unavailable=reason, tries_left=1)
        prompt = voice.prompt_for(floor)
        assert prompt is not None
        assert prompt.name == "choose_check-visual_only"
        assert "職員" in voice.prompt_text(prompt, Language.JA)


def test_an_outage_prompt_says_no_full_fee_and_the_desk() -> None:
    screens = [
        Screen(ScreenId.SERVER_UNREACHABLE),
        Screen(ScreenId.SERVER_UNREACHABLE, notice=Notice.SERVER_UNREACHABLE),
        Screen(ScreenId.NEEDS_STAFF, notice=Notice.SYSTEM_DOWN),
    ]
    for screen in screens:
        prompt = voice.prompt_for(screen)
        assert prompt is not None
        assert prompt.name == "outage"
    text = voice.prompt_text(prompt, Language.JA)
    assert "全額" in text
    assert "受付" in text


HIRAGANA_OR_MARK = re.compile(r"^[\u3040-\u309f]+$")
PUNCTUATION = re.compile(r"[。、，,.!?！？:;「」（）()]")


def phrases(text: str, language: Language) -> set[str]:
    """The phrases a listener would notice twice: six characters holding a kanji or katakana
    (Chinese and Japanese: grammar endings repeat by nature), three words elsewhere."""
    if language in (Language.JA, Language.ZH):
        runs = [run for run in PUNCTUATION.split(text) if run]
        return {
            run[i : i + 6]
            for run in runs
            for i in range(len(run) - 5)
            if not HIRAGANA_OR_MARK.match(run[i : i + 6])
        }
    words = PUNCTUATION.sub(" ", text.lower()).split()
    return {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}


@pytest.mark.parametrize("language", list(Language), ids=lambda lang: lang.value)
def test_no_prompt_says_a_phrase_twice(language: Language) -> None:
    """A wrong PIN once said "enter it again" twice in Japanese: no part of a prompt repeats a
    phrase of another (the take-card reminders repeat "take your card" on purpose)."""
    for prompt in voice.all_prompts():
        if prompt.name.startswith("take_card"):
            continue
        parts = [phrases(part, language) for part in voice.prompt_parts(prompt, language)]
        for i, mine in enumerate(parts):
            for theirs in parts[i + 1 :]:
                assert not mine & theirs, (prompt.name, mine & theirs)
    wrong = voice.prompt_for(Screen(ScreenId.PIN_ENTRY, wrong_pin=True))
    assert wrong is not None
    if language is Language.JA:
        assert voice.prompt_text(wrong, language).count("もう一度") == 1


def test_every_prompt_has_words_in_every_language() -> None:
    prompts = voice.all_prompts()
    assert len({p.name for p in prompts}) == len(prompts)
    names = {p.name for p in prompts}
    for notice in set(Notice) - {Notice.SYSTEM_DOWN, Notice.SERVER_UNREACHABLE}:
        name = f"notice-{notice.name.lower()}"
        assert {f"{name}-desk", f"{name}-take"} & names, name
    assert "outage" in names
    for language in Language:
        for prompt in prompts:
            text = voice.prompt_text(prompt, language)
            assert len(text) > 3, (language, prompt.name)
            assert "{" not in text, (language, prompt.name)


def test_foreign_voices_skip_the_japanese_names_in_brackets() -> None:
    prompt = voice.prompt_for(Screen(ScreenId.NO_CARD_HELP, notice=Notice.NO_CARD))
    assert prompt is not None
    assert voice.prompt_parts(prompt, Language.JA) == (
        "受付にお越しください。職員をお呼びしました。",
    )
    catalog = default_catalogs()[Language.EN]
    said = voice.prompt_text(
        voice.Prompt("x", (Msg("screen.no_card_help.body"),)), Language.EN, catalog
    )
    assert "資格確認書" in catalog.text("screen.no_card_help.body")
    assert "資格確認書" not in said
    assert "Eligibility Certificate" in said


def test_a_filtered_build_renders_those_prompts_in_those_languages(tmp_path: Path) -> None:
    out = tmp_path / "voice"
    assert (
        run_cli(
            "voice",
            "build",
            "--out",
            str(out),
            "--lang",
            "ja",
            "--lang",
            "en",
            "--only",
            "idle",
            "--only",
            "take_card-*",
        )
        == 0
    )
    expected = {
        f"{lang}/{name}.wav"
        for lang in ("ja", "en")
        for name in ["idle", *(f"take_card-{n}" for n in range(4))]
    }
    found = {str(p.relative_to(out)) for p in out.rglob("*.wav")}
    assert found == expected
    for path in found:
        assert wav_seconds(out / path) > 0.5, path
        assert (out / path).stat().st_mode & 0o444 == 0o444, "the kiosk user must read it"
    manifest = json.loads((out / voice.MANIFEST).read_text(encoding="utf-8"))
    assert set(manifest["files"]) == expected
    entry = manifest["files"]["ja/idle.wav"]
    assert entry["engine"] == "open_jtalk"
    assert "マイナンバーカード" in entry["text"]
    assert manifest["files"]["en/idle.wav"]["engine"] == "espeak-ng"


def test_a_rebuild_renders_only_what_changed(tmp_path: Path) -> None:
    jobs = voice.plan([Language.EN, Language.KO], only=["idle", "checking"])
    first = voice.build(tmp_path, jobs)
    assert len(first.rendered) == 4
    again = voice.build(tmp_path, jobs)
    assert again.rendered == []
    assert len(again.unchanged) == 4

    catalogs = dict(default_catalogs())
    en = dict(catalogs[Language.EN].messages)
    en["voice.idle"] = "Please put your card on the reader."
    catalogs[Language.EN] = Catalog(Language.EN, en)
    changed = voice.build(
        tmp_path, voice.plan([Language.EN, Language.KO], ["idle", "checking"], catalogs)
    )
    assert changed.rendered == ["en/idle.wav"]

    (tmp_path / "ko/checking.wav").write_bytes(b"RIFF broken")
    repaired = voice.build(tmp_path, jobs)
    assert "ko/checking.wav" in repaired.rendered
    assert "en/idle.wav" in repaired.rendered


def test_a_full_build_prunes_what_no_prompt_names(tmp_path: Path) -> None:
    jobs = voice.plan([Language.VI], only=["idle"])
    voice.build(tmp_path, voice.plan([Language.VI], only=["idle", "reading"]))
    report = voice.build(tmp_path, jobs, prune=True)
    assert report.removed == ["vi/reading.wav"]
    assert not (tmp_path / "vi/reading.wav").exists()
    assert set(voice.read_manifest(tmp_path)) == {"vi/idle.wav"}


def test_a_missing_engine_names_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(voice.shutil, "which", lambda name: None)
    with pytest.raises(voice.VoiceBuildError, match="install Debian's open-jtalk"):
        voice.build(tmp_path, voice.plan([Language.JA], only=["idle"]))
    with pytest.raises(voice.VoiceBuildError, match="install Debian's espeak-ng"):
        voice.build(tmp_path, voice.plan([Language.PT], only=["idle"]))


def test_a_failing_engine_leaves_no_partial_file(tmp_path: Path) -> None:
    broken = voice.Engine("espeak-ng", ("sh", "-c", "echo no such voice >&2; exit 3", "{out}"))
    failed = r"espeak-ng failed for idle\.wav: no such voice"
    with pytest.raises(voice.VoiceBuildError, match=failed):
        voice.synthesize(broken, ["hello", "again"], tmp_path / "en" / "idle.wav")
    assert list((tmp_path / "en").iterdir()) == []


def test_a_voice_espeak_does_not_have_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(voice.ESPEAK_VOICE, Language.KO, "tlh")
    with pytest.raises(voice.VoiceBuildError, match="no voice 'tlh' for ko"):
        voice.check_engines([Language.KO])
    voice.check_engines([Language.EN, Language.VI])


def test_the_list_command_prints_each_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("voice", "list", "--lang", "pt", "--only", "take_card-*") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [f"pt/take_card-{n}.wav" for n in range(4)]


def test_the_full_build_has_every_prompt_in_every_language(voice_dir: Path) -> None:
    """Built once per change into pytest's cache (`make test` renders it on a fresh clone)."""
    manifest = voice.read_manifest(voice_dir)
    expected = {job.path for job in voice.plan()}
    assert set(manifest) == expected
    assert len(expected) == len(voice.all_prompts()) * len(Language)
    for path in sorted(expected):
        assert wav_seconds(voice_dir / path) > 0.4, path
        level = voice_audio.measure(voice_audio.read_pcm(voice_dir / path))
        assert level.seconds <= voice_audio.MAX_PROMPT_S, (path, level)
        assert level.peak_db <= voice_audio.PEAK_CEILING_DB + 0.05, (path, level)
        assert abs(level.loudness_db - voice_audio.TARGET_LOUDNESS_DB) <= 0.5, (path, level)
    report = voice.build(voice_dir, voice.plan())
    assert report.rendered == [], "a second build renders nothing"


def test_measure_prints_each_prompt_and_flags_a_broken_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "voice"
    assert (
        run_cli("voice", "build", "--out", str(out), "--lang", "en", "--only", "take_card-*") == 0
    )
    capsys.readouterr()
    assert run_cli("voice", "measure", str(out), "--lang", "en", "--only", "take_card-*") == 0
    printed = capsys.readouterr().out
    assert [line.split()[0] for line in printed.splitlines()[1:5]] == [
        f"en/take_card-{n}.wav" for n in range(4)
    ]
    assert "espeak-ng: 4 prompts, loudness -22.0..-22.0 dB" in printed
    (out / "en" / "take_card-2.wav").write_bytes(b"broken")
    assert run_cli("voice", "measure", str(out), "--lang", "en", "--only", "take_card-*") == 1
    assert "take_card-2.wav: not a readable WAV" in capsys.readouterr().err
