"""Voice guidance: a spoken prompt for each screen, rendered at build time, played on the kiosk.

Prompts are rendered once into WAV files (``kiosk voice build --out DIR``): Japanese with
Open JTalk (Debian ``open-jtalk`` with the NAIST dictionary and the NITech m001 voice), the
other languages with espeak-ng. ``DIR/<language>/<prompt>.wav`` holds each file and
``DIR/manifest.json`` the hash of what produced it (engine, options, text), so a rebuild only
renders what changed.

The texts come from the catalogues: ``voice.<prompt>`` keys, plus a notice's title and then
its advice (or, on a final screen, "please take your card (to the desk)"), and the tries-left
phrases for the PIN. Each part is rendered on its own and the parts are joined with a pause,
trimmed and levelled to one loudness for both engines (:mod:`kiosk.ui.voice_audio`); no
prompt may run past 8 s (``kiosk voice measure DIR`` prints the figures).

On the kiosk, :class:`VoicePlayer` plays the prompt of each new screen through
``pygame.mixer`` (in the UI thread) and says nothing again while the prompt stays the same
(typing PIN digits does not repeat it).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.errors import KioskError
from kiosk.flow.notices import Notice
from kiosk.flow.screens import Language, PinUnavailable, Screen, ScreenId
from kiosk.ui.catalog import Catalog, default_catalogs
from kiosk.ui.config import VoiceConfig
from kiosk.ui.samples import sample_screens
from kiosk.ui.view import FINAL_SCREENS, Msg, take_your_card
from kiosk.ui.voice_audio import (
    PAUSE_S,
    PEAK_CEILING_DB,
    TARGET_LOUDNESS_DB,
    VoiceAudioError,
    join,
    normalise,
    read_pcm,
    write_pcm,
)

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
#: The PIN of the user-authentication certificate allows 3 tries: every count a prompt can say.
TRY_COUNTS = (1, 2, 3)


class VoiceBuildError(KioskError):
    """A voice prompt could not be rendered (a missing engine, or the engine failed)."""

    code = "voice.build"


# --- prompts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """One spoken prompt: ``name`` is its file stem, ``parts`` are said in order."""

    name: str
    parts: tuple[Msg, ...]


def _voice(name: str) -> Msg:
    return Msg(f"voice.{name}")


_SIMPLE: dict[ScreenId, str] = {
    ScreenId.IDLE: "idle",
    ScreenId.LANGUAGES: "languages",
    ScreenId.NO_CARD_HELP: "no_card_help",
    ScreenId.READING: "reading",
    ScreenId.CHECKING: "checking",
    ScreenId.VISUAL_WAIT: "visual_wait",
}

_NOTICE_SCREENS: dict[ScreenId, str] = {
    ScreenId.NEEDS_STAFF: "needs_staff",
    ScreenId.ERROR: "error",
    ScreenId.REMOVED_EARLY: "removed_early",
    ScreenId.READER_MISSING: "reader_missing",
    ScreenId.SERVER_UNREACHABLE: "server_unreachable",
}


#: The national system or the clinic server is out of reach: one prompt says it all.
_OUTAGES = frozenset({Notice.SYSTEM_DOWN, Notice.SERVER_UNREACHABLE})


def prompt_for(screen: Screen) -> Prompt | None:
    """What to say when ``screen`` appears; None for staff mode. Ignores the digits typed."""
    sid = screen.id
    if sid in _SIMPLE:
        return Prompt(_SIMPLE[sid], (_voice(_SIMPLE[sid]),))
    if sid is ScreenId.CHOOSE_CHECK:
        if screen.pin_unavailable is None:
            return Prompt("choose_check", (_voice("choose_check"),))
        # the reason is on the screen (and told by staff): said aloud it would run too long
        title = Msg("screen.choose_check.title_visual_only")
        return Prompt("choose_check-visual_only", (title, _voice("choose_visual_only")))
    if sid is ScreenId.PIN_ENTRY:
        tries = screen.tries_left
        if screen.wrong_pin:
            if tries is None:
                return Prompt("pin_wrong", (Msg("pin.wrong_retry"), _voice("pin_again")))
            return Prompt(f"pin_wrong-{tries}", (Msg("pin.wrong", tries), _voice("pin_again")))
        if tries is None:
            return Prompt("pin_entry", (_voice("pin_entry"),))
        return Prompt(f"pin_entry-{tries}", (_voice("pin_entry"), Msg("pin.tries_left", tries)))
    if sid is ScreenId.RESULT_OK:
        if screen.renew_certificate or screen.certificate_expiry is not None:
            return Prompt("result_ok-renew", (_voice("result_ok"), _voice("result_ok_renew")))
        return Prompt("result_ok", (_voice("result_ok"),))
    if sid is ScreenId.TAKE_CARD:
        level = min(max(screen.reminder_level, 0), 3)
        return Prompt(f"take_card-{level}", (_voice(f"take_card_{level}"),))
    if sid is ScreenId.SERVER_UNREACHABLE and screen.notice is None:
        return Prompt("outage", (_voice("outage"),))
    if sid in _NOTICE_SCREENS:
        if screen.notice is not None:
            key = screen.notice.key
            name = f"notice-{screen.notice.name.lower()}"
            parts = (Msg(f"{key}.title"), Msg(f"{key}.advice"))
            if screen.notice in _OUTAGES:  # not charged in full, go to the desk: one sentence
                return Prompt("outage", (_voice("outage"),))
            if sid in FINAL_SCREENS:  # the title, then what to do: take the card (to the desk)
                to_desk = take_your_card(screen).text == Msg("final.take_card_to_desk")
                last = Msg("final.take_card_to_desk" if to_desk else "final.take_card")
                return Prompt(f"{name}-{'desk' if to_desk else 'take'}", (parts[0], last))
            return Prompt(name, parts)
        return Prompt(_NOTICE_SCREENS[sid], (_voice(_NOTICE_SCREENS[sid]),))
    return None


def all_prompts() -> list[Prompt]:
    """Every prompt any screen can ask for, by name."""
    screens = list(sample_screens())
    for n in TRY_COUNTS:
        screens.append(Screen(ScreenId.PIN_ENTRY, tries_left=n))
        screens.append(Screen(ScreenId.PIN_ENTRY, tries_left=n, wrong_pin=True))
        screens.append(
            Screen(ScreenId.CHOOSE_CHECK, pin_unavailable=PinUnavailable.AT_FLOOR, tries_left=n)
        )
    prompts: dict[str, Prompt] = {}
    for screen in screens:
        prompt = prompt_for(screen)
        if prompt is not None:
            prompts.setdefault(prompt.name, prompt)
    return sorted(prompts.values(), key=lambda p: p.name)


#: Japanese words in brackets, kept in other languages' texts so the patient can match the
#: paper they hold; a foreign-language voice would only stumble over them.
_JAPANESE_IN_BRACKETS = re.compile(r"\s*[（(][^()（）]*[\u3040-\u30ff\u3400-\u9fff][^()（）]*[)）]")


def prompt_parts(
    prompt: Prompt, language: Language, catalog: Catalog | None = None
) -> tuple[str, ...]:
    """What the synthesiser says for each part of ``prompt`` in ``language`` (a pause of
    :data:`~kiosk.ui.voice_audio.PAUSE_S` goes between them)."""
    cat = catalog or default_catalogs()[language]
    texts = [cat.text(part.key, part.n, part.on) for part in prompt.parts]
    if language is not Language.JA:
        texts = [_JAPANESE_IN_BRACKETS.sub("", text) for text in texts]
    return tuple(texts)


def prompt_text(prompt: Prompt, language: Language, catalog: Catalog | None = None) -> str:
    """What the synthesiser says for ``prompt`` in ``language``, as one line."""
    return " ".join(prompt_parts(prompt, language, catalog))


# --- synthesis ---------------------------------------------------------------------------------

OPEN_JTALK_DICT = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")
OPEN_JTALK_VOICE = Path("/usr/share/hts-voice/nitech-jp-atr503-m001/nitech_jp_atr503_m001.htsvoice")

#: espeak-ng voices: American English, Mandarin, Korean, Northern Vietnamese, Brazilian
#: Portuguese (the Portuguese most often spoken in Japan).
ESPEAK_VOICE: dict[Language, str] = {
    Language.EN: "en-us",
    Language.ZH: "cmn",
    Language.KO: "ko",
    Language.VI: "vi",
    Language.PT: "pt-br",
}
#: A calm pace for older listeners: words per minute for espeak-ng, speed for Open JTalk.
ESPEAK_SPEED_WPM = 150
#: espeak-ng's Mandarin and Korean voices count syllables: at 150 they drawl (a Chinese prompt
#: ran past 11 s); these rates sound as calm as the others (measured: ``kiosk voice measure``).
ESPEAK_SPEED_BY_LANGUAGE: dict[Language, int] = {Language.ZH: 220, Language.KO: 165}
OPEN_JTALK_SPEED = 1.0


@dataclass(frozen=True)
class Engine:
    """How one language is spoken: a command that reads UTF-8 text on stdin, writes a WAV."""

    name: str
    argv: tuple[str, ...]  # "{out}" stands for the output file

    @property
    def identity(self) -> str:
        return " ".join(self.argv)

    def command(self, out: Path) -> list[str]:
        return [str(out) if arg == "{out}" else arg for arg in self.argv]


def engine_for(language: Language) -> Engine:
    if language is Language.JA:
        return Engine(
            "open_jtalk",
            (
                "open_jtalk",
                "-x",
                str(OPEN_JTALK_DICT),
                "-m",
                str(OPEN_JTALK_VOICE),
                "-r",
                str(OPEN_JTALK_SPEED),
                "-ow",
                "{out}",
            ),
        )
    return Engine(
        "espeak-ng",
        (
            "espeak-ng",
            "-v",
            ESPEAK_VOICE[language],
            "-s",
            str(ESPEAK_SPEED_BY_LANGUAGE.get(language, ESPEAK_SPEED_WPM)),
            "-b",
            "1",
            "-w",
            "{out}",
        ),
    )


def check_engines(languages: Iterable[Language]) -> None:
    """Fail with the Debian package to install when an engine or its data is missing."""
    needs = set(languages)
    if Language.JA in needs:
        if shutil.which("open_jtalk") is None:
            raise VoiceBuildError("open_jtalk not found: install Debian's open-jtalk")
        if not OPEN_JTALK_DICT.is_dir():
            raise VoiceBuildError(
                f"{OPEN_JTALK_DICT} missing: install Debian's open-jtalk-mecab-naist-jdic"
            )
        if not OPEN_JTALK_VOICE.is_file():
            raise VoiceBuildError(
                f"{OPEN_JTALK_VOICE} missing: install Debian's hts-voice-nitech-jp-atr503-m001"
            )
    others = needs - {Language.JA}
    if others:
        if shutil.which("espeak-ng") is None:
            raise VoiceBuildError("espeak-ng not found: install Debian's espeak-ng")
        # espeak-ng speaks an unknown voice in its default (English) voice without a word
        known = _espeak_voices()
        for language in sorted(others):
            if ESPEAK_VOICE[language] not in known:
                raise VoiceBuildError(
                    f"espeak-ng has no voice {ESPEAK_VOICE[language]!r} for {language.value}: "
                    "install Debian's espeak-ng-data"
                )


def _espeak_voices() -> set[str]:
    """The voice names espeak-ng knows (the second column of ``espeak-ng --voices``)."""
    result = subprocess.run(
        ["espeak-ng", "--voices"], capture_output=True, text=True, timeout=30, check=False
    )
    names = set()
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2:
            names.add(fields[1])
    return names


#: How the parts become one file: changing it re-renders every prompt.
AUDIO_RECIPE = (
    f"parts joined by {PAUSE_S} s; "
    f"levelled to {TARGET_LOUDNESS_DB} dB, peak <= {PEAK_CEILING_DB} dB"
)


def input_hash(engine: Engine, parts: Sequence[str]) -> str:
    recipe = "\n".join((engine.identity, AUDIO_RECIPE, *parts))
    return hashlib.sha256(recipe.encode()).hexdigest()


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _speak(engine: Engine, text: str, out: Path, name: str) -> None:
    """One part of the prompt ``name`` into ``out``."""
    result = subprocess.run(
        engine.command(out), input=text.encode(), capture_output=True, timeout=120, check=False
    )
    if result.returncode != 0 or out.stat().st_size <= 44:
        message = result.stderr.decode(errors="replace").strip()[:200]
        raise VoiceBuildError(f"{engine.name} failed for {name}: {message or 'no audio'}")


def synthesize(engine: Engine, parts: str | Sequence[str], out: Path) -> None:
    """Render ``parts`` into ``out``, a pause between them, levelled (atomically: a failed run
    leaves no partial file)."""
    texts = [parts] if isinstance(parts, str) else list(parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".wav", dir=out.parent, prefix=f".{out.stem}.")
    os.close(fd)
    tmp = Path(tmp_name)
    pieces = [tmp.with_suffix(f".{i}.wav") for i in range(len(texts))]
    try:
        for text, piece in zip(texts, pieces, strict=True):
            _speak(engine, text, piece, out.name)
        write_pcm(normalise(join([read_pcm(piece) for piece in pieces])), tmp)
        tmp.chmod(0o644)  # mkstemp makes it private; the kiosk's own user plays it
        tmp.replace(out)
    except VoiceAudioError as exc:
        raise VoiceBuildError(f"{engine.name} wrote unusable audio for {out.name}: {exc}") from exc
    except OSError as exc:
        raise VoiceBuildError(f"{engine.name} could not run: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
        for piece in pieces:
            piece.unlink(missing_ok=True)


@dataclass(frozen=True)
class Job:
    language: Language
    prompt: Prompt
    parts: tuple[str, ...]
    engine: Engine

    @property
    def text(self) -> str:
        return " ".join(self.parts)

    @property
    def path(self) -> str:
        return f"{self.language.value}/{self.prompt.name}.wav"


@dataclass
class BuildReport:
    rendered: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def plan(
    languages: Sequence[Language] | None = None,
    only: Sequence[str] = (),
    catalogs: Mapping[Language, Catalog] | None = None,
) -> list[Job]:
    """The prompts to render: every prompt in ``languages``, or those matching ``only``."""
    cats = catalogs or default_catalogs()
    jobs = []
    for language in languages or list(Language):
        engine = engine_for(language)
        for prompt in all_prompts():
            if only and not any(fnmatch.fnmatchcase(prompt.name, p) for p in only):
                continue
            jobs.append(
                Job(language, prompt, prompt_parts(prompt, language, cats[language]), engine)
            )
    return jobs


def read_manifest(out_dir: Path) -> dict[str, dict[str, str]]:
    try:
        doc = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("voice manifest %s unreadable (%s): rendering everything", out_dir, exc)
        return {}
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        return {}
    files = doc.get("files")
    return files if isinstance(files, dict) else {}


def _write_manifest(out_dir: Path, files: Mapping[str, Mapping[str, str]]) -> None:
    tmp = out_dir / f".{MANIFEST}.tmp"
    doc = {"format": MANIFEST_FORMAT, "files": dict(sorted(files.items()))}
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out_dir / MANIFEST)


def build(
    out_dir: Path,
    jobs: Sequence[Job],
    *,
    workers: int | None = None,
    prune: bool = False,
    progress: Callable[[str], None] | None = None,
) -> BuildReport:
    """Render ``jobs`` into ``out_dir``, skipping every file whose inputs did not change.

    ``prune`` deletes WAV files and manifest entries no job names (for a full build).
    """
    check_engines({job.language for job in jobs})
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(out_dir)
    report = BuildReport()
    todo = []
    for job in jobs:
        entry = manifest.get(job.path, {})
        path = out_dir / job.path
        digest = input_hash(job.engine, job.parts)
        if (
            entry.get("input") == digest
            and path.is_file()
            and entry.get("sha256") == _file_hash(path)
        ):
            report.unchanged.append(job.path)
        else:
            todo.append(job)

    def render(job: Job) -> Job:
        synthesize(job.engine, job.parts, out_dir / job.path)
        return job

    try:
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
            for job in pool.map(render, todo):
                manifest[job.path] = {
                    "input": input_hash(job.engine, job.parts),
                    "sha256": _file_hash(out_dir / job.path),
                    "engine": job.engine.name,
                    "text": job.text,
                }
                report.rendered.append(job.path)
                if progress is not None:
                    progress(job.path)
    finally:
        # what was rendered before a failure is kept, so the next run resumes
        if prune:
            wanted = {job.path for job in jobs}
            for stale in sorted(set(manifest) - wanted):
                del manifest[stale]
                (out_dir / stale).unlink(missing_ok=True)
                report.removed.append(stale)
        _write_manifest(out_dir, manifest)
    return report


# --- playback ----------------------------------------------------------------------------------


class VoicePlayer:
    """Plays the prompt of each new screen. Lives in the UI thread (pygame is not shared).

    Nothing here ever stops the screen: a missing sound card, directory or file is logged
    once, clearly, and the kiosk goes on silently.
    """

    def __init__(self, config: VoiceConfig) -> None:
        self.config = config
        self._ready = False
        self._current: tuple[Language, str] | None = None
        self._warned: set[str] = set()
        #: the prompts asked for, in order (for tests and the demo transcript)
        self.played: list[str] = []

    def start(self) -> None:
        if not self.config.enabled:
            return
        import pygame

        if not (self.config.directory / MANIFEST).is_file():
            self._warn_once(
                "dir",
                "voice guidance is off: %s has no %s (build it with `kiosk voice build --out %s`)",
                self.config.directory,
                MANIFEST,
                self.config.directory,
            )
            return
        try:
            if not pygame.mixer.get_init():
                pygame.mixer.init()
        except pygame.error as exc:
            self._warn_once("mixer", "voice guidance is off: no sound output (%s)", exc)
            return
        self._ready = True

    def stop(self) -> None:
        if self._ready:
            import pygame

            pygame.mixer.stop()
            pygame.mixer.quit()
            self._ready = False

    def path(self, language: Language, prompt: Prompt) -> Path:
        return self.config.directory / language.value / f"{prompt.name}.wav"

    def screen_changed(self, screen: Screen) -> None:
        prompt = prompt_for(screen)
        key = None if prompt is None else (screen.language, prompt.name)
        if key == self._current:
            return
        self._current = key
        if not self._ready:
            return
        import pygame

        pygame.mixer.stop()  # a new screen interrupts the old prompt
        if prompt is None:
            return
        path = self.path(screen.language, prompt)
        self.played.append(f"{screen.language.value}/{prompt.name}")
        try:
            sound = pygame.mixer.Sound(str(path))
        except (pygame.error, FileNotFoundError) as exc:
            self._warn_once(
                str(path),
                "voice prompt %s is missing or unreadable (%s): run `kiosk voice build --out %s`",
                path,
                exc,
                self.config.directory,
            )
            return
        sound.set_volume(self.config.volume)
        sound.play()

    def _warn_once(self, what: str, message: str, *args: object) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning(message, *args)
