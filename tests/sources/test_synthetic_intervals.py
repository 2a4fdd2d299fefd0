import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nexus.sources.synthetic.intervals import IntervalTable, concat_ranges

pairs = st.lists(st.tuples(st.integers(-50, 50), st.integers(0, 20)), max_size=12)


@given(pairs)
def test_concat_ranges_equals_a_python_loop(spec):
    lo = np.array([a for a, _ in spec], dtype=np.int64)
    hi = np.array([a + n for a, n in spec], dtype=np.int64)
    expected = [i for a, n in spec for i in range(a, a + n)]
    assert concat_ranges(lo, hi).tolist() == expected


@given(
    st.lists(st.tuples(st.integers(0, 2), st.floats(0, 1000), st.floats(0.5, 30)), max_size=10),
    st.lists(st.floats(0, 1100), min_size=1, max_size=8),
)
def test_interval_levels_match_brute_force(rows, times):
    # keep only non-overlapping intervals per session, as the fleet does
    kept: list[tuple[int, float, float]] = []
    for s, o, d in rows:
        if all(s != s2 or o + d <= o2 or o2 + d2 <= o for s2, o2, d2 in kept):
            kept.append((s, o, d))
    table = IntervalTable(
        np.array([k[0] for k in kept], dtype=np.int64),
        np.array([k[1] for k in kept]),
        np.array([k[2] for k in kept]),
        np.arange(len(kept), dtype=float) + 1,
        span=10_000.0,
    )
    t = np.array(times)
    inside, value = table.level(t, 3, ramp=1e-9)
    for s in range(3):
        for j, x in enumerate(t):
            hit = [i for i, (s2, o, d) in enumerate(kept) if s2 == s and o <= x < o + d]
            assert (inside[s, j] > 0) == bool(hit) or (hit and x == kept[hit[0]][1])
            if inside[s, j] > 0:
                assert value[s, j] == hit[0] + 1
