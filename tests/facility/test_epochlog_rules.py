"""The epoch table's rules one at a time: sizing and doubling, counts of negative epochs, duplicates, numeric storage.

Each test writes a handful of epochs whose expected read-back is worked out by hand in the test.
"""

import numpy as np

from nexus.facility.epochlog import UNSCORED, EpochTable

P = [0.1, 0.2, 0.3, 0.3, 0.1]


def test_sized_for_the_planned_night_then_doubled_and_beds_double_as_they_join():
    assert EpochTable(3, 960).capacity == 960 and EpochTable(3, 960).beds == 3
    assert EpochTable(2, 0).capacity == 1 and EpochTable(2, 1).capacity == 1  # room for one epoch at least
    t = EpochTable(2, 5)
    t.put_stages([0], [4], [2])
    assert t.capacity == 5  # epoch 4 fits
    t.put_stages([1], [5], [2])
    assert t.capacity == 10  # epoch 5 does not: doubled
    t.put_stages([1], [41], [2])
    assert t.capacity == 80  # doubled until epoch 41 fits: 10 -> 20 -> 40 -> 80
    t.put_stages([2], [0], [1])
    assert t.beds == 4  # a third bed joins: rows doubled
    t.put_stages([9], [0], [1])
    assert t.beds == 10  # a bed far past the rows: just enough rows for it
    t.put_stages([0], [-3], [1])
    assert t.capacity == 80 and t.beds == 10  # a negative epoch needs no room
    lone = EpochTable(0, 1)
    lone.put_stages([0], [-1], [3])  # a bed's first write is a negative epoch: a row, no epoch
    assert lone.beds == 1 and lone.capacity == 1 and lone.count(0) == 1 and lone.stages(0) == []
    assert t.stages(1)[5] == 2 and t.stages(1)[41] == 2 and t.stages(9) == [1] and t.stages(2) == [1]


def test_negative_epochs_are_counted_once_per_bed_and_each_bed_counts_its_own():
    t = EpochTable(3, 8)
    t.put_stages([0, 0, 0], [0, 1, 2], [1, 2, 2])  # three epochs first ...
    t.put_stages([0, 1], [-1, -1], [2, 2])  # ... then a negative one, and the same negative epoch for bed 1
    t.put_stages([0, 1, 1], [-2, -1, -5], [2, 2, 3])  # another for bed 0; bed 1's -1 again and a new -5
    assert t.count(0) == 5 and t.count(1) == 2 and t.count(2) == 0
    assert t.stages(0) == [1, 2, 2] and t.stages(1) == []


def test_a_pair_written_twice_in_a_batch_of_two_is_one_epoch_with_its_last_values():
    t = EpochTable(2, 4)
    t.put_stages([1, 1], [2, 2], [3, 4])
    assert t.count(1) == 1 and t.stages(1) == [UNSCORED, UNSCORED, 4]
    t.put_probs([1, 1], [2, 2], [0.3, 0.5], np.array([P, [0.5, 0.1, 0.1, 0.2, 0.1]]))
    assert t.confidence(1)[2] == 0.5 and t.density(1)[2] == [0.5, 0.1, 0.1, 0.2, 0.1]
    t.put_stages([0, 1], [2, 2], [1, 1])  # two beds, same epoch: two epochs
    assert t.count(0) == 1 and t.count(1) == 1 and t.stages(0)[2] == 1


def test_probabilities_of_a_negative_epoch_are_dropped_not_written_at_the_end_of_the_row():
    t = EpochTable(1, 4)
    t.put_probs([0], [-1], [0.9], np.array([[0.9, 0.025, 0.025, 0.025, 0.025]]))
    t.put_stages([0, 0], [0, 3], [2, 3])  # the last column (3) came without probabilities
    assert t.confidence(0) == [None, None, None, None] and t.density(0) == [None, None, None, None]
    t.put_probs([0, 0], [-2, 0], [0.6, 0.3], np.array([[0.6, 0.1, 0.1, 0.1, 0.1], P]))
    assert t.confidence(0) == [0.3, None, None, None] and t.density(0)[0] == P


def test_numpy_index_columns_of_any_integer_width_are_read_as_pairs():
    """Beds and epochs as int32 NumPy columns (not only Python lists): a pair's key must not overflow."""
    t = EpochTable(3, 4)
    beds = np.array([0, 1, 2, 1], dtype=np.int32)
    epochs = np.array([1, 1, -1, 1], dtype=np.int32)
    t.put_stages(beds, epochs, np.array([2, 3, 4, 1], dtype=np.int8))
    assert t.stages(0) == [UNSCORED, 2] and t.stages(1) == [UNSCORED, 1] and t.count(2) == 1
    assert t.count(1) == 1
    t.put_probs(beds[:2], epochs[:2], np.array([0.5, 0.25], dtype=np.float32), np.array([P, P], dtype=np.float32))
    assert t.confidence(0)[1] == 0.5 and t.confidence(1)[1] == 0.25


def test_the_table_holds_numbers_not_python_objects():
    """Its point: the garbage collector has nothing to scan, however many epochs (no object arrays)."""
    t = EpochTable(2, 2)
    t.put_stages([0, 1, 3], [0, 5, -1], [1, 2, 3])
    t.put_probs([0, 1], [0, 5], [0.4, 0.4], np.array([P, P]))
    arrays = {k: v for k, v in vars(t).items() if isinstance(v, np.ndarray)}
    assert len(arrays) == 7
    assert all(a.dtype.kind in "biuf" for a in arrays.values()), {k: a.dtype for k, a in arrays.items()}
