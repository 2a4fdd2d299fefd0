import numpy as np
import pandas as pd
import pytest

from nexus.core.errors import DataFormatError, InvalidInputError, NotFoundError
from nexus.formats.events import read_events, write_events


def test_round_trip_keeps_columns_and_missing_values(tmp_path):
    df = pd.DataFrame({
        "onset": [3.5, 1.25], "duration": [0.8, 0.0], "description": ["spindle", "r_peak"],
        "channel": ["EEG C4-M1", "ECG"], "amp_uv": [42.0, np.nan], "hr_bpm": [np.nan, 61.5],
    })
    p = write_events(tmp_path / "ev.tsv", df)
    text = p.read_text()
    assert text.splitlines()[0] == "onset\tduration\tdescription\tchannel\tamp_uv\thr_bpm"
    assert "n/a" in text
    back = read_events(p)
    assert back.onset.tolist() == [1.25, 3.5]  # sorted by onset
    assert back.channel.tolist() == ["ECG", "EEG C4-M1"]
    assert np.isnan(back.amp_uv.iloc[0]) and back.hr_bpm.iloc[0] == 61.5
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="missing column"):
        write_events(tmp_path / "x.tsv", pd.DataFrame({"onset": [1.0]}))
    with pytest.raises(NotFoundError):
        read_events(tmp_path / "nope.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("onset\tduration\nabc\tx\n")
    with pytest.raises(DataFormatError, match="not numeric"):
        read_events(bad)
    (tmp_path / "nohead.tsv").write_text("start\tlen\n1\t2\n")
    with pytest.raises(DataFormatError, match="no 'onset'"):
        read_events(tmp_path / "nohead.tsv")


def test_empty_event_file_round_trips(tmp_path):
    p = write_events(tmp_path / "none.tsv", pd.DataFrame(columns=["onset", "duration", "description", "channel"]))
    back = read_events(p)
    assert back.empty and back["onset"].dtype == np.float64
