"""The hypnogram route gives back, epoch by epoch, the stage records the recorder handed the service."""

import gc

import numpy as np


def test_hypnogram_route_has_each_recorded_epoch_in_its_place(facility):
    svc = facility.service
    got: dict[str, dict[int, tuple[int, list[float] | None]]] = {}

    def listen(kind, records):
        for r in records:
            if r.get("kind") == "stage":
                got.setdefault(r["session"], {})[round(r["onset"] / 30.0)] = (r["stage"], r["probs"])

    svc.sup.listeners.append(listen)
    svc.advance(240.0, step_s=1.0)  # 95 s -> 335 s: epochs 3..10 closed here (fast-forwarded: 1-s steps)
    for sid, epochs in got.items():
        h = facility.get(f"/api/sessions/{sid}/hypnogram").json()
        assert len(h["stages"]) == len(h["confidence"]) == len(h["hypnodensity"]) == 11
        assert sorted(epochs) == list(range(3, 11))
        for e, (code, probs) in epochs.items():
            assert h["stages"][e] == code, (sid, e)
            if probs is None:
                assert h["confidence"][e] is None and h["hypnodensity"][e] is None
            else:
                assert h["confidence"][e] == round(max(probs), 3), (sid, e)
                assert h["hypnodensity"][e] == np.round(np.array(probs), 3).tolist(), (sid, e)
        assert h["probs"] == epochs[10][1]
    assert len(got) == len(svc.beds())


def test_decisions_read_back_as_recorded_and_are_not_left_for_the_garbage_collector(facility):
    svc = facility.service
    sid = svc.beds()[1]["session"]
    recs = [{"session": sid, "kind": "decision", "onset": 100.0 + i / 3, "duration": 0.0, "description": "click",
             "command": {"t": 100.0 + i / 3, "kind": "click", "level_db": 45.0 + i, "cue_kind": None},
             "inputs": {}, "reason": f"phase {i}"} for i in range(250)]
    recs[5]["command"] = None
    with svc._lock:
        svc._on_records("records", recs)
    got = svc.decisions(sid)
    assert len(got) == 200  # the latest 200, oldest first
    assert got == [{"t_s": round(r["onset"], 3), "kind": "click", "command": r["command"], "reason": r["reason"]}
                   for r in recs[50:]]
    gc.collect()
    assert not any(gc.is_tracked(d) for d in svc._by_session[sid].decisions)
    assert list(got[0]) == ["t_s", "kind", "command", "reason"]
