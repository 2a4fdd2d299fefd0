"""Hypnogram against recording: within one epoch is fine, longer warns, shorter is refused."""

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.formats.coverage import check_coverage, span
from nexus.formats.hypnogram import Hypnogram


def _h(n: int) -> Hypnogram:
    return Hypnogram(np.full(n, 2, dtype=np.int8))


@pytest.mark.parametrize("duration", [90.0, 60.0, 61.0, 119.0, 120.0], ids=lambda d: f"{d:g}s")
def test_within_one_epoch_either_way_says_nothing(duration):
    assert check_coverage(_h(3), duration, "h.tsv", "r.edf") is None  # 90 s of hypnogram


def test_longer_by_more_than_an_epoch_warns_with_the_epochs_ignored():
    one = check_coverage(_h(3), 59.0, "a/h.tsv", "b/r.edf")
    assert one == ("The hypnogram 'h.tsv' (3 epochs, 2 min) is longer than the recording 'r.edf' (59 s): its last "
                   "epoch has no signal and is ignored. Check that both belong to the same night.")
    many = check_coverage(_h(960), 300.0, "h.tsv", "r.edf")
    assert many is not None and "(960 epochs, 8 h 00 min)" in many and "its last 950 epochs have no signal" in many


def test_shorter_by_more_than_an_epoch_is_refused_naming_the_fix():
    with pytest.raises(InvalidInputError, match=r"shorter than the recording 'r.edf' \(2 min\): the last 31 s are "
                                                r"not staged\. Give the hypnogram of the whole recording"):
        check_coverage(_h(3), 121.0, "h.tsv", "r.edf")


@pytest.mark.parametrize(("s", "text"), [(0, "0 s"), (59.4, "59 s"), (60, "1 min"), (3599, "1 h 00 min"),
                                          (28_740, "7 h 59 min")])
def test_span_reads_as_people_write_it(s, text):
    assert span(s) == text
