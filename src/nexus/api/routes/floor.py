"""``/ws/floor``: the live feed of the floor for consoles (staff with ``session.read``).

The token comes as the ``token`` query parameter (browsers cannot set headers on a WebSocket). The first
message is a snapshot (every bed and the open alarms; consoles joining together share one, see
:meth:`FacilityService.join <nexus.facility.service.FacilityService.join>`); then ``beds`` (changed beds),
``stages`` (the epochs a step closed, each with its bed and hypnodensity), ``alarm`` and, every few seconds,
``status``. A console that falls behind is dropped by the facility (close code 4008) and reconnects; the
facility never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect

from nexus.api.deps import principal_from_token
from nexus.facility.service import FacilityService, feed_text
from nexus.guard.policy import AccessDenied, Action, require
from nexus.store.db import Store

router = APIRouter(tags=["floor"])

#: close codes: refused (policy) and dropped for being too slow
CLOSE_REFUSED, CLOSE_TOO_SLOW = 4003, 4008
#: the shortest and longest wait for the feed, in s (it wakes the route; the status goes out every STATUS_EVERY_S)
POLL_S, WAIT_S = 0.05, 1.0
STATUS_EVERY_S = 2.0


@router.websocket("/ws/floor")
async def floor(ws: WebSocket, token: str | None = None) -> None:
    """Stream the floor: snapshot, then bed updates, stages and alarms."""
    store: Store = ws.app.state.store
    service: FacilityService = ws.app.state.service
    try:
        principal = await asyncio.to_thread(principal_from_token, store, token)
        require(principal, Action.SESSION_READ)
    except (HTTPException, AccessDenied) as exc:
        await ws.close(code=CLOSE_REFUSED, reason=str(getattr(exc, "detail", exc))[:120])
        return
    await ws.accept()
    # the snapshot is built (or shared with the consoles joining with this one) on a worker thread
    sub, snapshot = await asyncio.to_thread(service.join)
    # woken by the feed when it queued a message (after each tick) instead of polling every 50 ms: eleven polling
    # consoles woke the server's thread ~220 times a second, most of them inside a tick, each a switch of the
    # interpreter away from the live loop
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()

    def wake() -> None:  # on the feed's thread
        if not ready.is_set():
            with contextlib.suppress(RuntimeError):  # the server's loop is closed (shutting down)
                loop.call_soon_threadsafe(ready.set)

    sub.notify = wake
    try:
        await ws.send_text(snapshot)
        last_status = time.monotonic()
        while not sub.dropped:
            ready.clear()  # before the queue is read: a message queued after this wakes the wait below
            sent = 0
            while sent < 200:
                msg = sub.get()
                if msg is None:
                    break
                await ws.send_text(msg)
                sent += 1
            if time.monotonic() - last_status >= STATUS_EVERY_S:
                last_status = time.monotonic()
                await ws.send_text(feed_text({"type": "status", "status": service.status()}))
            if sent < 200 and not sub.dropped:
                due = STATUS_EVERY_S - (time.monotonic() - last_status)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ready.wait(), timeout=max(POLL_S, min(due, WAIT_S)))
        await ws.close(code=CLOSE_TOO_SLOW, reason="Too slow: the feed went on without this console. Reconnect.")
    except WebSocketDisconnect:
        pass
    finally:
        service.unsubscribe(sub)
