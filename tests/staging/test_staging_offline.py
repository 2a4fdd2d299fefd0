import warnings

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.sources.synthetic import synthesize_night
from nexus.staging.offline import FLAT_STD_UV, pick_channels, stage_offline

CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EMG Chin")


@pytest.fixture(scope="module")
def night():
    n = synthesize_night("typical_adult", hours=1.0, seed=7, channels=CHANNELS)
    return {"eeg": n.signals[0], "eog": n.signals[1], "emg": n.signals[2]}, n.fs


@pytest.fixture(scope="module")
def yasa_hypno(night):
    yasa = pytest.importorskip("yasa")
    mne = pytest.importorskip("mne")
    sig, fs = night
    raw = mne.io.RawArray(
        np.stack([sig["eeg"], sig["eog"], sig["emg"]]) * 1e-6,
        mne.create_info(["eeg", "eog", "emg"], fs, ["eeg", "eog", "emg"]),
        verbose=False,
    )
    with warnings.catch_warnings():  # yasa's models were pickled with an old scikit-learn
        warnings.simplefilter("ignore")
        hyp = yasa.SleepStaging(raw, "eeg", eog_name="eog", emg_name="emg").predict()
    return hyp.proba[["WAKE", "N1", "N2", "N3", "REM"]].to_numpy()


def test_offline_agrees_with_yasa(night, yasa_hypno):
    sig, fs = night
    res = stage_offline(sig, fs)
    assert res.model == "clf_eeg+eog+emg"
    assert len(res) == yasa_hypno.shape[0] == 120
    agree = np.mean(res.stages == np.argmax(yasa_hypno, axis=1))
    assert agree >= 0.97
    # same features → same probabilities, up to the recording edges (filter padding), which
    # reach the others through the smoothing and the night-wide scaling
    np.testing.assert_allclose(res.probabilities[8:-8], yasa_hypno[8:-8], atol=5e-2)
    assert np.abs(res.probabilities - yasa_hypno).mean() < 5e-3
    np.testing.assert_allclose(res.probabilities.sum(axis=1), 1.0)
    np.testing.assert_array_equal(res.confidence, res.probabilities.max(axis=1))


def test_eeg_only_and_demographics_use_their_classifiers(night):
    sig, fs = night
    eeg_only = stage_offline({"eeg": sig["eeg"]}, fs)
    assert eeg_only.model == "clf_eeg"
    demo = stage_offline({"eeg": sig["eeg"], "emg": sig["emg"]}, fs, age=35, male=False)
    assert demo.model == "clf_eeg+emg+demo"
    assert len(eeg_only) == len(demo) == 120


def test_nan_and_flat_stretches_are_artefacts(night):
    sig, fs = night
    eeg = sig["eeg"].copy()
    eeg[int(600 * fs) : int(700 * fs)] = np.nan  # epochs 20-23
    eog = sig["eog"].copy()
    eog[int(1500 * fs) : int(1560 * fs)] = 3.0  # flat: epochs 50-51
    res = stage_offline({"eeg": eeg, "eog": eog, "emg": sig["emg"]}, fs)
    art = np.flatnonzero(res.stages == -1)
    np.testing.assert_array_equal(art, [20, 21, 22, 23, 50, 51])
    assert np.isnan(res.probabilities[art]).all()
    assert np.isfinite(res.probabilities[res.stages >= 0]).all()
    assert FLAT_STD_UV > 0


@pytest.mark.parametrize(
    ("signals", "fs", "match"),
    [
        ({"eeg": np.zeros(100 * 200)}, 100.0, "too short to stage: 3.3 min"),
        ({"eeg": np.zeros(60 * 600)}, 60.0, "expected > 80 Hz, got 60 Hz"),
        ({"eog": np.zeros(100 * 600)}, 100.0, "needs an EEG"),
        ({"eeg": np.zeros(100 * 600), "ecg": np.zeros(100 * 600)}, 100.0, "Unknown signal kind"),
    ],
    ids=["short", "low-fs", "no-eeg", "bad-kind"],
)
def test_bad_input(signals, fs, match):
    with pytest.raises(InvalidInputError, match=match):
        stage_offline(signals, fs)


def test_pick_channels_prefers_standard_derivations():
    labels = ["ECG", "EEG Fpz-Cz", "EEG C4-M1", "EOG E2-M2", "EOG E1-M2", "EMG Chin", "Resp"]
    assert pick_channels(labels) == {"eeg": "EEG C4-M1", "eog": "EOG E1-M2", "emg": "EMG Chin"}
    assert pick_channels(labels, eeg="fpz-cz")["eeg"] == "EEG Fpz-Cz"
    assert pick_channels(["EEG Fpz-Cz", "EEG Pz-Oz"]) == {"eeg": "EEG Fpz-Cz"}


def test_pick_channels_errors_list_channels_and_suggest():
    with pytest.raises(InvalidInputError, match=r"No EEG channel 'C4-M2'.*Did you mean 'EEG C4-M1'"):
        pick_channels(["EEG C4-M1", "ECG"], eeg="C4-M2")
    with pytest.raises(InvalidInputError, match=r"No usable EEG channel.*Channels found: C4M1, ECG.*closest is 'C4M1'"):
        pick_channels(["C4M1", "ECG"])
