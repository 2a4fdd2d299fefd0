"""read_edf: reading only some channels, and skipping the annotations, gives the same samples."""

import numpy as np
import pytest

from nexus.formats.edf import Annotation, Signal, read_edf, write_edf


@pytest.fixture
def night(tmp_path):
    rng = np.random.default_rng(3)
    sigs = [
        Signal("EEG C4-M1", rng.normal(size=2560) * 30, 256.0, "uV"),
        Signal("C3-A2", rng.normal(size=2560) * 0.03, 256.0, "mV"),
        Signal("Resp", rng.normal(size=320), 32.0, "au"),
        Signal("EMG Chin", rng.normal(size=2560) * 5, 256.0, "uV"),
    ]
    anns = [Annotation(1.0, 0.5, "spindle"), Annotation(4.0, 0.0, "lights off")]
    return write_edf(tmp_path / "n.edf", sigs, anns)


def test_keep_reads_only_the_chosen_channels_with_the_same_samples(night):
    full = read_edf(night)
    some = read_edf(night, keep=lambda label, unit: unit != "au")
    assert some.labels == ["EEG C4-M1", "C3-A2", "EMG Chin"]
    for s in some.signals:
        np.testing.assert_array_equal(s.data, full.channel(s.label).data)
        assert s.unit == full.channel(s.label).unit and s.fs == full.channel(s.label).fs
    assert [a.text for a in full.annotations] == ["spindle", "lights off"]
    assert some.annotations == full.annotations and some.start == full.start


def test_annotations_can_be_skipped(night):
    rec = read_edf(night, annotations=False)
    assert rec.annotations == [] and len(rec.signals) == 4

