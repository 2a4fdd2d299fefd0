import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.dreamscape.check import load_program
from nexus.dreamscape.controller import Controller
from nexus.dsp.phase import circular_stats, reference_phase

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dreamscapes" / "deep-sleep.yaml"
FS = 100.0
N3 = np.eye(5)[3]
N2 = np.eye(5)[2]
R = np.eye(5)[4]
W = np.eye(5)[0]


@pytest.fixture(scope="module")
def program():
    return load_program(EXAMPLE)


def _so(seconds, seed=0, f=0.9, amp=60.0):
    t = np.arange(int(seconds * FS)) / FS
    return amp * np.cos(2 * np.pi * f * t) + np.random.default_rng(seed).normal(0, 4, t.size)


def _run(ctrl, x, probs, step=50, **flags):
    """Feed (n_sessions, samples) in chunks; flags[name] is a function of t -> bool array."""
    cmds = []
    for a in range(0, x.shape[1], step):
        t1 = (a + step) / FS
        kw = {k: f(t1) for k, f in flags.items()}
        cmds += ctrl.step(t1, eeg=x[:, a : a + step], probs=probs, **kw)
    return cmds


def test_clicks_land_on_the_up_state_with_refractory(program):
    x = _so(60)[None]
    ctrl = Controller([program], FS, latency_s=0.05)
    cmds = _run(ctrl, x, N3[None])
    clicks = np.array([c.t for c in cmds if c.kind == "click"])
    assert len(clicks) >= 10
    ph = reference_phase(x[0], FS)[np.round(clicks * FS).astype(int)]
    s = circular_stats(ph)
    assert abs(s["mean_deg"]) < 15 and s["in_window"] == 1.0
    gaps = np.diff(clicks)
    assert gaps.min() >= 0.5
    # trains of 2 clicks, then at least the 2.5-s refractory period
    assert np.all(gaps[1::2] >= 2.5)
    click_decisions = [d for d in ctrl.decisions if d.kind == "click"]
    assert click_decisions and {"phase_deg", "envelope_uv", "probs", "latency_s"} <= set(click_decisions[0].inputs)


def test_no_clicks_outside_n3_or_without_slow_waves(program):
    ctrl = Controller([program], FS)
    assert not [c for c in _run(ctrl, _so(30)[None], N2[None]) if c.kind == "click"]
    ctrl = Controller([program], FS)
    small = _so(30, amp=5.0)[None]
    assert not [c for c in _run(ctrl, small, N3[None]) if c.kind == "click"]


@pytest.mark.parametrize("flag", ["arousal", "glitch", "distress"])
def test_stops_at_once_on_arousal_glitch_or_distress(program, flag):
    x = _so(40)[None]
    ctrl = Controller([program], FS)
    t_event = 20.0
    cmds = _run(ctrl, x, N3[None], **{flag: lambda t: np.array([t_event < t <= t_event + 0.5])})
    quiet = [c for c in cmds if c.kind == "silence" and c.t > t_event]
    assert quiet and quiet[0].t == pytest.approx(t_event + 0.5)
    after = [c for c in cmds if c.kind == "click" and c.t > quiet[0].t]
    if flag == "glitch":  # resumes once the glitch clears, after the estimator's warm-up
        assert all(c.t > quiet[0].t + 1.0 for c in after)
    else:
        assert after == []
    if flag == "distress":
        prot = [c for c in cmds if c.kind == "protect"]
        assert prot and prot[0].params["sound"] == "rain" and prot[0].params["for_s"] == 300
        assert {c.kind for c in cmds if c.t > t_event} <= {"silence", "protect"}


