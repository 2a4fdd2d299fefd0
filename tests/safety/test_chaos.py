"""The fault-injection suite's faults that no other test covers, each on a real floor against the same night without it.

Already tested elsewhere (not repeated here): kill -9 and SIGTERM of ``nexus simulate``
(``test_fault_injection``), kill -9 of the service (``test_service_safety``), an exception in one
bed's controller and a failing sink (``tests/facility/test_closed_loop``), a stalled loop and a hung
sink (``test_watchdog``). Durations are short; ``bench/chaos.py`` runs the full ones and prints times.
"""

from __future__ import annotations

import pytest

from nexus.facility import chaos

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_a_clock_jump_is_caught_up_with_every_lease_renewed_and_nothing_changed(tmp_path):
    r = chaos.clock_jump(beds=3, seconds=80.0, jump_s=30.0, root=tmp_path)
    assert r.ok, r.observed
    assert r.others_affected == 0 and r.data_lost_s == 0.0


def test_half_the_sources_unplugged_go_silent_and_lose_only_their_unplugged_time(tmp_path):
    r = chaos.half_sources_disconnect(beds=4, seconds=100.0, down_s=15.0, root=tmp_path)
    assert r.ok, r.observed
    assert r.extra["safe_night_s_max"] <= 2.0  # silent within a tick or two of night
    assert 0 < r.data_lost_s <= r.extra["unplugged_s_total"] + 2 * 6.0


def test_the_database_down_leaves_the_beds_running_and_orders_work_after(tmp_path):
    r = chaos.database_down(beds=3, down_s=2.0, root=tmp_path)
    assert r.ok, r.observed
    assert r.extra["failed_polls"] > 0 and r.extra["night_s_during_outage"] > 0 and r.data_lost_s == 0


def test_a_full_disk_under_the_journal_stops_the_loop_with_one_line_and_silences_every_bed(tmp_path):
    r = chaos.disk_full(beds=3, root=tmp_path)
    assert r.ok, r.observed
    assert "disk is full" in r.observed


def test_a_malformed_program_hot_loaded_is_refused_and_the_bed_hears_the_same(tmp_path):
    r = chaos.malformed_program(beds=3, seconds=90.0, root=tmp_path)
    assert r.ok, r.observed
    assert r.others_affected == 0


def test_a_killed_simulate_worker_stops_the_night_with_one_line_and_no_orphan(tmp_path):
    r = chaos.worker_killed(beds=2, root=tmp_path)
    assert r.ok, r.observed
    assert "died (exit code -9)" in r.observed and "workers left 0" in r.observed
