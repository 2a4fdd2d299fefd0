"""The dreamscape loop of a lane step by step, without a supervisor: which EEG drives CLAS, what each step plays,
counts, renews and reports, a failing controller or sink, the slow-oscillation power, and a bed's start and end."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from nexus.dreamscape.presets import default_clas_program
from nexus.dreamscape.schema import Program, Scene
from nexus.facility.closed_loop import PROCESSING_S, DreamscapeLoop, dreamscape_loop
from nexus.facility.pipeline import Lane
from nexus.facility.step import StepContext
from nexus.guard.exploitation import check_program
from nexus.sinks.bedside import CountingSink

CH = ("EOG E1-M2", "EEG C4-M1", "EEG O1-M2")  # the first EEG channel is not the first channel
FS = 100.0
N = 3


def _program() -> Program:
    p = default_clas_program()
    return p.model_copy(update={"scenes": {**p.scenes, "bed": Scene(layers=[{"sound": "rain", "level_db": -35}])},
                                "rules": {"W": "bed", "N1": "bed", "N2": "silence", "N3": "deep", "R": "silence"}})


def _slow_waves(seconds: float, seed: int = 3) -> np.ndarray:
    """Slow waves of 0.7-1.3 Hz and 60-120 µV with background noise (CLAS has up-states to aim at)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    f = 1.0 + 0.3 * np.sin(2 * np.pi * t / 17.0)
    phase = 2 * np.pi * np.cumsum(f) / FS
    return 90 * np.cos(phase) * (1 + 0.3 * np.sin(2 * np.pi * t / 23.0)) + rng.normal(0, 8, t.size)


class Loop:
    """A lane's dreamscape loop fed steps of 0.1 s by hand."""

    def __init__(self, programs, sinks=None, *, deterministic=False, **kw):
        self.loop = DreamscapeLoop(Lane(CH, FS, N), **kw)
        self.sinks = sinks if sinks is not None else [CountingSink() if p is not None else None for p in programs]
        for k in range(N):
            self.loop.assign(k, programs[k], self.sinks[k], t_start=0.0)
        self.i = 0
        self.deterministic = deterministic

    def ctx(self, stage, *, n=10, block=None, raw=None, active=None, events=()):
        probs = np.tile(np.eye(5)[stage], (N, 1)) if stage is not None else np.full((N, 5), np.nan)
        c = StepContext(block=np.zeros((N, len(CH), n)) if block is None else block,
                        active=np.ones(N, bool) if active is None else np.asarray(active),
                        fs=FS, channels=CH, start_index=self.i, deterministic=self.deterministic, staged=True,
                        probs=probs, stage=np.full(N, -2 if stage is None else stage),
                        glitch=np.zeros(N, bool), distress=np.zeros(N, bool), events=list(events),
                        arrived_at=time.perf_counter(), raw={} if raw is None else raw)
        self.i += n
        return c

    def step(self, stage, **kw):
        return self.loop.step(self.ctx(stage, **kw))

    def n3_night(self, x, *, raw=True, n=10):
        """Step through EEG ``x`` (one row, copied to every bed) in N3; return the step results."""
        out = []
        for a in range(0, x.size - n + 1, n):
            eeg = np.tile(x[a:a + n], (N, 1))
            block = np.zeros((N, len(CH), n))
            if raw:
                out.append(self.step(3, n=n, block=block, raw={1: eeg}))
            else:
                block[:, 1] = eeg
                out.append(self.step(3, n=n, block=block))
        return out


def _kinds(results, slot=None):
    return [c.kind for r in results for c in r.commands.commands if slot is None or c.session == slot]


# -- set-up -------------------------------------------------------------------------------------------------------
def test_the_loop_takes_the_first_eeg_channel_and_its_timing_from_the_lane():
    loop = DreamscapeLoop(Lane(CH, FS, N), block_s=0.05, sound_latency_s=0.03, lease_s=2.5)
    assert loop.eeg == 1 and loop.reads_raw == (1,) and loop.capacity == N and loop.fs == FS
    assert loop.ctrl.latency_s == pytest.approx(0.03 + PROCESSING_S) and loop.ctrl.tick_s == 0.05
    assert loop.ctrl.n_sessions == N and loop.ctrl.stimulate and loop.bank.capacity == N
    assert loop.bank.lease_s == 2.5
    assert DreamscapeLoop(Lane(CH, FS, N), block_s=0.15, sound_latency_s=0.01, lease_s=0.3).bank.lease_s == (
        pytest.approx(0.45))  # at least 3 ticks
    assert not DreamscapeLoop(Lane(CH, FS, N), stimulate=False).ctrl.stimulate
    assert set(loop.counts) == {"click", "cue", "scene", "protect", "wake", "silence"}
    assert all(v.shape == (N,) and not v.any() for v in loop.counts.values())


