"""The guard in the live loop: consent cuts programs down and is followed mid-night; the runtime
anti-exploitation guard refuses stimulation after distress or driven by psyche data; every refusal is journaled."""

from __future__ import annotations

import numpy as np
import pytest

from nexus.core.clock import ManualClock
from nexus.core.errors import StateError
from nexus.dreamscape.controller import Command, Decision
from nexus.dreamscape.presets import default_clas_program
from nexus.dreamscape.schema import Program, Scene
from nexus.facility.analyzers import default_analyzers
from nexus.facility.benchmark import LoopedFleet, _signals_at
from nexus.facility.supervisor import Supervisor
from nexus.sinks.bedside import CountingSink

CH = ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG")
FS = 100.0
FULL = ["recording", "audio", "stimulation", "dream_incubation", "psyche_monitoring"]


@pytest.fixture(scope="module")
def signals():
    """Four minutes of two sleepers 1 h into the night (N3 with slow waves: CLAS clicks)."""
    return _signals_at(2, 40, 1.0, 245.0, FS, CH).astype(np.float64)


def _program() -> Program:
    p = default_clas_program()
    return p.model_copy(update={"scenes": {**p.scenes, "bed": Scene(layers=[{"sound": "rain", "level_db": -35}])},
                                "rules": {"W": "bed", "N1": "bed", "N2": "bed", "N3": "deep", "R": "bed"}})


def _facility(data, scopes, programs=None):
    sup = Supervisor(ManualClock(), analyzers=default_analyzers(block_s=0.1, events=False), step_s=0.25,
                     buffer_s=4.0)
    n = data.shape[0]
    programs = programs or [_program()] * n
    sinks = [CountingSink() for _ in range(n)]
    sup.add_fleet(LoopedFleet(data, FS, CH), [f"bed-{k}" for k in range(n)], programs=programs, sinks=sinks,
                  scopes=scopes)
    decisions: list[dict] = []
    sup.listeners.append(lambda kind, recs: decisions.extend(r for r in recs if r.get("kind") == "decision"))
    return sup, sinks, decisions


def test_consent_decides_what_a_bed_may_hear_from_the_start_and_mid_night(signals):
    # bed 0: full consent; bed 1: no 'stimulation' (no CLAS clicks, the soundscape plays)
    sup, sinks, decisions = _facility(signals, [FULL, ["recording", "audio"]])
    sup.run(120.0, tick_s=1.0)
    assert any(c.kind == "click" for c in sinks[0].played), "no click at all: the test signal has no N3"
    assert not any(c.kind == "click" for c in sinks[1].played)
    assert any(c.kind == "scene" for c in sinks[1].played)
    applied = [d for d in decisions if d["description"] == "consent_applied"]
    assert [d["session"] for d in applied] == ["bed-1"]
    assert "CLAS" in applied[0]["reason"]
    # mid-night: bed 0 revokes 'stimulation', then 'audio'; from the next step it hears no click, then nothing
    n0 = len(sinks[0].played)
    sup.set_consent("bed-0", ["recording", "audio"])
    t_revoked = sup.lanes[0].processed / FS
    sup.run(60.0, tick_s=1.0)
    assert not [c for c in sinks[0].played[n0:] if c.kind == "click"]
    assert any(d["description"] == "consent_changed" and d["session"] == "bed-0" for d in decisions)
    n1 = len(sinks[0].played)
    sup.set_consent("bed-0", ["recording"])
    assert sinks[0].played[n1].kind == "silence"  # silent at once, before the next step
    sup.run(60.0, tick_s=1.0)
    assert {c.kind for c in sinks[0].played[n1:]} <= {"silence"}
    # bed 1 was not touched by bed 0's consent: its soundscape goes on
    assert any(c.kind == "scene" and c.t > t_revoked for c in sinks[1].played) or sinks[1].played[-1].kind == "scene"
    sup.close()


