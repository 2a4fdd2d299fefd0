import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexus.core.errors import StateError
from nexus.core.lifecycle import FINAL_STATES, TRANSITIONS, SessionState, check_transition


def test_happy_path():
    state = SessionState.PREPARED
    for nxt in ("calibrating", "running", "extracting", "ended"):
        state = check_transition(state, nxt)
    assert state is SessionState.ENDED


def test_running_must_leave_through_extraction():
    with pytest.raises(StateError, match="Allowed from 'running': extracting"):
        check_transition("running", "ended")


@given(st.lists(st.sampled_from(list(SessionState)), max_size=30))
def test_any_walk_respects_the_table_and_never_leaves_a_final_state(targets):
    state = SessionState.PREPARED
    for t in targets:
        if t in TRANSITIONS[state]:
            state = check_transition(state, t)
        else:
            with pytest.raises(StateError):
                check_transition(state, t)
    # every non-final state has a way out, so no session can be stranded ("never lost")
    assert state in FINAL_STATES or TRANSITIONS[state]