def test_the_factory_gives_lanes_without_eeg_or_below_20_hz_no_loop():
    make = dreamscape_loop(block_s=0.05, sound_latency_s=0.02, stimulate=False)
    loop = make(Lane(CH, FS, 2))
    assert isinstance(loop, DreamscapeLoop) and loop.ctrl.tick_s == 0.05 and not loop.ctrl.stimulate
    assert loop.ctrl.latency_s == pytest.approx(0.02 + PROCESSING_S)
    for lane in (Lane(("EOG E1-M2", "EMG Chin"), FS, 2), Lane(CH, 10.0, 2)):
        null = make(lane)
        assert not isinstance(null, DreamscapeLoop) and null.name == "dreamscape"  # found by name like the loop
    assert isinstance(make(Lane(CH, 20.0, 2)), DreamscapeLoop)


# -- a step ---------------------------------------------------------------------------------------------------------
def test_each_step_plays_the_stage_rules_counts_them_and_renews_every_running_bed():
    lp = Loop([_program(), _program(), None])
    r = lp.step(0)  # W: the 'bed' scene
    assert [(c.session, c.kind, c.params) for c in r.commands.commands] == [(0, "scene", {"name": "bed"}),
                                                                          (1, "scene", {"name": "bed"})]
    assert [d.kind for d in r.commands.decisions] == ["scene", "scene"] and r.glitches == []
    assert [len(s.played) for s in lp.sinks[:2]] == [1, 1]
    assert lp.loop.counts["scene"].tolist() == [1, 1, 0] and lp.loop.bank.renewals.tolist() == [1, 1, 1]
    assert lp.loop.bank.lease_until.tolist() == [0.1 + 2.0] * 3
    r = lp.step(2)  # N2: silence
    assert [(c.session, c.kind) for c in r.commands.commands] == [(0, "silence"), (1, "silence")]
    assert lp.loop.counts["silence"].tolist() == [1, 1, 0] and lp.loop.bank.renewals.tolist() == [2, 2, 2]
    assert lp.loop.ctrl.take_decisions() == []  # the step handed its decisions on


def test_a_bed_that_is_not_running_is_not_staged_renewed_or_played_and_its_lease_lapses_once():
    lp = Loop([_program(), _program(), None])
    lp.step(0)
    r = lp.step(0, active=[True, False, True])
    assert r.glitches == [] and lp.loop.bank.renewals.tolist() == [2, 1, 2]
    results = [lp.step(2, active=[True, False, True]) for _ in range(25)]  # 2.5 s later bed 1's lease has lapsed
    lapsed = [(g.slot, g.kind, g.message) for r in results for g in r.glitches]
    assert lapsed == [(1, "lease_lapsed", "The bed's lease lapsed: safe state.")]
    assert lp.sinks[1].safe and _kinds(results, 1) == []  # its N2 silence was never decided: not staged
    assert _kinds(results, 0) == ["silence"]


def test_an_arousal_event_silences_the_bed_it_belongs_to():
    lp = Loop([_program(), _program(), None])
    lp.step(1)
    ev = type("Ev", (), {"kind": "arousal", "session": 1})()
    other = type("Ev", (), {"kind": "spindle", "session": 0})()
    r = lp.step(1, events=[ev, other])
    assert [(c.session, c.kind) for c in r.commands.commands] == [(1, "silence")]
    assert r.commands.commands[0].params["for_s"] == _program().on_arousal.silence_for_s