def test_smart_wake_waits_for_light_sleep_inside_the_window(program):
    a, b = program.wake_window_s()
    ctrl = Controller([program] * 3, FS)
    out = []
    for t in np.arange(a - 600, b + 60, 5.0):
        after = t >= a + 300
        out += ctrl.step(t, probs=np.stack([N2 if after else N3, N2 if after else R, R]))
    wakes = {c.session: c.t for c in out if c.kind == "wake"}
    assert a + 300 + 60 <= wakes[0] <= a + 300 + 70  # light sleep must last 60 s
    assert a + 300 + 180 <= wakes[1] <= a + 300 + 190  # ... 3 min right after REM
    assert wakes[2] == pytest.approx(b)  # never light: woken at the window's end
    assert {d.kind for d in ctrl.decisions if d.session == 2} >= {"wake"}


def test_a_program_edited_mid_night_keeps_the_wake_window_of_the_sessions_own_lights_out(program):
    _, b = program.wake_window_s()
    t0 = 3600.0  # the session started an hour into the controller's clock (a reused facility slot)
    ctrl = Controller([None, None], FS)
    for s in (0, 1):
        ctrl.assign(s, program, t_start=t0)
    text = yaml.safe_dump(program.model_dump(mode="json", exclude_none=True))
    assert ctrl.update_program(1, text, t=t0 + 100.0).ok
    out = []
    for t in np.arange(t0 + 200.0, t0 + b + 60.0, 30.0):
        out += ctrl.step(t, probs=np.stack([R, R]))  # never light sleep: woken at the window's end
    wakes = {c.session: c.t for c in out if c.kind == "wake"}
    assert wakes[0] == pytest.approx(t0 + b, abs=30.0)
    assert wakes[1] == wakes[0]  # the edited program's window also counts from this session's lights-out


def test_scenes_follow_the_stage_and_cues_repeat(tmp_path, program):
    import wave

    with wave.open(str(tmp_path / "c.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(800, "<i2").tobytes())
    data = yaml.safe_load(EXAMPLE.read_text())
    data["scenes"]["settle"]["cues"] = [{"file": str(tmp_path / "c.wav"), "every_min": 1, "max": 3}]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    prog = load_program(tmp_path / "p.yaml")
    ctrl = Controller([prog], FS)
    out = []
    for t in np.arange(5, 600, 5.0):
        out += ctrl.step(t, probs=(W if t < 400 else N2)[None])
    kinds = [(c.kind, c.params.get("name")) for c in out if c.kind in ("scene", "silence")]
    assert kinds == [("scene", "settle"), ("silence", None)]
    cues = [c.t for c in out if c.kind == "cue"]
    assert len(cues) == 3 and np.all(np.diff(cues) >= 60)


def test_edited_program_is_checked_and_a_bad_one_is_kept_out(program):
    ctrl = Controller([program], FS)
    bad = EXAMPLE.read_text().replace("level_db: -30,", "level_db: -5,")
    rep = ctrl.update_program(0, bad, t=10.0)
    assert not rep.ok
    assert ctrl.programs[0] is program
    assert ctrl.decisions[-1].kind == "program_rejected" and ctrl.decisions[-1].inputs["errors"]
    good = EXAMPLE.read_text().replace("level_db: -30,", "level_db: -35,")
    assert ctrl.update_program(0, good, t=20.0).ok
    assert ctrl.programs[0].scenes["deep"].clas.level_db == -35
    cmds = _run(ctrl, _so(20)[None], N3[None])
    assert all(c.params["level_db"] == -35 for c in cmds if c.kind == "click")


def test_night_cap_and_sham(program):
    capped = program.model_copy(update={"scenes": {**program.scenes, "deep": program.scenes["deep"].model_copy(
        update={"clas": program.scenes["deep"].clas.model_copy(update={"max_per_night": 3})})}})
    ctrl = Controller([capped], FS)
    assert sum(c.kind == "click" for c in _run(ctrl, _so(60)[None], N3[None])) == 3
    assert any(d.kind == "clas_cap" for d in ctrl.decisions)
    sham = Controller([program], FS, stimulate=False)
    assert not [c for c in _run(sham, _so(30)[None], N3[None]) if c.kind == "click"]
    assert any(d.kind == "sham_click" for d in sham.decisions)


def test_sessions_in_a_batch_do_not_affect_each_other(program):
    x = np.stack([_so(30, seed=1), _so(30, seed=2, f=1.2)])
    both = _run(Controller([program, program], FS), x, np.stack([N3, N3]),
                arousal=lambda t: np.array([False, 10 < t <= 10.5]))
    alone = _run(Controller([program], FS), x[:1], N3[None])
    assert [(c.kind, round(c.t, 6)) for c in both if c.session == 0] == [(c.kind, round(c.t, 6)) for c in alone]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(range(5)), st.booleans(), st.booleans(), st.booleans()),
                min_size=5, max_size=40), st.integers(0, 1000))
