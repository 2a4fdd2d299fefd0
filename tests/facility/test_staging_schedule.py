"""Background live staging: a fast-forward lane collects results on a fixed schedule, a real-time lane when ready."""

import threading

import numpy as np
import pytest

from nexus.facility.analyzers import LiveStaging, live_staging
from nexus.facility.pipeline import Lane
from nexus.facility.step import StepContext

FS = 128.0
RNG = np.random.default_rng(3)


def _stager(deterministic: bool) -> tuple[Lane, LiveStaging]:
    lane = Lane(("EEG C4-M1", "EOG E1-M2", "EMG Chin"), FS, 2, analyzers=[live_staging], deterministic=deterministic)
    lane.active[:] = True
    stager = lane.analyzers[0]
    assert isinstance(stager, LiveStaging)
    return lane, stager


def _step(lane: Lane, stager: LiveStaging) -> int:
    """One 30-s step; the number of (session, epoch) stages it reported."""
    block = RNG.normal(0.0, 20.0, (2, 3, round(30 * FS)))
    ctx = StepContext(block, lane.active.copy(), FS, lane.channels, 0, lane.deterministic, True,
                      lane.probs.copy(), lane.stage.copy(), np.zeros(2, bool), np.zeros(2, bool))
    res = stager.step(ctx)
    return 0 if res.stages is None else len(res.stages)


def _finish(lane: Lane, stager: LiveStaging) -> int:
    res = stager.finish()
    return 0 if res.stages is None else len(res.stages)


def test_fast_forward_takes_exactly_the_previous_steps_result():
    lane, stager = _stager(deterministic=True)
    reported = []
    for _ in range(4):
        reported.append(_step(lane, stager))
        stager._jobs[-1][0].result()  # the worker finishes early: this step's result must still wait a step
    assert reported == [0, 2, 2, 2]
    assert _finish(lane, stager) == 2


@pytest.mark.parametrize(("deterministic", "second_step"), [(True, 2), (False, 0)])
def test_a_late_worker_is_waited_for_only_in_fast_forward(deterministic, second_step):
    lane, stager = _stager(deterministic)
    gate = threading.Event()
    stager._pool.submit(gate.wait)  # the worker is busy: the first step's job queues behind this
    assert _step(lane, stager) == 0
    timer = threading.Timer(0.3, gate.set)
    timer.start()
    try:
        # fast-forward: blocks until the worker catches up, then reports the first epoch;
        # real time: never stalls a tick, the result comes later
        assert _step(lane, stager) == second_step
    finally:
        gate.set()
        timer.join()
    assert _finish(lane, stager) == 2 * 2 - second_step  # nothing is lost at the end


def _short_step(lane: Lane, stager: LiveStaging, seconds: float) -> None:
    block = RNG.normal(0.0, 20.0, (2, 3, round(seconds * FS)))
    ctx = StepContext(block, lane.active.copy(), FS, lane.channels, 0, lane.deterministic, True,
                      lane.probs.copy(), lane.stage.copy(), np.zeros(2, bool), np.zeros(2, bool))
    stager.step(ctx)


def test_short_ticks_are_gathered_into_whole_stager_blocks_before_the_hand_over():
    lane, stager = _stager(deterministic=False)
    gate = threading.Event()
    stager._pool.submit(gate.wait)  # the worker is busy: nothing handed over completes before we look
    for _ in range(49):  # 4.9 s in 0.1-s ticks: not a whole 5-s block yet
        _short_step(lane, stager, 0.1)
    assert len(stager._jobs) == 0 and stager._buf_n == 49 * round(0.1 * FS) < stager.min_submit
    _short_step(lane, stager, 0.1)
    assert len(stager._jobs) == 1 and stager._buf_n == 0
    _short_step(lane, stager, 0.1)
    stager.reset(np.array([1]))  # the gathered tick goes to the worker before the reset, in order
    assert len(stager._jobs) == 3 and stager._buf_n == 0
    gate.set()
    for job, _ in list(stager._jobs):
        job.result()
    assert stager.stager.n_blocks == 1  # 5.1 s pushed: one whole block processed
    stager.finish()


