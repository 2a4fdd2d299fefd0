from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexus.core.errors import DataFormatError, InvalidInputError, NotFoundError
from nexus.formats.hypnogram import FORMATS, Hypnogram, read_hypnogram, write_hypnogram

DATA = Path(__file__).resolve().parents[1] / "data"
CSV_DIR = DATA / "sleep-edf" / "hypnograms_1Hz_csv"

stage_arrays = st.lists(st.sampled_from([-2, -1, 0, 1, 2, 3, 4]), min_size=1, max_size=200).map(
    lambda x: np.array(x, dtype=np.int8)
)
SUFFIX = {"edf": ".edf", "nsrr-xml": ".xml", "tsv": ".tsv", "sleep-edf-csv": ".csv"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stages=stage_arrays, fmt=st.sampled_from(["tsv", "yasa-int", "yasa-str"]))
def test_lossless_formats_round_trip(tmp_path, stages, fmt):
    path = write_hypnogram(tmp_path / f"h{SUFFIX.get(fmt, '.txt')}", stages, fmt=fmt)
    back = read_hypnogram(path)  # format guessed from name and content
    np.testing.assert_array_equal(back.stages, stages)
    assert back.stages.dtype == np.int8
    assert back.epoch_s == 30.0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stages=stage_arrays, fmt=st.sampled_from(["edf", "nsrr-xml", "sleep-edf-csv"]))
def test_rk_formats_round_trip_up_to_artefact(tmp_path, stages, fmt):
    # EDF+, NSRR XML and the Sleep-EDF CSV have no separate "artefact" in their stage vocabulary
    path = write_hypnogram(tmp_path / f"h{SUFFIX[fmt]}", stages, fmt=fmt)
    back = read_hypnogram(path, fmt)
    expected = stages.copy()
    if fmt != "sleep-edf-csv":
        expected[expected == -1] = -2
    np.testing.assert_array_equal(back.stages, expected)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stages=stage_arrays,
    epoch_s=st.sampled_from([20.0, 30.0]),
    seed=st.integers(0, 2**16),
)
def test_tsv_round_trips_probabilities(tmp_path, stages, epoch_s, seed):
    p = np.random.default_rng(seed).dirichlet(np.ones(5), size=stages.size)
    path = write_hypnogram(tmp_path / "h.tsv", stages, epoch_s=epoch_s, probabilities=p)
    back = read_hypnogram(path)
    assert back.epoch_s == epoch_s
    np.testing.assert_array_equal(back.stages, stages)
    np.testing.assert_allclose(back.probabilities, p, atol=1e-4)


def test_tsv_layout(tmp_path):
    path = write_hypnogram(tmp_path / "h.tsv", ["W", "N2", "REM"], probabilities=np.full((3, 5), 0.2))
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ["onset", "duration", "stage", "p_W", "p_N1", "p_N2", "p_N3", "p_R"]
    assert lines[3].split("\t")[:3] == ["60", "30", "R"]


