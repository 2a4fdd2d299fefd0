"""Property test: any JSON payload read back from the database hashes as it was written (SQLite, PostgreSQL)."""

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from nexus.store.audit import append_many, verify

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])  # no slow 'explain' tracing
@given(payloads=st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), min_size=1, max_size=4),
       actor=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20))
def test_any_payload_verifies_after_a_round_trip(store, payloads, actor):
    with store.session() as s:
        append_many(s, [{"actor": actor, "action": "prop.test", "subject": "s", "payload": p} for p in payloads])
    rep = verify(store, "k" * 40)
    assert rep.ok, rep.problem
