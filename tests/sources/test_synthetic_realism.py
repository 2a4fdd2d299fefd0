"""Realism judged from outside: YASA's pre-trained stager must agree with the synthetic truth.

Two full nights keep the test under a minute; bench/synth_realism.py runs >= 10 seeds.
"""

import numpy as np
import pytest

from nexus.sources.synthetic import synthesize_night

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning:sklearn.*"),  # YASA's pickled LabelEncoder (sklearn 0.24)
    pytest.mark.filterwarnings("ignore::RuntimeWarning:antropy.*"),
]


def _kappa(night):
    import mne
    import yasa
    from sklearn.metrics import cohen_kappa_score

    names = ["EEG C4-M1", "EOG E1-M2", "EMG Chin"]
    raw = mne.io.RawArray(
        np.stack([night.channel(c) for c in names]) * 1e-6,
        mne.create_info(names, night.fs, ["eeg", "eog", "emg"], verbose=False),
        verbose=False,
    )
    sls = yasa.SleepStaging(
        raw, eeg_name=names[0], eog_name=names[1], emg_name=names[2], metadata=night.profile.metadata
    )
    codes = {"W": 0, "WAKE": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4, "REM": 4}
    pred = np.array([codes[str(x)] for x in np.asarray(sls.predict().hypno)])
    n = min(pred.size, night.stages.size)
    return cohen_kappa_score(night.stages[:n], pred[:n])


def test_yasa_agrees_with_the_truth():
    kappas = [
        _kappa(synthesize_night("typical_adult", 6.0, seed, channels=("EEG C4-M1", "EOG E1-M2", "EMG Chin")))
        for seed in (101, 102)
    ]
    assert np.mean(kappas) >= 0.70, kappas
