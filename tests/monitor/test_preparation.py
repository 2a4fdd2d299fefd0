import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.monitor.preparation import ChannelFault, Limits, check_preparation

FS = 256.0


def _good(n_ch=1, seconds=4, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    return 20 * np.sin(2 * np.pi * 10 * t) + rng.normal(0, 8, (n_ch, t.size)), t


def test_clean_channels_are_ready():
    x, _ = _good(3)
    rep = check_preparation(x, FS, ["EEG C4-M1", "EOG E1-M2", "EMG Chin"])
    assert rep.ready, rep.summary()
    assert rep.summary() == "ready"


def _faulty(kind):
    x, t = _good(1, seed=1)
    x = x[0]
    if kind == "flat":
        x = np.full_like(x, 3.0) + 1e-3 * np.sin(t)
    elif kind == "disconnected_nan":
        x[: int(0.8 * x.size)] = np.nan
    elif kind == "disconnected_rail":
        x = np.clip(x * 1000, -3000, 3000)
        x[::3] = 3000.0
        x[1::3] = 3000.0
    elif kind == "out_of_range":
        x = x + 2000.0
    elif kind == "noisy":
        x = x + np.random.default_rng(2).normal(0, 400, x.size)
    elif kind == "line_noise":
        x = x + 60 * np.sin(2 * np.pi * 50 * t)
    return x


@pytest.mark.parametrize(
    ("kind", "fault"),
    [
        ("flat", ChannelFault.FLAT),
        ("disconnected_nan", ChannelFault.DISCONNECTED),
        ("disconnected_rail", ChannelFault.DISCONNECTED),
        ("out_of_range", ChannelFault.OUT_OF_RANGE),
        ("noisy", ChannelFault.NOISY),
        ("line_noise", ChannelFault.LINE_NOISE),
    ],
    ids=str,
)
def test_each_fault_is_found_with_a_reason(kind, fault):
    good, _ = _good(1, seed=3)
    rep = check_preparation(np.vstack([good, _faulty(kind)]), FS, ["EEG Fpz-Cz", "EEG C4-M1"])
    assert not rep.ready
    assert rep.channels[0].ok
    assert fault in rep.channels[1].faults
    assert any(r.startswith(f"EEG C4-M1: {fault.value}") for r in rep.reasons)
    assert "not ready" in rep.summary()


def test_60hz_mains_setting():
    _, t = _good(1)
    x = 10 * np.sin(2 * np.pi * 8 * t) + 40 * np.sin(2 * np.pi * 60 * t)

    rep = check_preparation(x[None], FS, ["EEG"], Limits(line_hz=60))
    assert ChannelFault.LINE_NOISE in rep.channels[0].faults


def test_accelerometer_only_checked_for_life():
    _, t = _good(1)
    acc = 1000 + 5 * np.sin(2 * np.pi * 0.2 * t)  # 1 g offset is normal for an accelerometer
    rep = check_preparation(acc[None], FS, ["Acc Z"])
    assert rep.ready


def test_too_short_or_misshapen():
    with pytest.raises(InvalidInputError, match="at least 2 s"):
        check_preparation(np.zeros((1, 100)), FS, ["EEG"])
    with pytest.raises(InvalidInputError, match="with 2 rows"):
        check_preparation(np.zeros((1, 1000)), FS, ["a", "b"])