def test_clas_clicks_come_from_the_raw_eeg_are_played_counted_and_timed():
    x = _slow_waves(60.0)
    lp = Loop([_program(), _program(), None])
    results = lp.n3_night(x)
    clicks = [c for r in results for c in r.commands.commands if c.kind == "click"]
    assert len(clicks) >= 10 and {c.session for c in clicks} == {0, 1}
    per_bed = [sum(c.session == k for c in clicks) for k in range(N)]
    assert lp.loop.counts["click"].tolist() == per_bed and lp.loop.late.tolist() == [0, 0, 0]
    assert [sum(c.kind == "click" for c in s.played) for s in lp.sinks[:2]] == per_bed[:2]
    lat = [v for r in results for v in r.commands.click_latency_s]
    assert len(lat) == len(clicks) and all(0 <= v < 5.0 for v in lat)
    # the cleaned-up block alone (the raw EEG not handed over) reads the same EEG row: same clicks
    lp2 = Loop([_program(), _program(), None])
    clicks2 = [c for r in lp2.n3_night(x, raw=False) for c in r.commands.commands if c.kind == "click"]
    assert [round(c.t, 6) for c in clicks2] == [round(c.t, 6) for c in clicks]
    # a zero raw EEG with slow waves only in the (filtered) block: CLAS reads the raw copy and clicks never
    lp3 = Loop([_program(), _program(), None])
    quiet = []
    for a in range(0, x.size - 9, 10):
        block = np.zeros((N, len(CH), 10))
        block[:, 1] = x[a:a + 10]
        quiet.append(lp3.step(3, block=block, raw={1: np.zeros((N, 10))}))
    assert "click" not in _kinds(quiet)


def test_a_sham_loop_decides_clicks_but_plays_none():
    lp = Loop([_program(), _program(), None], stimulate=False)
    results = lp.n3_night(_slow_waves(60.0))
    assert "click" not in _kinds(results) and not lp.loop.counts["click"].any()
    assert any(d.kind == "sham_click" for r in results for d in r.commands.decisions)


def test_fast_forward_clicks_inside_the_block_just_processed_are_played_not_counted_late():
    x = _slow_waves(60.0)
    live = Loop([_program(), _program(), None])
    ff = Loop([_program(), _program(), None], deterministic=True)
    live_r = live.n3_night(x)
    ff_r = ff.n3_night(x, n=50)  # longer blocks: decisions at the same times, delivered late by up to a block
    live_clicks = [round(c.t, 6) for r in live_r for c in r.commands.commands if c.kind == "click"]
    ff_clicks = [round(c.t, 6) for r in ff_r for c in r.commands.commands if c.kind == "click"]
    assert ff_clicks and len(ff_clicks) == pytest.approx(len(live_clicks), abs=2)
    assert ff.loop.late.tolist() == [0, 0, 0]
    assert ff.loop.counts["click"].tolist() == [sum(s.kind == "click" for s in k.played) for k in ff.sinks[:2]] + [0]
    assert any(t < (r_i + 1) * 0.5 for r_i, r in enumerate(ff_r) for t in
               [c.t for c in r.commands.commands if c.kind == "click"])  # some lie inside their block


def test_live_clicks_due_inside_a_block_already_processed_are_late_dropped_and_counted_apart():
    lp = Loop([_program(), _program(), None])  # a live lane that fell behind: 0.5-s blocks
    results = lp.n3_night(_slow_waves(60.0), n=50)
    clicks = [c for r in results for c in r.commands.commands if c.kind == "click"]
    played = [sum(c.kind == "click" for c in s.played) for s in lp.sinks[:2]]
    assert lp.loop.late[:2].sum() > 0 and lp.loop.late[2] == 0
    assert lp.loop.counts["click"][:2].tolist() == played  # only the clicks that were played
    assert (lp.loop.counts["click"] + lp.loop.late).sum() == len(clicks)
    scenes = sum(c.kind == "scene" for r in results for c in r.commands.commands)
    assert lp.loop.counts["scene"].sum() == scenes  # other commands are never late