def test_sleep_edf_annotations_map_rk_to_aasm():
    h = read_hypnogram(DATA / "sleep-edf" / "SC4001EC-Hypnogram.edf")
    assert isinstance(h, Hypnogram)
    assert h.stages[0] == 0 and len(h) == 2880
    # 'Sleep stage 3' then 'Sleep stage 2' at 31140 s and 31170 s
    assert h.stages[31140 // 30] == 3 and h.stages[31170 // 30] == 2
    assert set(np.unique(h.stages)) <= {-2, 0, 1, 2, 3, 4}


def test_sleep_edf_csv_rk_codes(tmp_path):
    secs = np.repeat([0, 1, 2, 3, 4, 5, 6, 7, 9], 30)
    (tmp_path / "x-PSG.edf.csv").write_text("\n".join(map(str, secs)) + "\n")
    h = read_hypnogram(tmp_path / "x-PSG.edf.csv")
    np.testing.assert_array_equal(h.stages, [0, 1, 2, 3, 3, 4, -1, 0, -2])


@pytest.mark.parametrize("path", sorted(CSV_DIR.glob("*.csv"))[:3], ids=lambda p: p.name)
def test_real_sleep_edf_csvs(path):
    h = read_hypnogram(path)
    assert len(h) == len(path.read_text().split()) // 30
    assert {0, 2, 4} <= set(np.unique(h.stages))


def test_yasa_ints_with_comments_and_strings():
    ints = read_hypnogram(DATA / "yasa-samples" / "data_full_6hrs_100Hz_hypno_30s.txt")
    assert len(ints) == 720 and set(np.unique(ints.stages)) == {0, 1, 2, 3, 4}
    strs = read_hypnogram(DATA / "yasa-samples" / "sub-02_hypno_30s.txt", "yasa-str")
    assert len(strs) == 98 and strs.labels[0] == "W"


def test_nsrr_xml_reading(tmp_path):
    xml = """<?xml version="1.0"?><PSGAnnotation><ScoredEvents>
    <ScoredEvent><EventType>Arousals|Arousals</EventType><EventConcept>Arousal|Arousal</EventConcept>
      <Start>10</Start><Duration>5</Duration></ScoredEvent>
    <ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Wake|0</EventConcept>
      <Start>0</Start><Duration>60</Duration></ScoredEvent>
    <ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Stage 4 sleep|4</EventConcept>
      <Start>60</Start><Duration>30</Duration></ScoredEvent>
    <ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>REM sleep|5</EventConcept>
      <Start>90</Start><Duration>30</Duration></ScoredEvent>
    </ScoredEvents></PSGAnnotation>"""
    (tmp_path / "n.xml").write_text(xml)
    np.testing.assert_array_equal(read_hypnogram(tmp_path / "n.xml").stages, [0, 0, 3, 4])


def test_unknown_format_lists_known(tmp_path):
    (tmp_path / "h.txt").write_text("0\n")
    # a bad option, not a bad file: InvalidInputError (exit 2) as for every command's options
    with pytest.raises(InvalidInputError, match=r"Known: .*nsrr-xml") as exc:
        read_hypnogram(tmp_path / "h.txt", "yasa-ints")
    assert not isinstance(exc.value, DataFormatError)
    with pytest.raises(InvalidInputError, match="Did you mean 'tsv'") as exc:
        write_hypnogram(tmp_path / "o.tsv", [0], fmt="tvs")
    assert not isinstance(exc.value, DataFormatError)
    assert "tsv" in FORMATS


@pytest.mark.parametrize(
    ("content", "match"),
    [("W\nN7\n", "Unknown stage label 'N7'"), ("onset\tstage\n0\tW\n", "missing column"), ("# only\n", "No sleep")],
    ids=["bad-label", "bad-header", "empty"],
)
def test_bad_files(tmp_path, content, match):
    p = tmp_path / ("h.tsv" if "onset" in content else "h.txt")
    p.write_text(content)
    with pytest.raises(DataFormatError, match=match):
        read_hypnogram(p)


def test_bad_arguments(tmp_path):
    with pytest.raises(NotFoundError):
        read_hypnogram(tmp_path / "nope.tsv")
    with pytest.raises(InvalidInputError, match="Invalid stage code 7"):
        write_hypnogram(tmp_path / "h.tsv", [0, 7])
    with pytest.raises(InvalidInputError, match=r"expected shape \(2, 5\)"):
        write_hypnogram(tmp_path / "h.tsv", [0, 1], probabilities=np.ones((2, 4)))


def test_csv_round_trip_with_probabilities(tmp_path):
    from nexus.formats.hypnogram import read_hypnogram, write_hypnogram

    probs = np.tile([0.1, 0.2, 0.3, 0.2, 0.2], (4, 1))
    out = write_hypnogram(tmp_path / "h.csv", [0, 2, 3, 4], probabilities=probs, fmt="csv")
    assert out.read_text().splitlines()[0] == "onset,duration,stage,p_W,p_N1,p_N2,p_N3,p_R"
    h = read_hypnogram(out)  # sniffed as csv from the header
    assert h.stages.tolist() == [0, 2, 3, 4]
    np.testing.assert_allclose(h.probabilities, probs)


@pytest.mark.parametrize(
    ("path", "fmt", "expected"),
    [("h.tsv", None, "tsv"), ("h.CSV", None, "csv"), ("h.edf", None, "edf"), ("h.xml", None, "nsrr-xml"),
     ("h.txt", None, "yasa-int"), ("h.txt", "yasa-str", "yasa-str"), ("-", None, "tsv"), ("-", "csv", "csv"),
     ("h.hyp", "yasa-int", "yasa-int"), ("-", "edf", "edf")],
    ids=["tsv", "csv-upper", "edf", "xml", "txt", "txt-str", "stdout", "stdout-csv", "unknown-ext-with-format",
         "stdout-edf"],
)
def test_format_for_path(path, fmt, expected):
    from nexus.formats.hypnogram import format_for_path

    assert format_for_path(path, fmt) == expected


@pytest.mark.parametrize(
    ("path", "fmt", "match"),
    [("h.hyp", None, "Cannot tell the hypnogram format of 'h.hyp'"), ("h.edf", "tsv", "does not fit 'h.edf'"),
     ("h.tsv", "tvs", "Unknown hypnogram format 'tvs'. Did you mean 'tsv'")],
    ids=["unknown-ext", "mismatch", "typo"],
)
def test_format_for_path_refuses(path, fmt, match):
    from nexus.core.errors import InvalidInputError
    from nexus.formats.hypnogram import format_for_path

    with pytest.raises(InvalidInputError, match=match):
        format_for_path(path, fmt)


def test_tsv_bad_line_message_has_one_period(tmp_path):
    from nexus.core.errors import DataFormatError
    from nexus.formats.hypnogram import read_hypnogram

    (tmp_path / "h.tsv").write_text("onset\tduration\tstage\n0\t30\tX9\n")
    with pytest.raises(DataFormatError, match=r"UNS\)\. Fix or remove that line\.$"):
        read_hypnogram(tmp_path / "h.tsv")
