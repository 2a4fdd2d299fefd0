"""Facility summary of one night: beds, alarms by priority with response times, extractions, early ends."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.checks import plural
from nexus.core.errors import InvalidInputError, NotFoundError
from nexus.reports.document import Image, Note, Report, Table

__all__ = ["FacilityNight", "build_facility_report", "facility_night"]

_PRIORITIES = ("high", "medium", "low")
_SHOWN_KINDS = ("live", "offline", "expert", "truth")


@dataclass
class FacilityNight:
    """The sessions of one night and what happened in them.

    ``beds`` has one dict per session (``session, bed, client, mode, state, started, end_reason, tst, se, n3,
    clicks, alarms, stages, epoch_s``); ``alarms`` one per glitch (``session, bed, priority, category, kind,
    onset_s, response_s`` — seconds from the alarm to its acknowledgement, None when never acknowledged).
    """

    date: dt.date
    beds: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    extractions: list[dict[str, Any]] = field(default_factory=list)


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC


def facility_night(store: Any, date: dt.date | str | None = None) -> FacilityNight:
    """Gather the sessions started on ``date`` (UTC; default: the latest date with a session).

    Raises
    ------
    InvalidInputError
        ``date`` is not YYYY-MM-DD.
    NotFoundError
        No session started on that date (or none at all).
    """
    from sqlalchemy import func, select

    from nexus.staging.stats import sleep_statistics
    from nexus.store.models import DecisionRow, NightSession

    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date)
        except ValueError:
            raise InvalidInputError(f"Invalid date '{date}': expected YYYY-MM-DD, e.g. 2026-03-01.") from None
    with store.session() as s:
        when = func.coalesce(NightSession.started_at, NightSession.created_at)
        if date is None:
            last = s.scalar(select(func.max(when)))
            if last is None:
                raise NotFoundError("The database has no sessions yet: run a night first (nexus simulate).")
            date = last.date() if isinstance(last, dt.datetime) else dt.date.fromisoformat(str(last)[:10])
        lo = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC)
        rows = [r for r in s.scalars(select(NightSession))
                if lo <= (_utc(r.started_at or r.created_at) or lo) < lo + dt.timedelta(days=1)]
        if not rows:
            raise NotFoundError(f"No session started on {date} (UTC). Give another --date, or leave it out for the "
                                "latest night.")
        night = FacilityNight(date)
        for r in sorted(rows, key=lambda r: (r.bed or "", r.id)):
            hyps = {h.kind: h for h in sorted(r.hypnograms, key=lambda h: h.id)}
            kind = next((k for k in _SHOWN_KINDS if k in hyps), None)
            stages = np.asarray(hyps[kind].stages if kind else [], dtype=np.int8)
            epoch_s = float(hyps[kind].epoch_s or 30.0) if kind else 30.0
            st = sleep_statistics(stages, epoch_s) if stages.size else None
            clicks = s.scalar(select(func.count()).select_from(DecisionRow).where(
                DecisionRow.session_id == r.id, DecisionRow.kind == "click")) or int((r.summary or {}).get("click", 0))
            started = _utc(r.started_at)
            for g in r.glitches:
                ack = _utc(g.acknowledged_at)
                resp = None
                if ack is not None and started is not None:
                    resp = (ack - (started + dt.timedelta(seconds=g.onset_s))).total_seconds()
                night.alarms.append({"session": r.id, "bed": r.bed, "priority": str(g.priority.value),
                                     "category": str(g.category.value), "kind": g.kind, "onset_s": g.onset_s,
                                     "response_s": resp})
            reason = r.end_reason or ""
            extract = [d for d in r.decisions if "extract" in d.kind]
            if extract or "extract" in reason.lower():
                night.extractions.append({"session": r.id, "bed": r.bed, "reason": reason or extract[0].reason,
                                          "t_s": extract[0].t_s if extract else None})
            night.beds.append({
                "session": r.id, "bed": r.bed or "?", "client": r.client.code if r.client else "?",
                "mode": str(r.mode.value), "state": str(r.state.value), "started": started, "end_reason": reason,
                "tst": st["TST"] if st else math.nan, "se": st["SE"] if st else math.nan,
                "n3": st["N3"] if st else math.nan, "clicks": int(clicks), "alarms": len(r.glitches),
                "stages": stages, "epoch_s": epoch_s,
            })
    return night


def _f(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def alarm_table(alarms: list[dict[str, Any]]) -> list[list[str]]:
    """Per priority: count, acknowledged, median and longest response time in seconds."""
    rows = []
    for p in _PRIORITIES:
        mine = [a for a in alarms if a["priority"] == p]
        resp = np.array([a["response_s"] for a in mine if a["response_s"] is not None], dtype=float)
        rows.append([p, str(len(mine)), str(resp.size), _f(float(np.median(resp)) if resp.size else None),
                     _f(float(resp.max()) if resp.size else None)])
    return rows


def _stage_image(beds: list[dict[str, Any]]) -> Image:
    from matplotlib.colors import ListedColormap

    from nexus.reports.plots import STAGE_COLORS, new_figure

    n = max((b["stages"].size for b in beds), default=0)
    epoch_s = beds[0]["epoch_s"] if beds else 30.0
    grid: npt.NDArray[np.float64] = np.full((len(beds), max(n, 1)), np.nan)
    for i, b in enumerate(beds):
        grid[i, : b["stages"].size] = np.where(b["stages"] >= 0, b["stages"], np.nan)
    fig = new_figure(10, min(1.2 + 0.18 * len(beds), 9.5))
    ax = fig.add_subplot()
    cmap = ListedColormap([STAGE_COLORS[k] for k in range(5)]).with_extremes(bad="#dddddd")
    ax.imshow(grid, aspect="auto", cmap=cmap, vmin=-0.5, vmax=4.5, interpolation="nearest",
              extent=(0, max(n, 1) * epoch_s / 3600, len(beds) - 0.5, -0.5))
    if len(beds) <= 40:
        names = [f"{b['bed']} ({'natural' if b['mode'] == 'record_only' else 'stim.'})" for b in beds]
        ax.set_yticks(range(len(beds)), names, fontsize=7)
    ax.set_xlabel("hours since the session started")
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=STAGE_COLORS[k], label=lab) for k, lab in enumerate(("W", "N1", "N2", "N3", "R"))],
               ncols=5, fontsize=7, loc="outside lower center", frameon=False)
    ax.set_title("Live hypnogram of every bed", loc="left", fontsize=10)
    return Image.from_figure(fig, "hypnograms of all beds")


def build_facility_report(night: FacilityNight) -> Report:
    """Beds, alarms by priority with response times, extractions and early ends, one stage row per bed."""
    beds = night.beds
    rep = Report(f"Facility night of {night.date}", f"{plural(len(beds), 'session')} started on {night.date} (UTC).")
    sec = rep.section("Summary")
    states: dict[str, int] = {}
    for b in beds:
        states[b["state"]] = states.get(b["state"], 0) + 1
    natural = sum(b["mode"] == "record_only" for b in beds)
    early = [b for b in beds if b["state"] == "aborted"]
    sec.blocks.append(f"{plural(len(beds), 'bed')}: {natural} natural (record-only) and {len(beds) - natural} "
                      f"stimulated {'night' if len(beds) - natural == 1 else 'nights'}; "
                      + ", ".join(f"{v} {k}" for k, v in sorted(states.items())) + ".")
    sec.blocks.append(f"{plural(len(night.alarms), 'alarm')}, {plural(len(night.extractions), 'extraction')}, "
                      f"{plural(len(early), 'session')} ended early (aborted).")
    running = states.get("running", 0) + states.get("extracting", 0)
    if running:
        sec.blocks.append(Note(f"{plural(running, 'session')} had not ended when this report was made."))
    sec = rep.section("Alarms")
    sec.blocks.append(Table(["priority", "alarms", "acknowledged", "median response (s)", "longest response (s)"],
                            alarm_table(night.alarms),
                            "Response: from the alarm's onset to its acknowledgement by staff."))
    if night.alarms:
        kinds: dict[tuple[str, str, str], int] = {}
        for a in night.alarms:
            key = (a["priority"], a["category"], a["kind"])
            kinds[key] = kinds.get(key, 0) + 1
        order = {p: i for i, p in enumerate(_PRIORITIES)}
        sec.blocks.append(Table(["priority", "category", "glitch", "count"],
                                [[p, c, k, str(v)] for (p, c, k), v in sorted(kinds.items(),
                                                                               key=lambda kv: order[kv[0][0]])]))
    sec = rep.section("Extractions and early ends")
    if night.extractions or early:
        rows = [[e["bed"] or "?", e["session"], "extraction", e["reason"]] for e in night.extractions]
        rows += [[b["bed"], b["session"], "aborted", b["end_reason"]] for b in early]
        sec.blocks.append(Table(["bed", "session", "what", "reason"], rows))
    else:
        sec.blocks.append("No extraction and no session ended early.")
    sec = rep.section("Beds")
    sec.blocks.append(Table(
        ["bed", "client", "mode", "state", "TST min", "SE %", "N3 min", "clicks", "alarms", "session"],
        [[b["bed"], b["client"], b["mode"], b["state"], _f(b["tst"]), _f(b["se"]), _f(b["n3"]), str(b["clicks"]),
          str(b["alarms"]), b["session"]] for b in beds]))
    if any(b["stages"].size for b in beds):
        sec.blocks.append(_stage_image(beds))
    return rep
