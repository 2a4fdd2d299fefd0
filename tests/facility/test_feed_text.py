"""Feed messages are written by orjson (``feed_text``): the values ``json.dumps`` gave, for every type they hold.

A console parses them with ``JSON.parse``; what orjson cannot write goes the standard library's way, and a feed
subscriber is told (``Subscriber.notify``) of every message queued for it and of being dropped.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nexus.facility.service import FacilityService, feed_text


@pytest.mark.parametrize("value", [
    np.float64(0.1234), np.float32(0.5), np.int64(7), np.int32(-3), np.bool_(True), np.array([1.5, 2.0]),
    {3: "bed-3", "k": (1, 2)}, "lit de Zoé ✓", [None, True, 1e-5, 1e16, 123456789.125], 2**70,
], ids=["f64", "f32", "i64", "i32", "bool", "array", "int-key", "non-ascii", "plain", "big-int"])
def test_feed_text_gives_the_values_json_dumps_gave(value):
    msg = {"type": "beds", "t": 12.25, "v": value}
    plain = np.asarray(value).tolist() if isinstance(value, np.generic | np.ndarray) else value  # json.dumps's types
    expected = json.loads(json.dumps({**msg, "v": plain}, separators=(",", ":")))
    got = feed_text(msg)
    assert isinstance(got, str)
    assert json.loads(got) == expected


def test_a_float_that_is_not_finite_is_written_as_null():
    text = feed_text({"type": "stages", "probs": [0.5, math.nan, math.inf]})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == {
        "type": "stages", "probs": [0.5, None, None]}


def test_a_subscriber_is_told_of_each_message_and_of_being_dropped(store, tmp_path):
    svc = FacilityService(store, clients=2, data_dir=tmp_path, events=False, faults=[(0, 5.0)], run_id="n")
    svc.start()
    try:
        calls: dict[str, list[tuple[int, bool]]] = {"big": [], "tiny": []}
        big = svc.subscribe()
        big.notify = lambda: calls["big"].append((big.queue.qsize(), big.dropped))
        svc.queue_size = 1
        tiny = svc.subscribe()
        tiny.notify = lambda: calls["tiny"].append((tiny.queue.qsize(), tiny.dropped))
        svc.advance(35.0)  # an alarm, bed updates, an epoch's stages: more than one message
        texts = []
        while (m := big.get()) is not None:
            texts.append(m)
        assert len(texts) >= 3
        # told after each message was queued: the queue held it already
        assert [n for n, _ in calls["big"]] == list(range(1, len(texts) + 1))
        assert tiny.dropped and calls["tiny"][-1] == (1, True)  # the last call: it was dropped (the route closes)
    finally:
        svc.stop()
