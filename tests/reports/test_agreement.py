"""Agreement figures checked against independent oracles: scikit-learn and YASA's EpochByEpochAgreement."""

import json

import numpy as np
import pytest

from nexus.cli.main import main
from nexus.core.errors import InvalidInputError
from nexus.formats.hypnogram import read_hypnogram, write_hypnogram
from nexus.reports.agreement import agreement

YASA_LABELS = {0: "WAKE", 1: "N1", 2: "N2", 3: "N3", 4: "REM"}


@pytest.fixture
def pair(data_dir):
    """A real 6-h expert hypnogram and a second 'scorer' that relabels 25% of epochs and marks some artefact."""
    ref = read_hypnogram(data_dir / "yasa-samples" / "data_full_6hrs_100Hz_hypno_30s.txt").stages.astype(int)
    rng = np.random.default_rng(7)
    obs = ref.copy()
    flip = rng.random(ref.size) < 0.25
    obs[flip] = rng.integers(0, 5, flip.sum())
    return obs, ref


def test_matches_sklearn(pair):
    from sklearn.metrics import (
        accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    obs, ref = pair
    obs = obs.copy()
    obs[[5, 50, 500]] = -1  # artefact epochs are left out on either side
    ref = ref.copy()
    ref[[7, 70]] = -2
    keep = (obs >= 0) & (ref >= 0)
    y, x = ref[keep], obs[keep]
    a = agreement(obs, ref)
    assert a.n_epochs == keep.sum() == ref.size - 5
    assert a.n_excluded == 5
    assert a.accuracy == pytest.approx(accuracy_score(y, x))
    assert a.kappa == pytest.approx(cohen_kappa_score(y, x))
    assert a.macro_f1 == pytest.approx(f1_score(y, x, average="macro"))
    assert a.weighted_f1 == pytest.approx(f1_score(y, x, average="weighted"))
    np.testing.assert_array_equal(a.confusion, confusion_matrix(y, x, labels=range(5)))
    p, r, f, s = precision_recall_fscore_support(y, x, labels=range(5), zero_division=np.nan)
    for k, lab in enumerate(("W", "N1", "N2", "N3", "R")):
        d = a.per_stage[lab]
        assert (d["precision"], d["recall"], d["f1"], d["support"]) == pytest.approx((p[k], r[k], f[k], s[k]))
    idx = np.flatnonzero(keep & (obs != ref))
    np.testing.assert_array_equal(a.disagreements[:, 0], idx)
    np.testing.assert_array_equal(a.disagreements[:, 1], obs[idx])
    np.testing.assert_array_equal(a.disagreements[:, 2], ref[idx])


def test_matches_yasa_epoch_by_epoch_agreement(pair):
    import yasa

    obs, ref = pair
    r = yasa.Hypnogram([YASA_LABELS[i] for i in ref], scorer="ref")
    o = yasa.Hypnogram([YASA_LABELS[i] for i in obs], scorer="obs")
    ebe = yasa.EpochByEpochAgreement([r], [o])
    yg = ebe.get_agreement()
    a = agreement(obs, ref)
    assert 100 * a.accuracy == pytest.approx(yg["accuracy"])
    assert a.kappa == pytest.approx(yg["kappa"])
    assert 100 * a.weighted_f1 == pytest.approx(yg["f1"])
    by = ebe.get_agreement_bystage()
    for k, lab in YASA_LABELS.items():
        mine = a.per_stage[("W", "N1", "N2", "N3", "R")[k]]
        assert 100 * mine["precision"] == pytest.approx(by.loc[lab, "precision"])
        assert 100 * mine["recall"] == pytest.approx(by.loc[lab, "recall"])
        assert 100 * mine["f1"] == pytest.approx(by.loc[lab, "fbeta"])
    np.testing.assert_array_equal(a.confusion, ebe.get_confusion_matrix().to_numpy())


def test_identical_and_lengths():
    h = np.array([0, 0, 1, 2, 2, 3, 3, 2, 4, 4, 0])
    a = agreement(h, h)
    assert a.accuracy == 1.0 and a.kappa == 1.0 and len(a.disagreements) == 0
    b = agreement(h, h[:8])
    assert b.n_epochs == 8 and b.length == 11 and b.reference_length == 8
    assert "first 8 were compared" in b.notes[0]
    with pytest.raises(InvalidInputError, match="empty"):
        agreement([], h)
    with pytest.raises(InvalidInputError, match="No epoch is scored"):
        agreement([-1, -1], [0, 1])


def test_one_stage_only_gives_undefined_kappa_not_a_crash():
    a = agreement([2, 2, 2], [2, 2, 2])
    assert a.accuracy == 1.0 and np.isnan(a.kappa)
    assert a.to_dict()["kappa"] is None


def test_compare_command_any_formats_json_and_plot(pair, tmp_path, capsys):
    obs, ref = pair
    write_hypnogram(tmp_path / "obs.tsv", obs)
    write_hypnogram(tmp_path / "ref.xml", ref, fmt="nsrr-xml")
    assert main(["compare", str(tmp_path / "obs.tsv"), str(tmp_path / "ref.xml"), "--json",
                 "-o", str(tmp_path / "cmp.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    want = agreement(obs, ref)
    assert out["kappa"] == pytest.approx(want.kappa)
    assert len(out["disagreements"]) == len(want.disagreements)
    first = out["disagreements"][0]
    assert first["onset_s"] == 30.0 * first["epoch"]
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["compare", str(tmp_path / "obs.tsv"), str(tmp_path / "ref.xml")]) == 0
    text = capsys.readouterr().out
    assert f"Cohen's kappa    {want.kappa:.3f}" in text and "epochs disagree" in text


def test_compare_command_bad_input(tmp_path, capsys):
    write_hypnogram(tmp_path / "a.tsv", [0, 1, 2])
    assert main(["compare", str(tmp_path / "a.tsv"), str(tmp_path / "missing.tsv")]) == 3
    assert main(["compare", str(tmp_path / "a.tsv"), str(tmp_path / "a.tsv"), "-o", str(tmp_path / "x.jpg")]) == 2
    assert "*.png" in capsys.readouterr().err