def test_withdrawing_recording_ends_the_night_at_once_and_records_no_more(signals):
    sup, sinks, decisions = _facility(signals, [FULL, FULL])
    sup.run(30.0, tick_s=1.0)
    assert sup.set_consent("bed-0", ["audio", "stimulation"]) == ["recording"]
    assert sup.sessions["bed-0"].state == "ended"
    assert sinks[0].safe  # silent now (the safe state), nothing scheduled
    assert [d["session"] for d in decisions if d["description"] == "consent_withdrawn"] == ["bed-0"]
    n0 = len(sinks[0].played)
    sup.run(30.0, tick_s=1.0)
    assert len(sinks[0].played) == n0  # nothing more reaches the ended bed
    assert sup.sessions["bed-1"].state != "ended"  # the other bed sleeps on
    sup.close()


def test_a_night_without_recording_consent_does_not_start(signals):
    sup = Supervisor(ManualClock(), analyzers=default_analyzers(block_s=0.1, events=False), step_s=0.25)
    with pytest.raises(StateError, match="recording"):
        sup.add_fleet(LoopedFleet(signals[:1], FS, CH), ["bed-0"], programs=[_program()], sinks=[CountingSink()],
                      scopes=[["audio"]])


def _exploit(loop):
    """A controller that slipped through every program check: loud clicks answer distress, and stimuli are
    driven by the journal's nightmare count."""
    real = loop.ctrl.step

    def step(t, **kw):
        out = real(t, **kw)
        distress = np.asarray(kw["distress"], dtype=bool)
        for s in range(len(distress)):
            if distress[s]:
                c = Command(s, float(t), "click", {"duration_s": 0.05, "level_db": -15.0})
                loop.ctrl.decisions.append(Decision(float(t), s, "click", c, {"distress": True},
                                                    "More stimulation keeps them coming back."))
                out.append(c)
        if int(t * 4) % 40 == 0:  # every 10 s, a cue for bed 1 'because' of its nightmares
            c = Command(1, float(t), "cue", {"scene": "bed", "index": 0, "level_db": -30.0, "kind": "memory"})
            loop.ctrl.decisions.append(Decision(float(t), 1, "cue", c, {"journal_nightmares": 3},
                                                "Nightmares logged: raise engagement."))
            out.append(c)
        return out

    loop.ctrl.step = step


def test_the_runtime_guard_refuses_stimulation_after_distress_and_psyche_driven_stimuli(signals):
    sup, sinks, decisions = _facility(signals, [FULL, FULL])
    loop = sup.lanes[0].analyzer("dreamscape")
    _exploit(loop)
    sup.run(30.0, tick_s=1.0)
    n0 = len(sinks[0].played)
    sup.lanes[0].distress[0] = True  # an open distress episode on bed 0 (as the distress monitor flags it)
    sup.run(20.0, tick_s=1.0)
    sup.lanes[0].distress[0] = False
    sup.run(20.0, tick_s=1.0)
    after = sinks[0].played[n0:]
    # bed 0 heard the protective response and silence only: no click, no scene, while distress holds
    assert after and {c.kind for c in after} <= {"silence", "protect"}
    refused = [d for d in decisions if d["description"] == "guard_refused"]
    r0 = [d for d in refused if d["session"] == "bed-0"]
    assert r0 and all(d["inputs"]["rule"] == "anti_exploitation" for d in r0)
    assert r0[0]["inputs"]["command"]["kind"] == "click" and "during a distress episode" in r0[0]["reason"]
    assert r0[0]["inputs"]["decided_because"] == "More stimulation keeps them coming back."
    # bed 1's psyche-driven cues never played; each refusal is its own journaled decision
    r1 = [d for d in refused if d["session"] == "bed-1"]
    assert r1 and all("psyche data" in d["reason"] for d in r1)
    assert not any(c.kind == "cue" for c in sinks[1].played)
    # the refused commands are not counted as played, and not journaled as if played
    assert not any(d["description"] == "cue" and d["session"] == "bed-1" for d in decisions)
    assert int(loop.guard.refused[1]) == len(r1)
    sup.close()


