"""The live engine runs its BLAS with one thread (facility/threads.py)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json, threadpoolctl
import nexus.facility.warmup as w
w.warm_up = lambda *a, **k: None  # the kernels are not what this test is about
from nexus.facility.pipeline import Lane
from nexus.facility.step import StepResult

class Nothing:
    name = "nothing"
    def step(self, ctx): return StepResult()
    def reset(self, slots): pass
    def close(self): pass

def blas():
    return sorted({d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"})

before = blas()
Lane(["EEG"], 100.0, 2)  # no analyzers: a bare buffer leaves the process alone
bare = blas()
Lane(["EEG"], 100.0, 2, analyzers=[lambda lane: Nothing()])
print(json.dumps({"before": before, "bare": bare, "after": blas()}))
"""


def test_a_lane_with_analyzers_limits_blas_to_one_thread():
    env_free = {k: v for k, v in __import__("os").environ.items()
                if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env_free["OPENBLAS_NUM_THREADS"] = "2"  # as on a 2-core machine, whatever this one has
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env_free, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["before"] and max(got["before"]) == 2  # the limit is not there before a lane asks for it
    assert got["bare"] == got["before"]
    assert got["after"] == [1]