def test_slow_oscillation_power_is_summed_only_for_running_beds_in_n3():
    x = _slow_waves(20.0)
    lp = Loop([_program(), _program(), None])
    for a in range(0, x.size, 10):
        eeg = np.tile(x[a:a + 10], (N, 1))
        stage = 3 if a < x.size // 2 else 2
        lp.step(stage, raw={1: eeg}, active=[True, True, False])
    half = x.size // 2
    assert lp.loop.so_samples.tolist() == [half, half, 0]
    assert lp.loop.so_power[0] == pytest.approx(lp.loop.so_power[1]) and lp.loop.so_power[2] == 0.0
    # the 0.5-2 Hz power of 90-µV waves: about half their squared amplitude per sample
    mean_sq = lp.loop.so_power[0] / half
    assert 0.25 * 90 ** 2 < mean_sq < 0.75 * 90 ** 2


# -- failures -------------------------------------------------------------------------------------------------------
def test_a_failing_controller_silences_every_running_bed_with_a_program(caplog):
    lp = Loop([_program(), _program(), None])
    lp.step(0)

    def broken(*a, **k):
        raise FloatingPointError("bad batch")

    lp.loop.ctrl.step = broken
    with caplog.at_level(logging.ERROR, logger="nexus"):
        r = lp.step(0, active=[True, False, True])
    assert [(g.slot, g.kind, g.message) for g in r.glitches] == [
        (0, "controller_error", "The controller failed: bad batch. Safe state.")]
    assert caplog.records[0].getMessage() == ("The dreamscape controller failed (FloatingPointError: bad batch): "
                                              "every bed of the lane goes silent.")
    assert lp.sinks[0].safe and lp.loop.bank.sinks[0] is None and not lp.loop.ctrl.enabled[0]
    assert lp.loop.bank.sinks[1] is lp.sinks[1] and lp.loop.ctrl.enabled[1]  # not running: left as it was
    assert r.commands.commands == []


class _Timed(CountingSink):
    """Records when it was put in the safe state."""

    def __init__(self):
        super().__init__()
        self.silenced = []

    def _silence(self, t):
        self.silenced.append(t)


def test_a_bed_whose_program_failed_is_detached_once():
    lp = Loop([_program(), _program(), None], sinks=[CountingSink(), _Timed(), None])
    lp.step(0)
    lp.loop.ctrl.failed[1] = True
    r = lp.step(0)
    assert [(g.slot, g.kind) for g in r.glitches] == [(1, "controller_error")]
    assert lp.loop.bank.sinks[1] is None and lp.sinks[1].safe and lp.sinks[1].silenced == [0.2]
    assert lp.loop.bank.renewals.tolist() == [2, 1, 2]  # a failed bed is not renewed
    assert lp.step(0).glitches == []


class _Flaky(CountingSink):
    def _play(self, command):
        if command.kind == "silence":
            raise OSError("device unplugged")
        super()._play(command)


def test_a_failing_sink_stops_its_beds_program_and_the_others_play_on():
    lp = Loop([_program(), _program(), None], sinks=[CountingSink(), _Flaky(), None])
    lp.step(0)
    r = lp.step(2)
    assert [(g.slot, g.kind, g.message) for g in r.glitches] == [
        (1, "sink_error", "The bed's sink failed; it is in the safe state.")]
    assert lp.loop.bank.sinks[1] is None and not lp.loop.ctrl.enabled[1] and lp.loop.bank.sinks[0] is lp.sinks[0]
    assert _kinds([lp.step(0)]) == ["scene"] and lp.sinks[0].played[-1].kind == "scene"


# -- a bed's start and end ------------------------------------------------------------------------------------------
def test_assigning_a_bed_starts_its_counts_afresh_and_journals_what_consent_removed():
    lp = Loop([_program(), _program(), None])
    lp.n3_night(_slow_waves(30.0))
    assert lp.loop.counts["click"][0] > 0 and lp.loop.so_samples[0] > 0
    lp.loop.late[0] = 3
    lp.loop.ctrl.failed[0] = True
    lp.step(3)
    sink = CountingSink()
    lp.loop.assign(0, _program(), sink, t_start=40.0, scopes=["recording", "audio"])
    assert all(v[0] == 0 for v in lp.loop.counts.values()) and lp.loop.late[0] == 0
    assert lp.loop.so_power[0] == 0.0 and lp.loop.so_samples[0] == 0 and lp.loop.has_program[0]
    assert lp.loop.counts["click"][1] > 0  # the other bed keeps its counts
    [note] = lp.loop.ctrl.take_decisions()
    assert note.kind == "consent_applied" and note.session == 0 and note.t == 40.0
    assert note.inputs["scopes"] == ["recording", "audio"] and note.inputs["removed"]
    assert note.reason.startswith("The program runs as far as the client's consent allows: ")
    lp.loop.ctrl.failed[0] = True
    lp.step(0)  # failed again after the new start: reported again
    lp.loop.assign(2, None, None, t_start=41.0)
    assert not lp.loop.has_program[2] and lp.loop.ctrl.take_decisions() == []


