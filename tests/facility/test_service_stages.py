"""An epoch close reaching the facility service: each bed's stage, confidence and hypnodensity as the records say.

The confidence of an epoch is ``round(max(probs), 3)`` as Python rounds it, also where the largest probability ends
in a 5 (0.2035 -> 0.203: the float is a little below the half; NumPy's rounding gives 0.204).
"""

from __future__ import annotations

import json

import numpy as np

from nexus.core.stages import EPOCH_S
from nexus.facility.service import FacilityService


def test_an_epoch_close_gives_each_bed_its_stage_confidence_and_hypnodensity(store, tmp_path):
    svc = FacilityService(store, clients=4, data_dir=tmp_path, events=False, run_id="c")
    svc.start()
    try:
        sub = svc.subscribe()
        names = [b["session"] for b in svc.beds()]
        # largest values whose Python and NumPy roundings to 3 digits differ (0.2035 -> 0.203 / 0.204), and not
        probs = [[0.2, 0.2035, 0.2, 0.2, 0.1965], [0.0005, 0.0005, 0.0015, 0.4965, 0.501],
                 [0.2, 0.2, 0.2, 0.2, 0.2], None]
        stages = [4, 3, 0, -1]
        epoch = 7
        svc._on_records("records", [{"session": n, "kind": "stage", "onset": epoch * EPOCH_S, "duration": EPOCH_S,
                                     "stage": s, "probs": p} for n, s, p in zip(names, stages, probs, strict=True)])
        for n, s, p in zip(names, stages, probs, strict=True):
            h = svc.hypnogram(n)
            assert h["stages"][epoch] == s and svc.bed(n)["stage"] == s
            if p is None:
                assert h["confidence"][epoch] is None and h["hypnodensity"][epoch] is None
            else:
                assert h["confidence"][epoch] == round(max(p), 3)
                assert h["hypnodensity"][epoch] == np.round(np.array(p), 3).tolist()
        msg = json.loads(sub.get())
        assert msg == {"type": "stages", "stages": [{"session": n, "epoch": epoch, "stage": s, "probs": p}
                                                    for n, s, p in zip(names, stages, probs, strict=True)]}
    finally:
        svc.stop()
