"""The service's epoch table gives readers what the per-bed dicts of Python lists gave, after many epochs."""

import numpy as np

from nexus.facility.epochlog import UNSCORED, EpochTable


class _Dicts:
    """The service's former store: per bed dicts epoch -> code, confidence, rounded hypnodensity (the reference)."""

    def __init__(self, beds: int) -> None:
        self.epochs: list[dict[int, int]] = [{} for _ in range(beds)]
        self.conf: list[dict[int, float]] = [{} for _ in range(beds)]
        self.dens: list[dict[int, list[float]]] = [{} for _ in range(beds)]

    def put(self, bed: int, e: int, code: int, probs: list[float] | None) -> None:
        self.epochs[bed][e] = code
        if probs:
            self.conf[bed][e] = round(max(probs), 3)
            self.dens[bed][e] = np.round(np.array(probs), 3).tolist()

    def stages(self, bed: int) -> list[int]:
        ep = self.epochs[bed]
        if not ep:
            return []
        out = [UNSCORED] * (max(ep) + 1)
        for e, st in ep.items():
            if e >= 0:
                out[e] = st
        return out

    def confidence(self, bed: int) -> list[float | None]:
        n = max(self.epochs[bed]) + 1 if self.epochs[bed] else 0
        return [self.conf[bed].get(e) for e in range(n)]

    def density(self, bed: int) -> list[list[float] | None]:
        return [self.dens[bed].get(e) for e in range(len(self.stages(bed)))]


def _fill(table: EpochTable, ref: _Dicts, batches: list[list[tuple[int, int, int, list[float] | None]]]) -> None:
    for batch in batches:  # as FacilityService._on_records writes one step's stage records
        for bed, e, code, probs in batch:
            ref.put(bed, e, code, probs)
        table.put_stages([b for b, *_ in batch], [e for _, e, *_ in batch], [c for _, _, c, _ in batch])
        dense = [(b, e, round(max(p), 3), p) for b, e, _, p in batch if p]
        if dense:
            table.put_probs([d[0] for d in dense], [d[1] for d in dense], [d[2] for d in dense],
                            np.round(np.array([d[3] for d in dense]), 3))


def _assert_same(table: EpochTable, ref: _Dicts, beds: int) -> None:
    for b in range(beds):
        assert table.stages(b) == ref.stages(b), b
        assert table.confidence(b) == ref.confidence(b), b
        assert table.density(b) == ref.density(b), b
        assert table.count(b) == len(ref.epochs[b]), b


def test_a_long_night_reads_back_as_the_dicts_did():
    """2,000 epochs of 7 beds (past the first capacity twice), gaps, epochs without probabilities, late beds."""
    rng = np.random.default_rng(3)
    beds = 7
    batches = []
    for e in range(2000):
        batch = []
        for b in range(beds):
            if b == 6 and e < 500:  # a bed that joined late: nothing for its first 500 epochs
                continue
            if rng.random() < 0.05:  # an epoch that never came (a gap in the hypnogram)
                continue
            probs = None if rng.random() < 0.1 else rng.dirichlet(np.ones(5)).round(4).tolist()
            batch.append((b, e, int(rng.integers(-1, 5)), probs))
        batches.append(batch)
    table, ref = EpochTable(beds, 300), _Dicts(beds)
    _fill(table, ref, batches)
    assert table.capacity >= 2000
    _assert_same(table, ref, beds)
    assert table.stages(6)[:500] == [UNSCORED] * 500 and table.density(6)[:500] == [None] * 500


def test_rewrites_in_one_batch_and_later_keep_the_last_and_negative_epochs_are_counted_only():
    table, ref = EpochTable(3, 4), _Dicts(3)
    p1, p2 = [0.1, 0.2, 0.3, 0.35, 0.05], [0.6, 0.1, 0.1, 0.1, 0.1]
    _fill(table, ref, [
        [(0, 2, 1, p1), (0, 2, 3, p2), (1, -1, 2, p1), (2, 0, 4, None)],
        [(0, 2, 0, None), (1, 1, 2, p2), (1, -1, 2, p1), (2, 9, 1, p1)],
    ])
    _assert_same(table, ref, 3)
    assert table.stages(0) == [UNSCORED, UNSCORED, 0] and table.density(0)[2] == [0.6, 0.1, 0.1, 0.1, 0.1]
    assert table.count(1) == 2 and table.stages(1) == [UNSCORED, 2]



def test_beds_that_join_a_running_floor_get_rows_and_a_bed_with_nothing_yet_reads_empty():
    """A floor of real beds starts with no bed (``EpochTable(0, 1)``) and beds join while it runs.

    The table makes rows for a bed the first time it is written (its first epochs may be a negative one only),
    and a joined bed that has closed no epoch yet shows 0 epochs and an empty hypnogram (the floor views every bed).
    """
    rng = np.random.default_rng(5)
    table, ref = EpochTable(0, 1), _Dicts(9)
    assert table.count(0) == 0 and table.stages(0) == [] and table.confidence(0) == [] and table.density(0) == []
    batches = []
    for e in range(40):
        joined = 1 + e // 5  # one more bed every 5 epochs, up to 8; bed 8 joins but never closes an epoch
        batch = [(b, e - 5 * (b - 1) if b else e, int(rng.integers(0, 5)), rng.dirichlet(np.ones(5)).round(4).tolist())
                 for b in range(min(joined, 8))]
        if e == 3:
            batch.append((7, -1, 2, None))  # a negative epoch is the first thing bed 7 writes
        batches.append(batch)
    _fill(table, ref, batches)
    assert table.beds >= 8 and table.capacity >= 40
    _assert_same(table, ref, 9)
    assert table.count(8) == 0 and table.stages(8) == [] and table.density(8) == []
