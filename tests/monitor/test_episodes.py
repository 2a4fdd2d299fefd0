"""Episode hysteresis against a plain NumPy statement of the rule (the compiled update is the code under test)."""

import numpy as np
import pytest

from nexus.monitor.episodes import Hysteresis


class _Reference:
    """The rule written out with NumPy: open after k_on bad windows in a row, close after k_off good ones."""

    def __init__(self, shape, k_on, k_off):
        self.k_on, self.k_off = k_on, k_off
        self.open = np.zeros(shape, bool)
        self.rb = np.zeros(shape, int)
        self.rg = np.zeros(shape, int)
        self.bt0 = np.zeros(shape)
        self.gt0 = np.zeros(shape)
        self.onset = np.zeros(shape)

    def update(self, rows, bad, t0, hint):
        o = self.open[rows]
        rb = np.where(bad, self.rb[rows] + 1, 0)
        rg = np.where(bad, 0, self.rg[rows] + 1)
        start = t0[:, None] if hint is None else np.minimum(t0[:, None], hint)
        bt0 = np.where(bad & (rb == 1), start, self.bt0[rows])
        gt0 = np.where(~bad & (rg == 1), t0[:, None], self.gt0[rows])
        opened = ~o & (rb >= self.k_on)
        closed = o & (rg >= self.k_off)
        onset = np.where(opened, bt0, self.onset[rows])
        self.open[rows] = (o | opened) & ~closed
        self.rb[rows], self.rg[rows], self.bt0[rows], self.gt0[rows], self.onset[rows] = rb, rg, bt0, gt0, onset
        return opened, closed, onset, gt0


@pytest.mark.parametrize(("k_on", "k_off", "with_hint"), [(1, 1, False), (3, 2, True), (2, 5, False)])
def test_updates_equal_the_rule_over_random_verdicts(k_on, k_off, with_hint):
    rng = np.random.default_rng(k_on * 10 + k_off)
    h, ref = Hysteresis(6, 3, k_on, k_off), _Reference((6, 3), k_on, k_off)
    for step in range(200):
        rows = np.sort(rng.choice(6, size=rng.integers(1, 7), replace=False))
        bad = rng.random((rows.size, 3)) < 0.4
        t0 = np.full(rows.size, float(step))
        hint = t0[:, None] - rng.integers(0, 3, (rows.size, 3)) if with_hint else None
        got, want = h.update(rows, bad, t0, hint), ref.update(rows, bad, t0, hint)
        assert got[0].dtype == bool and got[1].dtype == bool  # masks the caller indexes with
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(h.open, ref.open)


def test_an_episode_opens_at_its_first_bad_window_and_ends_where_the_good_run_began():
    h = Hysteresis(2, 1, 3, 2)
    row = np.array([1])
    seen = []
    for t, bad in enumerate([0, 1, 1, 1, 1, 0, 1, 0, 0, 0]):
        opened, closed, onset, end = h.update(row, np.array([[bool(bad)]]), np.array([float(t)]))
        seen.append((bool(opened[0, 0]), bool(closed[0, 0]), float(onset[0, 0]), float(end[0, 0])))
    assert [k for k, s in enumerate(seen) if s[0]] == [3] and seen[3][2] == 1.0  # opened on the 3rd bad window
    assert [k for k, s in enumerate(seen) if s[1]] == [8] and seen[8][3] == 7.0  # closed on the 2nd good one
    assert not h.open[0].any()  # the other slot never saw anything


def test_reset_forgets_the_slots_it_names_and_only_them():
    h, fresh = Hysteresis(3, 2, 2, 2), Hysteresis(3, 2, 2, 2)
    rows, bad = np.array([0, 1]), np.array([[True, False], [True, True]])
    for t in range(3):  # both slots open an episode on their bad columns
        h.update(rows, bad, np.full(2, float(t)))
    assert h.open[[0, 1]].tolist() == [[True, False], [True, True]]
    h.update(np.array([1]), np.array([[False, False]]), np.array([3.0]))  # slot 1 starts a good run
    h.reset(np.array([1]))
    for a, b in ((h.open, fresh.open), (h.run_bad, fresh.run_bad), (h.run_good, fresh.run_good),
                 (h.bad_t0, fresh.bad_t0), (h.good_t0, fresh.good_t0), (h.onset, fresh.onset)):
        np.testing.assert_array_equal(a[1], b[1])
    assert h.open[0].tolist() == [True, False] and h.onset[0, 0] == 0.0  # slot 0 keeps its episode
    # after the reset, slot 1 behaves as a new one: one bad window opens nothing, one good window closes nothing
    opened, closed, _, _ = h.update(np.array([1]), np.array([[True, False]]), np.array([10.0]))
    assert not opened.any() and not closed.any()
    opened, _, onset, _ = h.update(np.array([1]), np.array([[True, False]]), np.array([11.0]))
    assert opened.tolist() == [[True, False]] and onset[0, 0] == 10.0
