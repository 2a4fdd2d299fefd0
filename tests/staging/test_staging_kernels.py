import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=4, max_size=600),
    st.booleans(),
)
def test_compiled_quartiles_equal_numpy_percentiles(values, coarse):
    pytest.importorskip("numba")
    from nexus.staging._kernels import _quartiles

    x = np.asarray(values)
    if coarse:
        x = np.round(x / 2e5)  # few distinct values: long runs of ties
    out = np.empty(2)
    _quartiles()(x.copy(), x.size, out)
    np.testing.assert_allclose(out, np.percentile(x, [25, 75]), rtol=1e-12, atol=1e-9)
