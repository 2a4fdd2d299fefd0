"""Ground truth of a synthetic night: stages, events, arousals, distress, faults, closed-loop responses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from nexus.core.stages import EPOCH_S, Stage
from nexus.sources.synthetic.faults import Fault
from nexus.sources.synthetic.signals import EVENT_SOURCES, KernelTable

_SOURCE_CHANNEL = {
    "slow": "EEG C4-M1",
    "fast": "EEG C4-M1",
    "eye_h": "EOG E1-M2",
    "blink": "EOG E1-M2",
    "emg": "EMG Chin",
    "move": "Acc",
}
EDF_STAGE_TEXT = {int(s): f"Sleep stage {s.label}" for s in (Stage.W, Stage.N1, Stage.N2, Stage.N3, Stage.R)}
"""EDF+ annotation text of each stage code (``"Sleep stage N2"``, as YASA / MNE read them)."""


@dataclass
class SleepTruth:
    """Everything that truly happened in a synthetic night (up to ``t_end``).

    Attributes
    ----------
    stages : ndarray of int8
        Stage per 30-s epoch (W=0, N1=1, N2=2, N3=3, R=4).
    events : pandas.DataFrame
        Columns ``onset`` and ``duration`` (s), ``kind`` (``slow_oscillation``, ``k_complex``,
        ``vertex_wave``, ``spindle``, ``sawtooth``, ``rem``, ``saccade``, ``sem``, ``blink``, ``twitch``,
        ``emg_burst``, ``movement``, ``arousal``), ``channel``, ``amplitude`` (peak-to-peak, µV;
        milli-g for movements), ``frequency`` (Hz, 0 where none), sorted by onset.
    distress : pandas.DataFrame
        Columns ``onset``, ``duration`` (s), ``hr_surge`` (bpm), ``woke`` (bool).
    faults : pandas.DataFrame
        Columns ``onset``, ``duration`` (s), ``kind``, ``channel``, ``variant``.
    responses : pandas.DataFrame
        Sounds played and what they did: ``onset``, ``kind``, ``level_db``, ``stage``, ``on_target``, ``outcome``.
    t_end : float
        Seconds covered.
    heart_rate, resp_rate : ndarray of float
        Mean heart rate (bpm, without the respiratory sinus arrhythmia, which averages out) and
        breathing rate (breaths/min) per epoch.
    """

    stages: npt.NDArray[np.int8]
    events: pd.DataFrame
    distress: pd.DataFrame
    faults: pd.DataFrame
    responses: pd.DataFrame
    t_end: float
    heart_rate: npt.NDArray[np.float64]
    resp_rate: npt.NDArray[np.float64]

    @classmethod
    def build(
        cls,
        *,
        stages: npt.NDArray[np.int8],
        event_onset: npt.NDArray[np.float64],
        event_kernel: npt.NDArray[np.int64],
        event_amp: npt.NDArray[np.float64],
        kernels: KernelTable,
        arousal_onset: npt.NDArray[np.float64],
        arousal_duration: npt.NDArray[np.float64],
        distress_onset: npt.NDArray[np.float64],
        distress_duration: npt.NDArray[np.float64],
        distress_surge: npt.NDArray[np.float64],
        distress_woke: npt.NDArray[np.bool_],
        faults: Sequence[Fault],
        responses: Sequence[dict[str, object]],
        t_end: float,
        fs: float,
        heart_rate: npt.NDArray[np.float64],
        resp_rate: npt.NDArray[np.float64],
    ) -> SleepTruth:
        """Assemble the truth tables from the fleet's arrays (see :meth:`SyntheticFleet.truth`)."""
        kinds = np.array(kernels.kind, dtype=object)
        chans = np.array([_SOURCE_CHANNEL[EVENT_SOURCES[s]] for s in kernels.source], dtype=object)
        a_keep = arousal_onset < t_end
        ev = pd.DataFrame(
            {
                "onset": np.concatenate([event_onset, arousal_onset[a_keep]]),
                "duration": np.concatenate([kernels.lengths[event_kernel] / fs, arousal_duration[a_keep]]),
                "kind": np.concatenate([kinds[event_kernel], np.full(int(a_keep.sum()), "arousal", dtype=object)]),
                "channel": np.concatenate([chans[event_kernel], np.full(int(a_keep.sum()), "EEG C4-M1", dtype=object)]),
                "amplitude": np.concatenate([np.abs(event_amp), np.zeros(int(a_keep.sum()))]),
                "frequency": np.concatenate([kernels.freq[event_kernel], np.zeros(int(a_keep.sum()))]),
            }
        )
        ev = ev.sort_values("onset", kind="stable").reset_index(drop=True)
        d_keep = distress_onset < t_end
        dis = pd.DataFrame(
            {
                "onset": distress_onset[d_keep],
                "duration": distress_duration[d_keep],
                "hr_surge": distress_surge[d_keep],
                "woke": np.asarray(distress_woke, dtype=bool)[: distress_onset.size][d_keep],
            }
        )
        flt = pd.DataFrame(
            {
                "onset": [f.onset for f in faults if f.onset < t_end],
                "duration": [f.duration for f in faults if f.onset < t_end],
                "kind": [f.kind for f in faults if f.onset < t_end],
                "channel": [f.channel for f in faults if f.onset < t_end],
                "variant": [f.variant for f in faults if f.onset < t_end],
            }
        )
        cols = ["onset", "kind", "level_db", "stage", "on_target", "outcome"]
        resp = pd.DataFrame([{k: r[k] for k in cols} for r in responses], columns=cols)
        return cls(
            stages=stages,
            events=ev,
            distress=dis,
            faults=flt,
            responses=resp,
            t_end=t_end,
            heart_rate=heart_rate,
            resp_rate=resp_rate,
        )

    @property
    def n_epochs(self) -> int:
        """Number of scored epochs."""
        return int(self.stages.size)

    def events_frame(self) -> pd.DataFrame:
        """Events as an event-file table (``onset duration description channel amp_uv freq_hz``).

        The layout of :func:`nexus.formats.events.write_events`, with the same descriptions as the
        detectors of :mod:`nexus.events` (``spindle``, ``slow_oscillation``, ``rem``, ``arousal``, …),
        plus ``distress`` episodes, so detections can be scored against it.
        """
        ev = self.events
        rows = pd.DataFrame(
            {
                "onset": ev["onset"],
                "duration": ev["duration"],
                "description": ev["kind"],
                "channel": ev["channel"],
                "amp_uv": ev["amplitude"],
                "freq_hz": ev["frequency"],
            }
        )
        dis = pd.DataFrame(
            {
                "onset": self.distress["onset"],
                "duration": self.distress["duration"],
                "description": "distress",
                "channel": "ECG",
                "amp_uv": 0.0,
                "freq_hz": 0.0,
            }
        )
        out = pd.concat([rows, dis], ignore_index=True) if len(dis) else rows
        return out.sort_values("onset", kind="stable").reset_index(drop=True)

    def annotations(self) -> list[tuple[float, float, str]]:
        """EDF+ annotations ``(onset, duration, text)``: stages, events, arousals, distress, faults."""
        out: list[tuple[float, float, str]] = []
        st = self.stages
        if st.size:
            change = np.flatnonzero(np.diff(st)) + 1
            starts = np.concatenate(([0], change))
            ends = np.concatenate((change, [st.size]))
            out += [
                (s * EPOCH_S, (e - s) * EPOCH_S, EDF_STAGE_TEXT[int(st[s])]) for s, e in zip(starts, ends, strict=True)
            ]
        ev = self.events
        out += [(float(o), float(d), str(k)) for o, d, k in zip(ev["onset"], ev["duration"], ev["kind"], strict=True)]
        out += [
            (float(o), float(d), "distress")
            for o, d in zip(self.distress["onset"], self.distress["duration"], strict=True)
        ]
        for o, d, k, c in zip(
            self.faults["onset"], self.faults["duration"], self.faults["kind"], self.faults["channel"], strict=True
        ):
            ch = "all" if c == "*" else str(c).split(" ", 1)[-1]
            out.append((float(o), float(d), f"fault:{k} {ch}"))
        for o, k, lvl, res in zip(
            self.responses["onset"],
            self.responses["kind"],
            self.responses["level_db"],
            self.responses["outcome"],
            strict=True,
        ):
            out.append((float(o), 0.0, f"sound:{k} {lvl:.0f} dB -> {res}"))
        return sorted(out, key=lambda a: a[0])