def test_state_machine_invariants(program, steps, seed):
    """Whatever happens: no click while blocked, rate and refractory limits hold, commands are in time order."""
    rng = np.random.default_rng(seed)
    ctrl = Controller([program], FS)
    t = 0.0
    clicks, blocked_until = [], -1.0
    for stage, ar, di, gl in steps:
        x = 60 * np.cos(2 * np.pi * 1.0 * (t + np.arange(100) / FS)) + rng.normal(0, 5, 100)
        t += 1.0
        cmds = ctrl.step(t, eeg=x[None], probs=np.eye(5)[stage][None], arousal=[ar], distress=[di], glitch=[gl])
        if (ar and stage != 0) or di or gl:  # arousals count from sleep only
            blocked_until = t
            assert not [c for c in cmds if c.kind in ("click", "cue", "scene")]
        for c in cmds:
            if c.kind == "click":
                assert stage == 3 and c.t > blocked_until
                clicks.append(c.t)
    c = np.array(clicks)
    assert np.all(np.diff(c) >= 0.5)
    for k in range(c.size):
        assert np.sum((c > c[k] - 60) & (c <= c[k])) <= program.limits.max_stim_per_min


def test_program_file_edited_while_running(tmp_path, program):
    from nexus.dreamscape.watch import ProgramFile

    path = tmp_path / "p.yaml"
    text = EXAMPLE.read_text()
    path.write_text(text)
    ctrl = Controller([program], FS)
    watch = ProgramFile(path)
    assert watch.poll(ctrl, 0, 1.0) is None  # unchanged
    path.write_text(text.replace("sound: rain", "sound: rian"))  # a typo while editing
    rep = watch.poll(ctrl, 0, 2.0)
    assert rep is not None and not rep.ok and "rian" in str(rep.errors[0])
    assert ctrl.programs[0] is program
    path.unlink()
    assert not watch.poll(ctrl, 0, 3.0).ok
    assert watch.poll(ctrl, 0, 4.0) is None  # reported once
    path.write_text(text.replace("level_db: -32", "level_db: -34"))
    assert watch.poll(ctrl, 0, 5.0).ok
    assert ctrl.programs[0].scenes["settle"].layers[0].level_db == -34
    assert [d.kind for d in ctrl.decisions] == ["program_rejected", "program_rejected", "program_updated"]


class _FaultyScene(Controller):
    """A controller whose set-up of the scene 'deep' fails for one row (a bug on that row's program path)."""

    def __init__(self, *args, bad_row, **kw):
        self.bad_row = bad_row
        super().__init__(*args, **kw)

    def _set_scene(self, s, name):
        if s == self.bad_row and name == "deep":
            raise KeyError(name)
        super()._set_scene(s, name)


