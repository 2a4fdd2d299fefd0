from pathlib import Path

import numpy as np
import pytest

from nexus.dreamscape.check import load_program
from nexus.dreamscape.controller import Command
from nexus.dreamscape.renderer import Renderer, click_waveform
from nexus.dreamscape.schema import SOUNDS, Cue
from nexus.sinks.fake import FakeSink
from nexus.sinks.limiter import db_to_amp

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dreamscapes" / "deep-sleep.yaml"
FS = 48000


@pytest.fixture(scope="module")
def program():
    return load_program(EXAMPLE)


def _render(program, cmds, seconds, block_s=1.0, **kw):
    sink = FakeSink(program.limits.max_level_db)
    stats = Renderer(program, **kw).render(cmds, sink, seconds, block_s=block_s)
    return sink.audio, stats


def test_click_starts_at_its_exact_sample(program):
    onset = 1.234567
    cmds = [Command(0, 0.0, "scene", {"name": "deep"}),
            Command(0, onset, "click", {"duration_s": 0.05, "level_db": -30.0})]
    audio, stats = _render(program, cmds, 2.0, block_s=0.37)  # block boundaries do not matter
    nz = np.flatnonzero(np.abs(audio) > 0)
    assert nz[0] == round(onset * FS)
    assert nz[-1] - nz[0] < 0.05 * FS
    assert stats["clicks"] == 1
    assert np.max(np.abs(audio)) == pytest.approx(db_to_amp(-30), rel=1e-3)


def test_silence_stops_everything_and_cancels_later_clicks(program):
    cmds = [Command(0, 0.0, "scene", {"name": "settle"}),
            Command(0, 40.0, "silence", {"for_s": 60}),
            Command(0, 40.5, "click", {"duration_s": 0.05, "level_db": -30.0})]
    audio, stats = _render(program, cmds, 42.0)
    assert np.sqrt(np.mean(audio[35 * FS : 40 * FS] ** 2)) > 1e-3  # rain is playing
    assert np.all(audio[40 * FS :] == 0)
    assert stats["clicks"] == 0


@pytest.mark.parametrize("sound", SOUNDS)
def test_every_sound_renders_at_about_its_level(program, sound):
    p = program.model_copy(update={"scenes": {"x": program.scenes["settle"].model_copy(update={"layers": [
        program.scenes["settle"].layers[0].model_copy(update={"sound": sound, "level_db": -30.0,
                                                              "envelope": program.scenes["settle"].layers[1].envelope})
    ], "fade_out_after_min": None})}})
    audio, _ = _render(p, [Command(0, 0.0, "scene", {"name": "x"})], 30.0, block_s=10.0)
    rms_db = 20 * np.log10(np.sqrt(np.mean(audio[15 * FS :] ** 2)) + 1e-12)
    assert -45 < rms_db < -22, rms_db
    assert np.max(np.abs(audio)) <= db_to_amp(program.limits.max_level_db) + 1e-6


def test_wake_ramp_rises(program):
    cmds = [Command(0, 0.0, "wake", {"sound": "pink_noise", "from_db": -50, "to_db": -25, "over_s": 20})]
    audio, _ = _render(program, cmds, 20.0)
    first = np.sqrt(np.mean(audio[: 2 * FS] ** 2))
    last = np.sqrt(np.mean(audio[18 * FS :] ** 2))
    assert 20 * np.log10(last / first) > 15


def test_render_a_hypnogram_is_deterministic(program):
    from nexus.facility.replay import hypnogram_night

    commands, night_s = hypnogram_night(program, [0, 0, 1, 2, 3, 3])
    assert night_s == 180.0
    a, stats = _render(program, commands, 180.0, block_s=7.0, seed=3)
    b, _ = _render(program, commands, 180.0, block_s=7.0, seed=3)
    np.testing.assert_array_equal(a, b)
    assert stats["scene:settle"] == pytest.approx(90.0)  # W, W, N1: each known at its epoch's end (30-120 s)
    assert stats["clicks"] == 0  # no EEG, no clicks


def test_click_waveform_shape():
    w = click_waveform(0.05, -30.0)
    assert w.size == 2400
    assert 0 < abs(w[0]) < 1e-3 and 0 < abs(w[-1]) < 1e-3  # ramps start at the onset sample itself


def test_a_rule_silence_fades_the_scene_out_but_a_quiet_event_stops_it(program):
    soft = [Command(0, 0.0, "scene", {"name": "settle"}), Command(0, 40.0, "silence", {"for_s": None, "fade": True})]
    hard = [Command(0, 0.0, "scene", {"name": "settle"}), Command(0, 40.0, "silence", {"for_s": 60})]
    a, _ = _render(program, soft, 55.0)
    b, _ = _render(program, hard, 55.0)
    rms = [np.sqrt(np.mean(a[(40 + k) * FS : (41 + k) * FS] ** 2)) for k in (0, 5, 9)]
    assert rms[0] > rms[1] > rms[2] > 0  # fades over the layers' fade_out_s (10 s)
    assert np.all(a[51 * FS :] == 0)
    assert np.all(b[40 * FS :] == 0)


def test_cue_files_are_resampled_levelled_and_placed(tmp_path, program):
    import wave

    tone = (np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) * 10000).astype("<i2")  # 1 s at 16 kHz
    with wave.open(str(tmp_path / "cue.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(tone.tobytes())
    scenes = dict(program.scenes)
    scenes["settle"] = scenes["settle"].model_copy(update={"layers": [], "cues": [
        Cue(file="cue.wav", level_db=-30.0)]})
    p = program.model_copy(update={"scenes": scenes})
    cmds = [Command(0, 0.0, "scene", {"name": "settle"}),
            Command(0, 2.0, "cue", {"scene": "settle", "index": 0, "level_db": -30.0, "kind": "incubation"})]
    audio, stats = _render(p, cmds, 4.0, base_dir=tmp_path)
    on = np.flatnonzero(np.abs(audio) > 1e-4)
    assert stats["cues"] == 1
    assert abs(on[0] - 2 * FS) <= 2 and abs(on[-1] - 3 * FS) <= 2  # 1 s long at 48 kHz
    rms = np.sqrt(np.mean(audio[on[0] : on[-1]] ** 2))
    assert 20 * np.log10(rms) == pytest.approx(-30, abs=0.5)