def test_a_fresh_slot_is_staged_at_once_and_a_reused_one_starts_afresh():
    lane, stager = _stager(deterministic=True)
    stager.reset(np.array([0, 1]))  # a new lane's beds: nothing to forget, so no 30-s artefact hold
    assert len(stager._jobs) == 0
    for _ in range(2):
        _short_step(lane, stager, 5.0)
    stager.finish()
    assert stager.stager._last is not None and set(stager.stager._last.stage.tolist()) <= {0, 1, 2, 3, 4}
    lane2, stager2 = _stager(deterministic=False)
    gate = threading.Event()
    stager2._pool.submit(gate.wait)  # the worker is busy: nothing handed over completes before we look
    _short_step(lane2, stager2, 5.0)
    stager2.reset(np.array([1]))  # slot 1 carried a sleeper: the stager forgets it
    assert len(stager2._jobs) == 2
    gate.set()
    stager2.finish()


def test_gathered_blocks_are_used_again_only_after_the_worker_is_done_with_them():
    """The blocks handed over are filled again later: the stager must see exactly what a foreground stager sees."""
    lane, stager = _stager(deterministic=False)
    gate = threading.Event()
    stager._pool.submit(gate.wait)  # the worker is busy: every hand-over queues behind this
    ref_lane, ref = _stager(deterministic=True)
    ref._pool.shutdown(wait=True)
    ref._pool = None  # the foreground path: each tick pushed as it comes
    rng = np.random.default_rng(11)
    for _ in range(150):  # 15 s in 0.1-s ticks: three hand-overs, the blocks go round
        block = rng.normal(0.0, 20.0, (2, 3, round(0.1 * FS)))
        for ln, st in ((lane, stager), (ref_lane, ref)):
            ctx = StepContext(block, ln.active.copy(), FS, ln.channels, 0, ln.deterministic, True,
                              ln.probs.copy(), ln.stage.copy(), np.zeros(2, bool), np.zeros(2, bool))
            st.step(ctx)
    assert len(stager._jobs) == 3  # three blocks held by the queued jobs: none may be filled again yet
    gate.set()
    stager.finish()
    assert stager.stager.n_blocks == ref.stager.n_blocks == 3
    np.testing.assert_array_equal(stager.stager._last.probabilities, ref.stager._last.probabilities)


def test_gathering_fills_the_blocks_made_at_lane_build_and_a_longer_tick_keeps_what_was_gathered():
    """Two blocks of one hand-over plus a second of slack are made (and written) when the lane is built, and the
    ticks fill them in place; a tick longer than the slack grows the block without losing the samples before it."""
    lane, stager = _stager(deterministic=False)
    size = stager.min_submit + round(LiveStaging.GATHER_SLACK_S * FS)
    made = list(stager._spare)  # (held, so that a new array cannot take the address of a freed one)
    assert [b.shape for b in made] == [(2, 3, size)] * 2 and not any(b.any() for b in made)
    gate = threading.Event()
    stager._pool.submit(gate.wait)  # the worker is busy: hand-overs queue
    rng = np.random.default_rng(5)
    sent = []
    for k, seconds in enumerate([0.1] * 40 + [2.0]):  # 4 s of ticks, then 2 s in one: beyond the slack
        block = rng.normal(0.0, 20.0, (2, 3, round(seconds * FS)))
        sent.append(block[:, stager.rows])
        ctx = StepContext(block, lane.active.copy(), FS, lane.channels, 0, lane.deterministic, True,
                          lane.probs.copy(), lane.stage.copy(), np.zeros(2, bool), np.zeros(2, bool))
        stager.step(ctx)
        if k == 39:  # still the first block made at build, filled in place
            assert any(stager._buf is b for b in made) and stager._buf_n == 40 * 13
    assert len(stager._jobs) == 1 and stager._buf is None  # 776 samples handed over in a grown block
    gathered = stager._jobs[0][1]
    assert gathered.shape[-1] >= 776 and not any(gathered is b for b in made)
    np.testing.assert_array_equal(gathered[..., :776], np.concatenate(sent, axis=-1))
    gate.set()
    stager.finish()


def test_a_real_time_step_takes_the_results_the_worker_has_finished():
    lane, stager = _stager(deterministic=False)
    assert _step(lane, stager) == 0  # handed over: not done yet when the step returns
    stager._jobs[-1][0].result()
    block = RNG.normal(0.0, 20.0, (2, 3, round(0.1 * FS)))
    ctx = StepContext(block, lane.active.copy(), FS, lane.channels, 0, lane.deterministic, True,
                      lane.probs.copy(), lane.stage.copy(), np.zeros(2, bool), np.zeros(2, bool))
    res = stager.step(ctx)  # a short tick: nothing handed over, the finished result is taken
    assert res.stages is not None and len(res.stages) == 2 and res.probs is not None and not stager._jobs
    stager.finish()
