"""The desk reader's rules, one by one: when it reads, what a step takes, the order of writes and reads.

The loop of the reader thread (``DeskReader._run``) is driven here on the test's own thread with a hand-set clock
and a wake event that records how long the loop would sleep, so that every rule of the module notes is checked
at exact instants (no sleeping, no timed assertion); the last tests run the real thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace

from nexus.facility import desk_reader
from nexus.facility.desk_reader import DeskReader


class _Wake:
    """Stands in for the reader's wake event: ``wait`` records its timeout and runs the test's next move."""

    def __init__(self, moves: list[Callable[[], None]], reader: DeskReader) -> None:
        self.moves = moves
        self.reader = reader
        self.waits: list[float] = []
        self.flag = False

    def set(self) -> None:
        self.flag = True

    def clear(self) -> None:
        self.flag = False

    def is_set(self) -> bool:
        return self.flag

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float("nan") if timeout is None else timeout)
        if self.moves:
            self.moves.pop(0)()
        else:  # the last move has had its turn of the loop
            self.reader._stop.set()
        return True


def _loop(monkeypatch, *, poll_s: float, aligned: bool, moves, read=None, on_write_error=None):
    """Run the reader's loop on this thread: ``moves`` (one per sleep) move the clock, kick, submit, ...

    Returns the reader, the log of reads and writes with their instants, the sleeps asked for, and the clock.
    """
    clock = SimpleNamespace(t=0.0)
    monkeypatch.setattr(desk_reader, "time", SimpleNamespace(monotonic=lambda: clock.t))
    log: list[tuple[str, float]] = []

    def default_read() -> int:
        log.append(("read", clock.t))
        return len(log)

    r = DeskReader("test", read or default_read, poll_s, aligned=aligned, on_write_error=on_write_error)
    wake = _Wake(list(moves(r, clock, log)), r)
    r._wake = wake  # type: ignore[assignment]
    r._run()
    return r, log, wake.waits, clock


def _at(clock, t: float) -> Callable[[], None]:
    def move() -> None:
        clock.t = t
    return move


def test_free_running_reads_every_poll_s_and_sleeps_until_the_next_read_is_due(monkeypatch):
    def moves(r, clock, log):
        return [_at(clock, 0.125), _at(clock, 0.25), _at(clock, 0.625), _at(clock, 0.75)]

    r, log, waits, _ = _loop(monkeypatch, poll_s=0.25, aligned=False, moves=moves)
    # at once at the start, not at 0.125 (woken early), at 0.25, at 0.625 (late: the next is due 0.25 after it)
    assert [t for _, t in log] == [0.0, 0.25, 0.625]
    assert r.reads == 3
    assert waits == [0.25, 0.125, 0.25, 0.25, 0.125]
    assert r.take() == 3 and r.take() is None  # only the newest result, once


def test_a_loop_already_past_its_next_read_sleeps_a_millisecond(monkeypatch):
    clock_of: dict[str, SimpleNamespace] = {}
    calls: list[float] = []

    def moves(r, clock, log):
        clock_of["c"] = clock
        return [_at(clock, 0.5)]

    def read() -> int:  # the first read takes 0.75 s: the next one is due before it ends
        calls.append(clock_of["c"].t)
        if len(calls) == 1:
            clock_of["c"].t = 0.75
        return len(calls)

    _, _, waits, _ = _loop(monkeypatch, poll_s=0.5, aligned=False, moves=moves, read=read)
    assert waits[0] == 0.001
    assert calls == [0.0, 0.5]


def test_aligned_reads_only_when_kicked_and_poll_s_after_the_last_or_2_poll_s_without_a_kick(monkeypatch):
    def moves(r, clock, log):
        def kick_at(t: float) -> Callable[[], None]:
            def move() -> None:
                clock.t = t
                r.kick()
            return move
        return [
            _at(clock, 0.5),  # 0.5: never read, not kicked: none before a poll_s
            _at(clock, 1.0),  # a poll_s without a kick: read all the same
            kick_at(1.5),  # kicked, but a poll_s has not passed: none, and the kick is not kept for later
            _at(clock, 2.5),  # due since 2.0, not kicked: none until 2 poll_s after the last read
            kick_at(2.75),  # kicked and due: read
            _at(clock, 4.5),  # no kick: none before 4.75
            _at(clock, 4.75),  # 2 poll_s after the last read: read
        ]

    _, log, waits, _ = _loop(monkeypatch, poll_s=1.0, aligned=True, moves=moves)
    assert [t for _, t in log] == [1.0, 2.75, 4.75]
    # asleep until a poll_s past the time the next read may come (a kick wakes it earlier)
    assert waits == [1.0, 0.5, 2.0, 1.5, 0.5, 2.0, 0.25, 2.0]


def test_writes_run_in_order_before_the_next_read_and_a_failed_one_is_retried_first(monkeypatch):
    errors: list[BaseException] = []
    down = {"on": True}

    def moves(r, clock, log):
        def write(name: str) -> Callable[[], None]:
            def w() -> None:
                if name == "w2" and down["on"]:
                    raise ConnectionError("database down")
                log.append((name, clock.t))
            return w

        def hand_over() -> None:
            clock.t = 0.5
            for name in ("w1", "w2", "w3"):
                r.submit(write(name))

        def back_up() -> None:
            clock.t = 0.875
            down["on"] = False

        return [hand_over, _at(clock, 0.75), back_up, _at(clock, 1.25)]

    _, log, waits, _ = _loop(monkeypatch, poll_s=0.25, aligned=False, moves=moves, on_write_error=errors.append)
    assert log == [("read", 0.0), ("w1", 0.5), ("read", 0.5), ("read", 0.75), ("w2", 0.875), ("w3", 0.875),
                   ("read", 1.25)]
    assert [str(e) for e in errors] == ["database down", "database down"]
    # writes left over: retried a poll_s later (not at the next read's time); none left: until the next read
    assert waits == [0.25, 0.25, 0.25, 0.125, 0.25]


def test_a_read_that_raises_is_the_result_and_is_counted(monkeypatch):
    def moves(r, clock, log):
        return [_at(clock, 1.0)]

    boom = RuntimeError("no database")

    def read() -> int:
        raise boom

    r, _, _, _ = _loop(monkeypatch, poll_s=1.0, aligned=False, moves=moves, read=read)
    assert r.reads == 2
    assert r.take() is boom and r.take() is None


def test_run_writes_on_the_calling_thread_stops_at_a_failing_write_and_keeps_it_queued():
    done: list[str] = []
    errors: list[BaseException] = []
    fail = {"n": 1}

    def write(name: str) -> Callable[[], None]:
        def w() -> None:
            if name == "b" and fail["n"]:
                fail["n"] -= 1
                raise OSError("locked")
            done.append(name)
        return w

    r = DeskReader("w", lambda: None, 1.0, on_write_error=errors.append)
    for name in "abc":
        r.submit(write(name))
    r.run_writes()
    assert done == ["a"] and len(errors) == 1 and len(r._writes) == 2
    r.run_writes()
    assert done == ["a", "b", "c"] and len(r._writes) == 0 and len(errors) == 1
    quiet = DeskReader("q", lambda: None, 1.0)  # no error callback: the failure is kept quietly
    quiet.submit(write("b"))
    fail["n"] = 1
    quiet.run_writes()
    assert len(quiet._writes) == 1


def test_the_thread_reads_at_once_hands_over_the_newest_result_and_close_runs_the_writes_left():
    release = threading.Event()
    reads: list[int] = []

    def read() -> int:
        reads.append(threading.get_ident())
        if len(reads) == 1:
            release.wait(20)
        return len(reads)

    r = DeskReader("t-desk", read, 3600.0)  # one read at the start, the next in an hour
    assert r.take() is None and r._thread.name == "nexus-t-desk" and r._thread.daemon
    r.start()
    done: list[tuple[str, int]] = []
    r.submit(lambda: done.append(("w", threading.get_ident())))
    release.set()
    deadline = threading.Event()
    got = None
    for _ in range(2000):
        got = r.take()
        if got is not None or not r._thread.is_alive():
            break
        deadline.wait(0.01)
    assert got == 1 and reads and reads[0] != threading.get_ident()
    for _ in range(2000):  # the write handed over runs on the reader's thread, before its next read
        if done:
            break
        deadline.wait(0.01)
    assert done == [("w", reads[0])]
    r._stop.set()  # stop the loop; a write handed over now is left for close
    r._wake.set()
    r._thread.join(20)
    r.submit(lambda: done.append(("late", threading.get_ident())))
    r.close()
    assert not r._thread.is_alive() and done[-1] == ("late", threading.get_ident()) and r.reads == 1


def test_close_stops_a_running_thread_and_runs_the_writes_still_queued_on_the_caller():
    r = DeskReader("c-desk", lambda: "rows", 3600.0, aligned=True)
    r.start()
    r.close()
    assert not r._thread.is_alive()
    order: list[str] = []
    never = DeskReader("n-desk", lambda: None, 1.0)  # never started: close still runs its writes
    never.submit(lambda: order.append("x"))
    never.submit(lambda: order.append("y"))
    never.close()
    assert order == ["x", "y"]


def test_close_gives_a_stuck_read_10_s_then_warns_and_still_runs_the_writes(caplog):
    """A read stuck in the database must not hold up a shutdown: close waits 10 s for the thread, then goes on."""

    class _Stuck:
        name = "nexus-stuck"
        joins: list[float | None] = []

        def is_alive(self) -> bool:
            return True

        def join(self, timeout: float | None = None) -> None:
            self.joins.append(timeout)

    r = DeskReader("stuck", lambda: None, 1.0)
    stuck = _Stuck()
    r._thread = stuck  # type: ignore[assignment]
    done: list[str] = []
    r.submit(lambda: done.append("w"))
    with caplog.at_level("WARNING"):
        r.close()
    assert stuck.joins == [10]
    assert r._stop.is_set() and done == ["w"]
    assert "The nexus-stuck thread did not stop within 10 s." in caplog.messages


def test_a_take_that_loses_the_result_to_another_taker_gets_none():
    """Two takers: the one that finds the result gone once it holds the lock gets None (no error, no stale result)."""
    r = DeskReader("two", lambda: None, 1.0)
    r._result[:] = ["rows"]
    taken: list[object] = []
    real = r._lock

    class _OtherTakerFirst:
        """The lock, taken by another taker just before this one: it takes the result while it holds the lock."""

        def __enter__(self) -> None:
            with real:
                taken.append(r._result.pop())

        def __exit__(self, *exc: object) -> None:
            return None

    r._lock = _OtherTakerFirst()  # type: ignore[assignment]
    assert r.take() is None and taken == ["rows"]
