"""The --source spec and the channel mapping from device metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.sources.channels import check_rate, map_channels
from nexus.sources.spec import parse_source


def test_specs_parse():
    assert parse_source("synthetic").count == 1
    assert parse_source("synthetic:12").count == 12
    s = parse_source("lsl:type=EEG:name=ward2-:channels=8")
    assert (s.kind, s.stream_type, s.name_prefix, s.channels) == ("lsl", "EEG", "ward2-", 8)
    assert parse_source("lsl").stream_type == "EEG" and parse_source("lsl").name_prefix == ""
    b = parse_source("brainflow:cyton:serial=/dev/ttyUSB0")
    assert (b.board, b.serial) == ("cyton", "/dev/ttyUSB0")
    r = parse_source("replay:/data/n:ights:speed=60")  # a folder with ':' keeps it
    assert (r.folder, r.speed) == (Path("/data/n:ights"), 60.0)
    assert parse_source("replay:nights").speed == 1.0


@pytest.mark.parametrize(("spec", "says"), [
    ("", "it is empty"),
    ("lls", "unknown source kind 'lls' (did you mean 'lsl'?)"),
    ("lsl:foo=1", "unknown option 'foo' for the lsl source (it takes type, name, channels)"),
    ("lsl:type=EEG:type=EMG", "option 'type' given twice"),
    ("lsl:channels=eight", "channels= must be a whole number >= 1, not 'eight'"),
    ("lsl:name=a'b", "must not contain quotes"),
    ("synthetic:0", "from 1 to 10000, not '0'"),
    ("synthetic:3:4", "unexpected part '4'"),
    ("brainflow", "name the board"),
    ("brainflow:cyten", "unknown BrainFlow board 'cyten'"),
    ("replay:", "name the folder"),
    ("replay:d:speed=fast", "speed= must be a number, not 'fast'"),
    ("replay:d:speed=0", "speed= must be from 0.01 to 100000"),
])
def test_bad_specs_say_what_and_how_in_one_line(spec, says):
    with pytest.raises(InvalidInputError) as e:
        parse_source(spec)
    msg = str(e.value)
    assert says in msg and "\n" not in msg
    assert msg.startswith(f"Bad --source '{spec.strip()}'") and "Use synthetic[:N]" in msg


def test_channels_named_by_role_and_scaled_to_uv():
    m = map_channels(["C4", "EEG O2", "E1", "chin", "x"], ["EEG", "", "EOG", "EMG", "misc"],
                     ["microvolts", "mV", "V", "nV", "a.u."], n_channels=5, what="s")
    assert m.names == ("EEG C4", "EEG O2", "EOG E1", "EMG chin", "x")
    np.testing.assert_array_equal(m.scale, [1, 1e3, 1e6, 1e-3, 1])  # non-potentials kept as they are
    x = np.ones((5, 3))
    np.testing.assert_array_equal(m.apply(x)[:, 0], [1, 1e3, 1e6, 1e-3, 1])
    # no unit declared: µV (the LSL convention); no labels: ch1 …, typed by the stream's type
    assert map_channels([], [], [], n_channels=2, what="s").names == ("EEG ch1", "EEG ch2")


@pytest.mark.parametrize(("kw", "says"), [
    ({"labels": ["C3", "C4"], "types": [], "units": ["microvolts", "furlongs"]}, "unit 'furlongs'"),
    ({"labels": ["C3"], "types": [], "units": []}, "carries 2 channels but its metadata describe 1 channel labels"),
    ({"labels": ["a", "b"], "types": ["EMG", "EMG"], "units": []}, "has no EEG channel"),
    ({"labels": ["C3", "C3"], "types": [], "units": []}, "channel names repeat (EEG C3)"),
])
def test_refused_streams(kw, says):
    with pytest.raises(InvalidInputError, match=None) as e:
        map_channels(n_channels=2, what="LSL stream 'x'", **kw)
    assert says in str(e.value) and str(e.value).startswith("LSL stream 'x'")


def test_rates():
    assert check_rate(256, "s") == 256.0
    with pytest.raises(InvalidInputError, match="sampled at 50 Hz; Nexus needs at least 100 Hz"):
        check_rate(50, "s")
    with pytest.raises(InvalidInputError, match="irregular"):
        check_rate(0, "s")
