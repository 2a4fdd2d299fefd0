"""read_edf: potentials come back in µV; reading only some channels, and skipping the annotations, gives the same
samples."""

import numpy as np
import pytest

from nexus.formats.edf import Annotation, Signal, read_edf, unit_to_uv, write_edf


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


def test_pick_chooses_by_name_among_all_kept_labels_and_reads_only_those(night):
    full = read_edf(night)
    asked = []

    def pick(labels):
        asked.append(list(labels))
        return ["EMG Chin", "EEG C4-M1"]

    some = read_edf(night, keep=lambda label, unit: unit != "au", pick=pick, annotations=False)
    assert asked == [["EEG C4-M1", "C3-A2", "EMG Chin"]]  # called once, with what keep accepted
    assert some.labels == ["EEG C4-M1", "EMG Chin"]  # file order, not the order pick gave
    for s in some.signals:
        np.testing.assert_array_equal(s.data, full.channel(s.label).data)
        assert s.unit == full.channel(s.label).unit and s.fs == full.channel(s.label).fs
    assert some.start == full.start and some.duration == full.duration


def test_pick_may_refuse(night):
    def pick(labels):
        raise ValueError(f"no Fpz among {labels}")

    with pytest.raises(ValueError, match="no Fpz among"):
        read_edf(night, pick=pick)


def test_annotations_can_be_skipped(night):
    rec = read_edf(night, annotations=False)
    assert rec.annotations == [] and len(rec.signals) == 4



def test_potentials_come_back_in_microvolts_and_other_units_as_stored(tmp_path):
    rng = np.random.default_rng(4)
    uv = rng.normal(0, 30, 2560)
    sigs = [Signal("EEG C4-M1", uv / 1000.0, 256.0, "mV"), Signal("EEG O1-M2", uv * 1e3, 256.0, "nV"),
            Signal("EOG E1-M2", uv, 256.0, "uV"),
            Signal("SpO2", 90 + rng.random(2560), 256.0, "%")]
    path = write_edf(tmp_path / "u.edf", sigs)
    seen = []
    rec = read_edf(path, keep=lambda label, unit: seen.append(unit) or True)
    assert seen == ["mV", "nV", "uV", "%"]  # keep() is asked with the unit the file stores
    assert [s.unit for s in rec.signals] == ["uV", "uV", "uV", "%"]
    for s in rec.signals[:3]:  # the same µV values whatever the stored unit (EDF keeps 16 bits of the range)
        np.testing.assert_allclose(s.data, uv, atol=np.ptp(uv) / 2**15)
    np.testing.assert_allclose(rec.signals[3].data, sigs[3].data, atol=1e-3)


def test_unit_spellings():
    assert [unit_to_uv(u) for u in ("µV", "μV", "uV", " mV ", "V", "Volts", "nV", "micro volts")] == [
        1.0, 1.0, 1.0, 1e3, 1e6, 1e6, 1e-3, 1.0]
    assert [unit_to_uv(u) for u in ("%", "bpm", "", "degC", "mg")] == [None] * 5