class _DistressAt:
    """A stand-in distress monitor: opens a distress episode on every slot at ``t`` s (flag and glitch), as the
    psyche monitor does, so that the supervisor's recording path is the real one."""

    name = "distress_at"

    def __init__(self, lane, t: float = 20.0) -> None:
        self.t, self.done = t, False

    def step(self, ctx):
        from nexus.facility.step import SlotGlitch, StepResult

        if self.done or ctx.t_end < self.t:
            return StepResult()
        self.done = True
        slots = np.flatnonzero(ctx.active)
        flags = np.zeros(len(ctx.active), dtype=bool)
        flags[slots] = True
        return StepResult(distress=flags, glitches=[SlotGlitch(int(s), ctx.t_end, "distress",
                                                               "heart-rate surge with faster breathing")
                                                    for s in slots])

    def reset(self, slots) -> None:
        return None


def test_a_psyche_glitch_is_recorded_only_with_psyche_monitoring_consent(signals, tmp_path):
    from nexus.store.recording import RecordingJournal

    analyzers = [*default_analyzers(block_s=0.1, events=False)]
    analyzers.insert(len(analyzers) - 1, _DistressAt)  # before the dreamscape loop, like the monitor
    journal = RecordingJournal(tmp_path / "journal")
    sup = Supervisor(ManualClock(), journal=journal, analyzers=analyzers, step_s=0.25, buffer_s=4.0)
    sinks = [CountingSink(), CountingSink()]
    no_psyche = [s for s in FULL if s != "psyche_monitoring"]
    sup.add_fleet(LoopedFleet(signals, FS, CH), ["bed-0", "bed-1"], programs=[_program()] * 2, sinks=sinks,
                  scopes=[FULL, no_psyche])
    seen: list[dict] = []
    sup.listeners.append(lambda kind, recs: seen.extend(recs) if kind == "glitch" else None)
    sup.run(40.0, tick_s=1.0)
    sup.close()
    journal.flush(force=True)
    assert [g.session for g in sup.glitches if g.kind == "distress"] == ["bed-0"]
    assert [r["session"] for r in seen if r["description"] == "distress"] == ["bed-0"]
    import json

    journaled = [json.loads(line) for line in (tmp_path / "journal" / "records.jsonl").read_text().splitlines()]
    assert [r["session"] for r in journaled if r.get("description") == "distress"] == ["bed-0"]
    assert sup.sessions["bed-1"].withheld == 1
    # both beds were protected all the same: silence, nothing else, once distress opened
    for sink in sinks:
        assert sink.played and {c.kind for c in sink.played if c.t >= 20.0} <= {"silence", "protect"}
    journal.close()


def test_the_hold_after_distress_counts_from_the_episode_onset_like_the_controller():
    from nexus.facility.guarding import LaneGuard

    g = LaneGuard(2)
    g.assign(0, _program(), FULL)
    g.assign(1, _program(), FULL)

    def step(t, open0):
        cmds = [Command(s, t, "click", {"duration_s": 0.05, "level_db": -30.0}) for s in (0, 1)]
        decisions = [Decision(t, c.session, "click", c, {"phase_deg": 2.0}, "CLAS") for c in cmds]
        ok, out = g.screen(t, cmds, decisions, np.array([open0, False]))
        return [c.session for c in ok], [d.reason for d in out if d.kind == "guard_refused"]

    assert step(5.0, False) == ([0, 1], [])
    ok, why = step(10.0, True)  # the episode opens
    assert ok == [1] and "during a distress episode" in why[0]
    assert step(60.0, True)[0] == [1]  # still open
    ok, why = step(100.0, False)  # closed: the hold runs from the onset at 10 s
    assert ok == [1] and "after distress" in why[0]
    assert step(309.0, False)[0] == [1]
    assert step(311.0, False)[0] == [0, 1]  # 301 s after the onset (a hold from the episode's end would refuse)
