import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.core.errors import InvalidInputError
from nexus.formats.hypnogram import read_hypnogram
from nexus.staging.stats import sleep_statistics

DATA = Path(__file__).resolve().parents[1] / "data"
CSVS = sorted((DATA / "sleep-edf" / "hypnograms_1Hz_csv").glob("*.csv"))
YASA_LABELS = {0: "WAKE", 1: "N1", 2: "N2", 3: "N3", 4: "REM", -1: "ART", -2: "UNS"}


@pytest.fixture(scope="module")
def yasa_stats():
    yasa = pytest.importorskip("yasa")

    def compute(stages, epoch_s=30.0):
        hyp = yasa.Hypnogram([YASA_LABELS[int(s)] for s in stages], n_stages=5, freq=f"{int(epoch_s)}s")
        return {k: float(v) for k, v in hyp.sleep_statistics().items()}

    return compute


def _assert_same(ours, theirs):
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        if math.isnan(value):
            assert math.isnan(ours[key]), key
        else:
            assert ours[key] == pytest.approx(value, abs=1e-4), key


def test_all_39_sleep_edf_hypnograms_match_yasa(yasa_stats):
    assert len(CSVS) == 39
    for path in CSVS:
        h = read_hypnogram(path)
        _assert_same(sleep_statistics(h.stages, h.epoch_s), yasa_stats(h.stages))


def test_edf_hypnogram_with_unscored_tail_matches_yasa(yasa_stats):
    h = read_hypnogram(DATA / "sleep-edf" / "SC4001EC-Hypnogram.edf")
    ours = sleep_statistics(h.stages)
    assert ours["UNS"] > 0
    _assert_same(ours, yasa_stats(h.stages))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([-2, -1, 0, 1, 2, 3, 4]), min_size=1, max_size=120))
def test_random_hypnograms_match_yasa(yasa_stats, stages):
    _assert_same(sleep_statistics(stages), yasa_stats(stages))


def test_known_values():
    # 10 min wake, 20 min N2, 5 min wake, 10 min REM, 5 min wake
    h = [0] * 20 + [2] * 40 + [0] * 10 + [4] * 20 + [0] * 10
    s = sleep_statistics(h)
    assert (s["TIB"], s["SPT"], s["TST"], s["WASO"], s["SOL"], s["Lat_REM"]) == (50, 35, 30, 5, 10, 35)
    assert s["SE"] == 60.0 and s["%REM"] == pytest.approx(33.3333)


def test_rejects_bad_input():
    with pytest.raises(InvalidInputError, match="empty"):
        sleep_statistics(np.array([], dtype=int))
    with pytest.raises(InvalidInputError, match="Invalid stage codes"):
        sleep_statistics([0, 5])
