"""Channel roles from channel labels: the one place that decides which rows are EEG, EOG, EMG, ECG, ….

A label's role comes, in this order, from

1. its type prefix: ``"EEG C4-M1"``, ``"EOG E1-M2"``, ``"EMG Chin"``, ``"ECG"`` / ``"EKG II"``,
   ``"Resp chest"`` / ``"Thor"`` / ``"Abdo"`` / ``"Airflow"``, ``"Acc X"`` (the way Nexus names
   channels, see :func:`nexus.sources.channels.map_channels`);
2. a type word elsewhere in the label (``"Left EOG"``, ``"Submental EMG"``);
3. a derivation that belongs to one role: 10-20 electrodes (``"C4-M1"``, ``"Fpz-Cz"``) are EEG,
   ``E1``/``E2``/``LOC``/``ROC`` are EOG, ``Chin`` is EMG.

Everything that picks channels by kind (the facility lanes, the live monitor, staging's channel
choice, the events and report commands) asks :func:`channel_role` or :func:`channel_roles`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

ROLES: tuple[str, ...] = ("eeg", "eog", "emg", "ecg", "resp", "acc")
"""The roles a channel can have (lower case); a label that fits none has role ``None``."""
EPHYS: tuple[str, ...] = ("eeg", "eog", "emg", "ecg")
"""Roles whose samples are potentials in µV (electrophysiology)."""

_PREFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("eeg", ("EEG",)),
    ("eog", ("EOG",)),
    ("emg", ("EMG",)),
    ("ecg", ("ECG", "EKG")),
    ("resp", ("RESP", "THOR", "ABDO", "AIRFLOW", "FLOW")),
    ("acc", ("ACC",)),
)
_WORDS = tuple((role, re.compile(r"\b(?:" + "|".join(words) + r")\b")) for role, words in _PREFIXES)
_ELECTRODE = r"(?:FP[12Z]|AF[3-8Z]|F[1-8Z]|FC[1-6Z]|C[1-6Z]|CP[1-6Z]|P[1-8Z]|PO[3-8Z]|O[12Z]|T[3-8]|M[12]|A[12])"
_DERIVATIONS = (
    ("eog", re.compile(r"^(?:E[12]|LOC|ROC)\b")),
    ("emg", re.compile(r"CHIN")),
    ("eeg", re.compile(r"^" + _ELECTRODE + r"(?:\s*-\s*" + _ELECTRODE + r")?$")),
)


def channel_role(label: str) -> str | None:
    """The role of one channel (``"eeg"``, ``"eog"``, ``"emg"``, ``"ecg"``, ``"resp"``, ``"acc"``) or None."""
    up = label.strip().upper()
    for role, prefixes in _PREFIXES:
        if up.startswith(prefixes):
            return role
    for role, word in _WORDS:
        if word.search(up):
            return role
    for role, pattern in _DERIVATIONS:
        if pattern.search(up):
            return role
    return None


def channel_roles(labels: Sequence[str]) -> dict[str, list[int]]:
    """Indices of the channels of each role, in label order, plus ``"ephys"`` (every EEG/EOG/EMG/ECG row).

    Every key of :data:`ROLES` is present (an empty list when no channel has that role).
    """
    out: dict[str, list[int]] = {role: [] for role in (*ROLES, "ephys")}
    for i, label in enumerate(labels):
        role = channel_role(label)
        if role is not None:
            out[role].append(i)
            if role in EPHYS:
                out["ephys"].append(i)
    return out
