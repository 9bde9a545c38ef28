"""The sound of the voice prompts: joining parts with a pause, measuring, levelling.

Each prompt is rendered part by part (a notice's title, then its advice...) and the parts are
joined with :data:`PAUSE_S` of silence, so the listener hears where the title ends. Open JTalk
and espeak-ng speak at very different levels; every prompt is then scaled to the same
loudness (:data:`TARGET_LOUDNESS_DB`) without letting its peak pass :data:`PEAK_CEILING_DB`,
so nothing clips and a Japanese prompt is as loud as an English one.

Loudness here is gated RMS, in dB relative to full scale: the mean power of the 100 ms blocks
that hold speech (blocks more than :data:`GATE_DB` below the loudest block are left out, as
EBU R 128 gates silence), unweighted. ``kiosk voice measure DIR`` prints it with the peak and
the length of every prompt.

Pure Python on 16-bit mono PCM (what both engines write): no audio library on the kiosk.
"""

from __future__ import annotations

import math
import sys
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import KioskError

#: Silence between the parts of a prompt (title, then advice).
PAUSE_S = 0.45
#: Every prompt is levelled to this gated loudness (dB full scale)...
TARGET_LOUDNESS_DB = -22.0
#: ...unless that would lift its highest sample above this (dB full scale): no clipping.
PEAK_CEILING_DB = -1.0
#: Blocks of this length are measured; those this far below the loudest are silence.
BLOCK_S = 0.1
GATE_DB = 30.0
#: The longest a prompt may last: a patient listens while acting.
MAX_PROMPT_S = 8.0
#: The engines' own silence before and after each part is cut to this...
EDGE_S = 0.08
#: ...counting as silence what stays this far below the part's peak.
SILENCE_DB = 40.0

FULL_SCALE = 32768.0


class VoiceAudioError(KioskError):
    """A WAV file the voice build cannot use (not 16-bit mono PCM, or unreadable)."""

    code = "voice.audio"


@dataclass(frozen=True)
class Pcm:
    """16-bit mono samples at ``rate`` Hz."""

    rate: int
    samples: array[int]  # array("h")

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


@dataclass(frozen=True)
class Level:
    """How loud a prompt is: its peak and gated loudness (dB full scale), and its length."""

    peak_db: float
    loudness_db: float
    seconds: float


def read_pcm(path: Path) -> Pcm:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise VoiceAudioError(
                    f"{path.name}: {w.getnchannels()} channel(s) of {8 * w.getsampwidth()} bits, "
                    "not 16-bit mono"
                )
            rate = w.getframerate()
            data = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise VoiceAudioError(f"{path.name}: not a readable WAV file ({exc})") from exc
    samples = array("h")
    samples.frombytes(data)
    if sys.byteorder == "big":
        samples.byteswap()
    return Pcm(rate, samples)


def write_pcm(pcm: Pcm, path: Path) -> None:
    samples = array("h", pcm.samples)
    if sys.byteorder == "big":
        samples.byteswap()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(pcm.rate)
        w.writeframes(samples.tobytes())


def trim(pcm: Pcm, edge_s: float = EDGE_S) -> Pcm:
    """``pcm`` without the silence an engine leaves before and after speech, but ``edge_s``."""
    samples = pcm.samples
    peak = max((abs(s) for s in samples), default=0)
    threshold = peak * 10 ** (-SILENCE_DB / 20)
    first = next((i for i, s in enumerate(samples) if abs(s) > threshold), None)
    if first is None:
        return pcm
    last = len(samples) - next(i for i, s in enumerate(reversed(samples)) if abs(s) > threshold)
    edge = round(edge_s * pcm.rate)
    return Pcm(pcm.rate, samples[max(0, first - edge) : min(len(samples), last + edge)])


def join(parts: list[Pcm], pause_s: float = PAUSE_S) -> Pcm:
    """The parts, each trimmed, one after the other with ``pause_s`` of silence between them
    (and ``EDGE_S`` before the first and after the last)."""
    if not parts:
        raise VoiceAudioError("a prompt needs at least one part")
    rate = parts[0].rate
    if any(part.rate != rate for part in parts):
        raise VoiceAudioError("the parts of a prompt have different sample rates")
    gap = array("h", bytes(2 * round(pause_s * rate)))
    out = array("h")
    for i, part in enumerate(parts):
        if i:
            out.extend(gap)
        out.extend(trim(part).samples)
    return Pcm(rate, out)


def _db(ratio: float) -> float:
    return 20 * math.log10(ratio) if ratio > 0 else -math.inf


def measure(pcm: Pcm) -> Level:
    """Peak and gated loudness of ``pcm`` (see the module docstring)."""
    samples = pcm.samples
    peak = max((abs(s) for s in samples), default=0)
    block = max(1, round(BLOCK_S * pcm.rate))
    powers = []
    for start in range(0, len(samples), block):
        chunk = samples[start : start + block]
        powers.append(sum(s * s for s in chunk) / len(chunk))
    loudest = max(powers, default=0.0)
    if loudest <= 0:
        return Level(-math.inf, -math.inf, pcm.seconds)
    floor = loudest * 10 ** (-GATE_DB / 10)
    speech = [p for p in powers if p >= floor]
    mean_power = sum(speech) / len(speech)
    return Level(
        peak_db=_db(peak / FULL_SCALE),
        loudness_db=_db(math.sqrt(mean_power) / FULL_SCALE),
        seconds=pcm.seconds,
    )


def level_gain(level: Level) -> float:
    """The factor that brings ``level`` to the target loudness, capped by the peak ceiling."""
    if level.loudness_db == -math.inf:
        return 1.0
    gain_db = min(TARGET_LOUDNESS_DB - level.loudness_db, PEAK_CEILING_DB - level.peak_db)
    return float(10 ** (gain_db / 20))


def normalise(pcm: Pcm) -> Pcm:
    """``pcm`` scaled to the target loudness, its peak kept under the ceiling."""
    gain = level_gain(measure(pcm))
    top = round(FULL_SCALE * 10 ** (PEAK_CEILING_DB / 20))
    out = array("h", (max(-top, min(top, round(s * gain))) for s in pcm.samples))
    return Pcm(pcm.rate, out)