def test_a_fault_in_one_row_puts_that_row_only_in_the_safe_state(program, caplog):
    """Row 1 fails as it enters its N3 scene (its scene command is already out): a silence without end follows it
    at once, with a controller_error decision naming the exception; the row is failed and disabled and decides
    nothing more; rows 0 and 2 play what they play without the fault. The scene decision carries the stage
    probabilities to the thousandth (rounded by hand here)."""
    probs = np.tile([0.0121, 0.0232, 0.1567, 0.7893, 0.0187], (3, 1))
    x = np.stack([_so(20, seed=k) for k in range(3)])
    ok = Controller([program] * 3, FS)
    ok_cmds = _run(ok, x, probs)
    bad = _FaultyScene([program] * 3, FS, bad_row=1)
    with caplog.at_level(logging.ERROR, logger="nexus"):
        cmds = _run(bad, x, probs)

    def played(cs, k):
        return [(c.kind, round(c.t, 6), c.params) for c in cs if c.session == k]

    for k in (0, 2):
        assert played(cmds, k) == played(ok_cmds, k)
    assert played(cmds, 1) == [("scene", 0.5, {"name": "deep"}), ("silence", 0.5, {"for_s": None})]
    assert bad.failed.tolist() == [False, True, False] and bad.enabled.tolist() == [True, False, True]
    assert bad.scene[1] == "silence"
    assert [d.kind for d in bad.decisions if d.session == 1] == ["scene", "controller_error"]
    d = next(d for d in bad.decisions if d.session == 1 and d.kind == "controller_error")
    assert (d.t, d.kind, d.inputs, d.reason) == (0.5, "controller_error", {"error": "KeyError: 'deep'"},
                                                 "Controller error for this bed: stop at once, safe state.")
    assert "Session 1: the controller failed (KeyError: 'deep')" in caplog.text
    scene = next(d for d in ok.decisions if d.session == 0 and d.kind == "scene")
    assert scene.inputs["stage"] == 3
    assert scene.inputs["probs"] == {"W": 0.012, "N1": 0.023, "N2": 0.157, "N3": 0.789, "R": 0.019}


def test_scene_decisions_follow_each_stage_rule_and_an_unstaged_bed_hears_nothing(tmp_path):
    """Rules W: silence, N1: settle, N2: silence, N3: deep, R: silence (W and N1 differ here). Bed 0 goes N3, W,
    N1: scene 'deep', a fading silence, scene 'settle', each decision with its stage, probabilities and (for a
    scene) the scene before. Bed 1 is never staged: nothing at all. Bed 2, not staged yet, has a glitch that
    clears: after the glitch's stop comes the rule's silence for a stage not known yet ('Stage ?')."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["rules"]["W"] = "silence"
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    ctrl = Controller([load_program(tmp_path / "p.yaml")] * 3, FS)
    nan = np.full(5, np.nan)
    out = []
    for t, stage, glitch in ((1.0, N3, True), (2.0, W, False), (3.0, np.eye(5)[1], False)):
        out += ctrl.step(t, probs=np.stack([stage, nan, nan]), glitch=np.array([False, False, glitch]))
    assert [(c.t, c.kind, c.params) for c in out if c.session == 0] == [
        (1.0, "scene", {"name": "deep"}), (2.0, "silence", {"for_s": None, "fade": True}),
        (3.0, "scene", {"name": "settle"})]
    one_hot = {lab: 0.0 for lab in ("W", "N1", "N2", "N3", "R")}
    assert [(d.t, d.kind, d.inputs, d.reason) for d in ctrl.decisions if d.session == 0] == [
        (1.0, "scene", {"stage": 3, "probs": {**one_hot, "N3": 1.0}, "previous": "silence"},
         "Stage N3: rule plays scene 'deep'."),
        (2.0, "scene", {"stage": 0, "probs": {**one_hot, "W": 1.0}}, "Stage W: rule says silence."),
        (3.0, "scene", {"stage": 1, "probs": {**one_hot, "N1": 1.0}, "previous": "silence"},
         "Stage N1: rule plays scene 'settle'.")]
    assert [c for c in out if c.session == 1] == [] and [d for d in ctrl.decisions if d.session == 1] == []
    assert [(c.t, c.kind, c.params) for c in out if c.session == 2] == [
        (1.0, "silence", {"for_s": None}), (2.0, "silence", {"for_s": None, "fade": True})]
    last = [d for d in ctrl.decisions if d.session == 2][-1]
    assert (last.t, last.kind, last.inputs["stage"], last.reason) == (2.0, "scene", -2, "Stage ?: rule says silence.")
    assert np.isnan(list(last.inputs["probs"].values())).all()
