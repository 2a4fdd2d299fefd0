"""Channel roles from labels: the one helper every channel picker uses."""

import pytest

from nexus.core.montage import EPHYS, ROLES, channel_role, channel_roles


@pytest.mark.parametrize(
    ("label", "role"),
    [
        ("EEG C4-M1", "eeg"), ("eeg Fpz-Cz", "eeg"), ("C4-M1", "eeg"), ("Fpz-Cz", "eeg"), ("Pz - Oz", "eeg"),
        ("O2", "eeg"), ("EOG E1-M2", "eog"), ("E2-M1", "eog"), ("LOC", "eog"), ("Left EOG", "eog"),
        ("EMG Chin", "emg"), ("Chin1-Chin2", "emg"), ("Submental EMG", "emg"), ("ECG", "ecg"), ("EKG II", "ecg"),
        ("Resp chest", "resp"), ("Thor", "resp"), ("Airflow", "resp"), ("Acc X", "acc"), ("  acc z ", "acc"),
        ("Light", None), ("Marker", None), ("C4-Marker", None), ("SpO2", None), ("E3", None),
    ],
)
def test_role_of_a_label(label, role):
    assert channel_role(label) == role


def test_prefix_wins_over_the_derivation():
    # a chin electrode recorded as EEG by its device is EEG; an "EOG" labelled C3 is EOG
    assert channel_role("EEG Chin") == "eeg"
    assert channel_role("EOG C3") == "eog"


def test_roles_of_a_montage_in_label_order():
    labels = ["Acc X", "EEG C4-M1", "E1-M2", "EOG E2-M2", "EMG Chin", "ECG", "Resp", "Acc Y", "Marker", "C3-M2"]
    roles = channel_roles(labels)
    assert set(roles) == {*ROLES, "ephys"}
    assert roles["eeg"] == [1, 9]
    assert roles["eog"] == [2, 3]
    assert roles["emg"] == [4]
    assert roles["ecg"] == [5]
    assert roles["resp"] == [6]
    assert roles["acc"] == [0, 7]
    assert roles["ephys"] == [1, 2, 3, 4, 5, 9]  # every EEG/EOG/EMG/ECG row, in order
    assert EPHYS == ("eeg", "eog", "emg", "ecg")
    assert channel_roles([]) == {k: [] for k in (*ROLES, "ephys")}
