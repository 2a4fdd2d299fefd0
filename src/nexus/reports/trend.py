"""A client's trend across nights: sleep statistics per night, natural versus stimulated nights side by side."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from nexus.core.checks import plural
from nexus.core.errors import NotFoundError
from nexus.reports.document import Image, Note, Report, Table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["METRICS", "build_trend_report", "client_trend"]

#: columns of the trend table shown as panels: name → (column, unit)
METRICS: dict[str, tuple[str, str]] = {
    "TST": ("TST", "min"), "SE": ("SE", "%"), "SOL": ("SOL", "min"), "WASO": ("WASO", "min"),
    "N3": ("N3", "min"), "REM": ("REM", "min"), "arousal index": ("arousal_index", "per h TST"),
    "CLAS clicks": ("clicks", "per night"), "SO power in N3": ("so_power_n3", "µV²"),
}
_SHOWN_KINDS = ("live", "offline", "expert", "truth")


def client_trend(store: Any, client: str) -> tuple[str, pd.DataFrame]:
    """One row per night of ``client`` (its id or code) that has a hypnogram, oldest first.

    Returns
    -------
    code : str
        The client's code.
    nights : DataFrame
        Columns ``session, date, mode, stimulated, epochs, TST, SE, SOL, WASO, N3, REM, arousal_index,
        clicks, so_power_n3`` (minutes, %, per hour of TST, µV²). Arousals and clicks come from the stored
        events and decisions, else from the session's summary counts; NaN when neither was stored.

    Raises
    ------
    NotFoundError
        No client with that id or code.
    """
    import pandas as pd
    from sqlalchemy import func, or_, select

    from nexus.staging.stats import sleep_statistics
    from nexus.store.models import Client, DecisionRow, Event, NightSession

    with store.session() as s:
        row = s.scalars(select(Client).where(or_(Client.id == client, Client.code == client))).first()
        if row is None:
            codes = list(s.scalars(select(Client.code).order_by(Client.created_at.desc()).limit(3)))
            hint = f" Recent clients: {', '.join(codes)}." if codes else " The database has no clients yet."
            raise NotFoundError(f"No client '{client}' (by id or code) in the database.{hint}")
        code = row.code
        sessions = list(s.scalars(select(NightSession).where(NightSession.client_id == row.id)))
        out = []
        for night in sessions:
            hyps = {h.kind: h for h in sorted(night.hypnograms, key=lambda h: h.id)}
            kind = next((k for k in _SHOWN_KINDS if k in hyps), None)
            if kind is None or not hyps[kind].stages:
                continue
            h = hyps[kind]
            st = sleep_statistics(np.asarray(h.stages), float(h.epoch_s or 30.0))
            n_events = s.scalar(select(func.count()).select_from(Event).where(Event.session_id == night.id))
            n_arousals = s.scalar(select(func.count()).select_from(Event).where(
                Event.session_id == night.id, Event.description == "arousal"))
            clicks = s.scalar(select(func.count()).select_from(DecisionRow).where(
                DecisionRow.session_id == night.id, DecisionRow.kind == "click"))
            summary = night.summary or {}
            counted = summary.get("events") or {}
            if not n_events and "arousal" in counted:  # events not stored one by one: the night's summary counts
                n_events, n_arousals = 1, int(counted["arousal"])
            if not clicks and "click" in summary:
                clicks = int(summary["click"])
            ai = n_arousals / (st["TST"] / 60) if n_events and st["TST"] > 0 else math.nan
            so_power = summary.get("so_power_n3_uv2")
            when = night.started_at or night.created_at
            out.append({
                "session": night.id, "when": when, "date": f"{when:%Y-%m-%d}", "mode": str(night.mode.value),
                "stimulated": night.mode.value == "stimulation", "epochs": len(h.stages),
                **{k: st[k] for k in ("TST", "SE", "SOL", "WASO", "N3", "REM")},
                "arousal_index": ai, "clicks": int(clicks or 0),
                "so_power_n3": math.nan if so_power is None else float(so_power),
            })
    cols = ["session", "date", "mode", "stimulated", "epochs", "TST", "SE", "SOL", "WASO", "N3", "REM",
            "arousal_index", "clicks", "so_power_n3"]
    if not out:
        return code, pd.DataFrame(columns=cols)
    df = pd.DataFrame(out).sort_values("when", kind="stable").reset_index(drop=True)
    return code, df[cols]


def _f(v: Any, digits: int = 1) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def side_by_side(nights: pd.DataFrame) -> list[list[str]]:
    """Rows ``metric, natural mean (n), stimulated mean (n), difference`` over the nights."""
    rows = []
    nat, stim = nights[~nights["stimulated"].astype(bool)], nights[nights["stimulated"].astype(bool)]
    for name, (col, unit) in METRICS.items():
        a = nat[col].astype(float).mean() if len(nat) else math.nan
        b = stim[col].astype(float).mean() if len(stim) else math.nan
        rows.append([f"{name} ({unit})", _f(a), _f(b), _f(b - a)])
    return rows


def build_trend_report(code: str, nights: pd.DataFrame) -> Report:
    """A trend report: table of nights, natural vs stimulated means, one panel per metric."""
    from nexus.reports.plots import plot_trend

    rep = Report(f"Sleep trend: client {code}", f"{plural(len(nights), 'night')} with a hypnogram.")
    sec = rep.section("Natural versus stimulated nights")
    if not len(nights):
        sec.blocks.append(Note("This client has no night with a hypnogram yet: nothing to show."))
        return rep
    n_nat = int((~nights["stimulated"].astype(bool)).sum())
    n_stim = len(nights) - n_nat
    share = 100 * n_stim / len(nights)
    sec.blocks.append(f"{n_nat} natural (record-only) and {n_stim} stimulated {'night' if n_stim == 1 else 'nights'}; "
                      f"{share:.0f}% of nights "
                      "used stimulation (the share behind the dependency index).")
    sec.blocks.append(Table(["metric", f"natural ({n_nat})", f"stimulated ({n_stim})", "stimulated − natural"],
                            side_by_side(nights), "Means over nights."))
    if len(nights) < 2:
        sec.blocks.append(Note("Only one night so far: a trend needs at least two."))
    sec = rep.section("Nights")
    sec.blocks.append(Table(
        ["date", "session", "mode", "TST min", "SE %", "SOL min", "WASO min", "N3 min", "REM min", "arousals/h",
         "clicks", "SO µV²"],
        [[r.date, str(r.session), r.mode, _f(r.TST), _f(r.SE), _f(r.SOL), _f(r.WASO), _f(r.N3), _f(r.REM),
          _f(r.arousal_index), str(r.clicks), _f(r.so_power_n3, 0)] for r in nights.itertuples()]))
    labels = [f"{r.date}" for r in nights.itertuples()]
    metrics = {f"{name} ({unit})": nights[col].astype(float).tolist() for name, (col, unit) in METRICS.items()
               if nights[col].astype(float).notna().any()}  # no empty panel for a figure never stored
    sec.blocks.append(Image.from_figure(plot_trend(labels, metrics, nights["stimulated"].astype(bool).tolist()),
                                        "trend panels"))
    return rep
