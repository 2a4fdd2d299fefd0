from nexus.facility.workers_auto import BEDS_PER_WORKER, auto_workers, usable_cores


def test_one_worker_per_core_but_not_for_a_few_beds():
    assert auto_workers(200, cores=2) == 2
    assert auto_workers(200, cores=8) == 200 // BEDS_PER_WORKER  # 4: no worker with fewer than 50 beds
    assert auto_workers(BEDS_PER_WORKER + 1, cores=8) == 2
    assert auto_workers(BEDS_PER_WORKER, cores=8) == 1
    assert auto_workers(3, cores=16) == 1
    assert auto_workers(1000, cores=1) == 1


def test_usable_cores_is_at_least_one():
    assert usable_cores() >= 1
