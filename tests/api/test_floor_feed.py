"""The floor feed: a snapshot then live updates over /ws/floor; slow consoles are dropped, never waited for."""

import json

import pytest
from starlette.websockets import WebSocketDisconnect

BEDS = 4


def _until(ws, kind, n=500):
    for _ in range(n):
        msg = ws.receive_json()
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind} message")


def test_floor_feed_sends_a_snapshot_then_stages_and_alarms(facility):
    with facility.client.websocket_connect(f"/ws/floor?token={facility.tokens['technician']}") as ws:
        snap = ws.receive_json()
        assert snap["type"] == "snapshot"
        assert len(snap["beds"]) == BEDS and all(b["epochs"] == 3 for b in snap["beds"])
        assert [a["kind"] for a in snap["alarms"]] == ["bad_samples"]
        facility.service.advance(30.0)  # one more epoch for every bed
        stages = []
        while len(stages) < BEDS:
            msg = _until(ws, "stage")
            stages.append(msg)
        assert {m["epoch"] for m in stages} == {3}
        assert {m["session"] for m in stages} == {b["session"] for b in snap["beds"]}
        gid = snap["alarms"][0]["id"]
        facility.post(f"/api/glitches/{gid}/acknowledge")
        alarm = _until(ws, "alarm")
        assert alarm["alarm"]["id"] == gid and alarm["alarm"]["acknowledged"] is True


@pytest.mark.parametrize("role", [None, "client"], ids=["no-token", "client"])
def test_floor_feed_refuses_without_staff_token(facility, role):
    url = "/ws/floor" if role is None else f"/ws/floor?token={facility.tokens[role]}"
    with pytest.raises(WebSocketDisconnect) as exc, facility.client.websocket_connect(url) as ws:
        ws.receive_json()
    assert exc.value.code == 4003


def test_a_slow_console_is_dropped_and_the_loop_goes_on(facility):
    svc = facility.service
    slow = svc.subscribe()
    fast = svc.subscribe()
    svc.queue_size = 1  # new subscribers are tiny; existing ones keep their queue
    tiny = svc.subscribe()
    svc.advance(60.0)  # several messages: more than one
    assert tiny.dropped
    assert not slow.dropped and not fast.dropped
    assert svc.status()["consoles"] == 2
    assert all(b["epochs"] == 5 for b in svc.beds())  # the facility did not wait
    texts = []
    while (m := fast.get()) is not None:
        texts.append(json.loads(m))
    assert sum(m["type"] == "stage" for m in texts) == 2 * BEDS
    # bed updates are batched: at most one per second of night at 1x (240 ticks of 0.25 s here), and every
    # bed whose epoch closed is in one
    batches = [m for m in texts if m["type"] == "beds"]
    assert 1 <= len(batches) <= 61
    assert len({b["session"] for m in batches for b in m["beds"]}) == BEDS
