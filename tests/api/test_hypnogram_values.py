"""The hypnogram route gives back, epoch by epoch, the stage records the recorder handed the service."""

import numpy as np


def test_hypnogram_route_has_each_recorded_epoch_in_its_place(facility):
    svc = facility.service
    got: dict[str, dict[int, tuple[int, list[float] | None]]] = {}

    def listen(kind, records):
        for r in records:
            if r.get("kind") == "stage":
                got.setdefault(r["session"], {})[round(r["onset"] / 30.0)] = (r["stage"], r["probs"])

    svc.sup.listeners.append(listen)
    svc.advance(240.0)  # 95 s -> 335 s: epochs 3..10 closed here
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
