"""What the multi-host floor asks of its database: heartbeats, claims and order polls per second.

Opens ``--beds`` beds, registers ``--workers`` workers that claim them, then times, from this one
process: heartbeats (:func:`~nexus.facility.leases.heartbeat`), the extraction-order poll a
worker makes every 0.1 s, and claims (takeover of a dead worker's share). Prints JSON.

    python bench/floor_db.py --database postgresql+psycopg://user:pw@127.0.0.1/db --beds 1000 --workers 10
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta

from sqlalchemy import select, update

from nexus.core.settings import load_settings
from nexus.facility.leases import claim, db_now, heartbeat, open_floor, register_worker
from nexus.facility.simulate import plan_beds
from nexus.store import open_store, upgrade
from nexus.store.models import ExtractionOrder, FacilityRun


def _rate(fn, seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    """Run the database benchmark of the floor and print its figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", required=True)
    ap.add_argument("--beds", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=5.0, help="time per measured operation")
    args = ap.parse_args()
    st = open_store(load_settings(database_url=args.database), create=True, check=False)
    upgrade(st.engine)
    run = f"d{int(time.time()) % 10**7}"
    t0 = time.perf_counter()
    open_floor(st, plan_beds(args.beds, seed=1, hours=8, run_id=run, natural_share=1.0), hours=8, fs=100.0)
    open_s = time.perf_counter() - t0
    workers = [f"w-{run}-{k}" for k in range(args.workers)]
    for w in workers:
        register_worker(st, w, f"/tmp/{w}")
    share = -(-args.beds // args.workers)
    t0 = time.perf_counter()
    for w in workers:
        claim(st, w, f"/tmp/{w}", want=share)
    claim_s = time.perf_counter() - t0
    beats = _rate(lambda: heartbeat(st, workers[0]), args.seconds)

    def poll() -> None:  # what each worker's order desk asks every 0.1 s
        with st.session() as s:
            s.execute(select(ExtractionOrder.id).where(ExtractionOrder.facility_run_id == workers[0],
                                                      ExtractionOrder.status == "pending")).all()

    polls = _rate(poll, args.seconds)
    with st.session() as s:  # the first worker dies
        s.execute(update(FacilityRun).where(FacilityRun.id == workers[0])
                  .values(heartbeat_at=db_now(s) - timedelta(seconds=60)))
    t0 = time.perf_counter()
    taken = claim(st, workers[1], f"/tmp/{workers[1]}", want=share)
    takeover_s = time.perf_counter() - t0
    print(json.dumps({
        "database": st.engine.dialect.name, "beds": args.beds, "workers": args.workers,
        "open_floor_s": round(open_s, 2), "claims_per_s": round(args.beds / claim_s, 1),
        "heartbeats_per_s": round(beats, 1), "order_polls_per_s": round(polls, 1),
        "takeover_claim": {"beds": len(taken), "s": round(takeover_s, 3)},
        "load_average": os.getloadavg()[0],
    }, indent=2))
    st.close()


if __name__ == "__main__":
    main()