def test_releasing_a_bed_silences_it_and_takes_its_sink_out():
    lp = Loop([_program(), _program(), None])
    lp.step(0)
    assert lp.loop.release(1, 5.0) is lp.sinks[1]
    assert lp.sinks[1].safe and lp.loop.bank.sinks[1] is None and not lp.loop.has_program[1]
    assert not lp.loop.ctrl.enabled[1] and lp.loop.guard.scopes(1) == []
    assert lp.loop.release(2, 5.0) is None


def test_silence_now_stops_a_bed_unless_it_is_already_being_extracted():
    lp = Loop([_program(), _program(), None])
    lp.step(0)
    lp.loop.silence_now(0, 1.0)
    assert lp.sinks[0].safe and not lp.sinks[1].safe
    lp.loop.silence_now(2, 1.0)  # no speaker: nothing to do


# -- extraction and consent -----------------------------------------------------------------------------------------
def _with_wake() -> Program:
    doc = _program().model_dump(mode="json", exclude_none=True)
    doc["wake"] = {"window": ["06:30", "07:00"],
                   "ramp": {"sound": "birdsong", "from_db": -50, "to_db": -25, "over_min": 10}}
    return Program.model_validate(doc)


def test_an_immediate_extraction_stops_the_program_and_wakes_with_the_programs_sound():
    lp = Loop([_with_wake(), _with_wake(), None])
    lp.step(0)
    outcome, decisions = lp.loop.extract(0, "immediate", 0.2)
    assert (outcome.slot, outcome.outcome, outcome.mode.value) == (0, "started", "immediate")
    assert [(d.kind, d.session, d.t) for d in decisions] == [("extraction_order", 0, 0.2), ("extraction_stop", 0, 0.2),
                                                             ("extraction_wake", 0, 0.2)]
    assert decisions[0].inputs == {"requested": "immediate", "mode": "immediate", "outcome": "started"}
    assert decisions[0].command is None and decisions[0].reason == outcome.reason
    stop, wake = decisions[1], decisions[2]
    assert (stop.command.kind, stop.command.params, stop.inputs) == ("silence", {"for_s": None},
                                                                    {"speaker": True, "safe": True})
    assert stop.reason == "Extraction (immediate): stimulation stops at once."
    assert wake.command.kind == "wake" and wake.command.params["sound"] == "birdsong"
    assert wake.inputs == {"speaker": True}
    assert [c.kind for c in lp.sinks[0].played] == ["scene", "wake"]  # silenced, then the wake sound
    assert lp.loop.counts["wake"].tolist() == [1, 0, 0] and not lp.loop.has_program[0]
    assert not lp.loop.ctrl.enabled[0] and lp.loop.ctrl.enabled[1]  # the program is gone; the other bed runs on
    r = lp.step(1)
    assert _kinds([r], 0) == [] and _kinds([r], 1) == []  # bed 1 keeps its scene (N1 plays 'bed' like W)


def test_a_bed_without_a_speaker_is_extracted_in_person_and_a_gentle_one_waits_for_light_sleep():
    lp = Loop([_with_wake(), _with_wake(), None])
    lp.step(3)
    _, decisions = lp.loop.extract(2, "immediate", 0.2)
    stop = decisions[1]
    assert stop.inputs == {"speaker": False, "safe": True}
    assert stop.reason.endswith("stops at once. No speaker at this bed: wake the sleeper in person.")
    assert decisions[2].inputs == {"speaker": False}
    _, decisions = lp.loop.extract(1, "gentle", 0.3)
    assert [d.kind for d in decisions] == ["extraction_order", "extraction_stop"]  # no wake yet: N3
    assert lp.sinks[1].safe and lp.loop.counts["wake"][1] == 0
    r = lp.step(1)  # light sleep: the gentle wake with the program's ramp (its 10 min cut to the 3-min bound)
    wakes = [c for c in r.commands.commands if c.kind == "wake"]
    assert [(c.session, c.params) for c in wakes] == [(1, {"sound": "birdsong", "from_db": -50.0, "to_db": -25.0,
                                                          "over_s": 180.0})]
    assert [d.kind for d in r.commands.decisions if d.session == 1] == ["extraction_wake"]
    assert lp.loop.counts["wake"][:2].tolist() == [0, 1] and lp.sinks[1].played[-1].kind == "wake"
    lp.loop.silence_now(1, 0.5)  # under extraction: the wake ramp goes on
    assert not lp.sinks[1].safe


