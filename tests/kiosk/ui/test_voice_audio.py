"""The sound of a prompt: parts joined by a pause, silence trimmed, levelled without clipping."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

import pytest

from kiosk.ui import voice_audio
from kiosk.ui.voice_audio import Pcm, VoiceAudioError

RATE = 16_000


def tone(seconds: float, amplitude: int, *, silence_s: float = 0.0) -> Pcm:
    """A 440 Hz tone with ``silence_s`` of silence before and after."""
    quiet = [0] * round(silence_s * RATE)
    wave = [
        round(amplitude * math.sin(2 * math.pi * 440 * i / RATE))
        for i in range(round(seconds * RATE))
    ]
    return Pcm(RATE, array("h", quiet + wave + quiet))


def test_a_quiet_and_a_loud_part_end_at_the_same_loudness() -> None:
    quiet = voice_audio.normalise(tone(1.0, 800))
    loud = voice_audio.normalise(tone(1.0, 30_000))
    for pcm in (quiet, loud):
        level = voice_audio.measure(pcm)
        assert level.loudness_db == pytest.approx(voice_audio.TARGET_LOUDNESS_DB, abs=0.1)
        assert level.peak_db <= voice_audio.PEAK_CEILING_DB


def test_a_peak_caps_the_gain_so_nothing_clips() -> None:
    # one loud click in a quiet sentence: levelling by loudness alone would clip it
    pcm = tone(1.0, 300)
    pcm.samples[RATE // 2] = 20_000
    level = voice_audio.measure(voice_audio.normalise(pcm))
    assert level.peak_db == pytest.approx(voice_audio.PEAK_CEILING_DB, abs=0.1)
    assert level.loudness_db < voice_audio.TARGET_LOUDNESS_DB - 3


def test_loudness_ignores_the_silence_around_speech() -> None:
    bare = voice_audio.measure(tone(1.0, 8000))
    padded = voice_audio.measure(tone(1.0, 8000, silence_s=2.0))
    assert padded.loudness_db == pytest.approx(bare.loudness_db, abs=0.2)
    assert padded.seconds == pytest.approx(5.0)


def test_parts_are_trimmed_and_joined_by_the_pause() -> None:
    title = tone(1.0, 8000, silence_s=0.6)
    advice = tone(2.0, 8000, silence_s=0.6)
    joined = voice_audio.join([title, advice])
    edges = 4 * voice_audio.EDGE_S
    assert joined.seconds == pytest.approx(3.0 + voice_audio.PAUSE_S + edges, abs=0.01)
    middle = round((1.0 + 2 * voice_audio.EDGE_S + voice_audio.PAUSE_S / 2) * RATE)
    assert joined.samples[middle - 100 : middle + 100] == array("h", [0] * 200)


def test_a_wav_round_trips_and_stereo_is_refused(tmp_path: Path) -> None:
    pcm = tone(0.5, 1000)
    voice_audio.write_pcm(pcm, tmp_path / "a.wav")
    assert voice_audio.read_pcm(tmp_path / "a.wav") == pcm
    (tmp_path / "b.wav").write_bytes(b"not a wav")
    with pytest.raises(VoiceAudioError, match="not a readable WAV"):
        voice_audio.read_pcm(tmp_path / "b.wav")
    import wave

    with wave.open(str(tmp_path / "c.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(400))
    with pytest.raises(VoiceAudioError, match="not 16-bit mono"):
        voice_audio.read_pcm(tmp_path / "c.wav")
    with pytest.raises(VoiceAudioError, match="different sample rates"):
        voice_audio.join([pcm, Pcm(8000, array("h", [1, 2]))])