def test_consent_withdrawn_from_sound_silences_the_bed_at_once_and_is_journaled():
    lp = Loop([_program(), _program(), None])
    lp.step(0)
    why = lp.loop.set_consent(1, ["recording"], 1.0)
    assert why == ["no 'audio' consent: record-only night, no sound at all"]
    assert lp.sinks[1].safe and lp.sinks[1].played[-1].kind == "silence" and not lp.sinks[0].safe
    changed, updated, quiet = lp.loop.ctrl.take_decisions()
    assert (updated.kind, updated.session) == ("program_updated", 1)  # the program cut down to what consent allows
    assert (changed.kind, changed.session, changed.t) == ("consent_changed", 1, 1.0)
    assert changed.inputs == {"scopes": ["recording"], "removed": why}
    assert changed.reason == "Consent changed; the night goes on as far as it allows: " + why[0] + "."
    assert (quiet.kind, quiet.inputs, quiet.reason) == ("quiet", {"consent": ["recording"]},
                                                       "No 'audio' consent: silent at once.")
    assert (lp.sinks[1].played[-1].t, lp.sinks[1].played[-1].params) == (1.0, {"for_s": None})
    assert set(_kinds([lp.step(2), lp.step(0)], 1)) <= {"silence"}  # no sound reaches it any more
    assert lp.loop.set_consent(0, ["recording", "audio", "stimulation", "dream_incubation"], 2.0) == []
    changed, updated = lp.loop.ctrl.take_decisions()  # sound still allowed: no silence
    assert updated.kind == "program_updated" and changed.reason == (
        "Consent changed; the night goes on as far as it allows.")
    assert not lp.sinks[0].safe


def test_a_program_update_is_checked_for_the_policy_and_runs_as_far_as_consent_allows():
    import yaml

    lp = Loop([_program(), _program(), None])
    lp.step(0)
    quiet = _program().model_copy(update={"name": "quieter"})
    text = yaml.safe_dump(quiet.model_dump(mode="json", exclude_none=True))
    rep = lp.loop.update_program(0, text, t=1.0)
    assert rep.ok and lp.loop.ctrl.programs[0].name == "quieter" and rep.source == "session 0 update"
    assert [d.kind for d in lp.loop.ctrl.take_decisions()] == ["program_updated"]
    bad = yaml.safe_dump({**quiet.model_dump(mode="json", exclude_none=True), "limits": {"max_level_db": 6}})
    assert not lp.loop.update_program(0, bad, t=2.0).ok and lp.loop.ctrl.programs[0].name == "quieter"
    lp.loop.ctrl.take_decisions()
    loud = quiet.model_copy(update={"name": "loud comfort", "on_distress": quiet.on_distress.model_copy(
        update={"play": "rain", "level_db": -24.0})})  # passes the program checks, not the policy
    rep = lp.loop.update_program(1, yaml.safe_dump(loud.model_dump(mode="json", exclude_none=True)), t=3.0)
    assert not rep.ok and lp.loop.ctrl.programs[1].name != "loud comfort"
    assert [(e.where, e.line, e.message) for e in rep.errors] == [
        ("", None, f"anti-exploitation policy: {v}") for v in check_program(loud)]
    [d] = lp.loop.ctrl.take_decisions()
    assert (d.kind, d.session, d.t) == ("program_rejected", 1, 3.0)
    assert d.inputs["violations"] == [str(v) for v in check_program(loud)]
    assert d.reason == "The new program breaks the anti-exploitation policy; the session keeps its program."
