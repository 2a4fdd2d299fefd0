"""``nexus report``: a night report of a recording + hypnogram, of a stored session, or a client's trend."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("target", required=False)
@click.option("--hypno", type=click.Path(dir_okay=False), default=None,
              help="Hypnogram of the recording (any format 'nexus stats' reads; TSV with p_* gives a hypnodensity).")
@click.option("--hypno-format", default=None, help="Format of --hypno (guessed when omitted).")
@click.option("--reference", type=click.Path(dir_okay=False), default=None,
              help="Reference hypnogram (expert, truth): adds an agreement section.")
@click.option("--events", "events_path", type=click.Path(dir_okay=False), default=None,
              help="Events TSV from 'nexus events' (default: detected from the recording).")
@click.option("--no-events", is_flag=True, help="Do not detect events (faster).")
@click.option("--channel", default=None, help="Main EEG channel (default: the first 'EEG …' channel).")
@click.option("--session", "session_id", default=None, help="A stored session's id (same as giving it as TARGET).")
@click.option("--client", default=None, help="A client's id or code: the trend across their nights.")
@click.option("--facility", is_flag=True, help="The facility's summary of a night (beds, alarms, extractions).")
@click.option("--date", default=None, help="With --facility: the night's date, YYYY-MM-DD (default: the latest).")
@click.option("--database", default=None, help="Database URL (default: NEXUS_DATABASE_URL or the data dir's).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="report.html or report.pdf.")
def report(target: str | None, hypno: str | None, hypno_format: str | None, reference: str | None,
           events_path: str | None, no_events: bool, channel: str | None, session_id: str | None,
           client: str | None, facility: bool, date: str | None, database: str | None, output: str) -> None:
    """Write a night report (self-contained HTML or PDF).

    TARGET is a recording (EDF/EDF+/BDF, with --hypno) or the id of a stored session; --client ID
    writes the client's trend across nights instead, --facility [--date D] the facility's night.
    """
    from nexus.core.errors import InvalidInputError
    from nexus.reports.document import FORMATS, write_report

    out = Path(output)
    if out.suffix.lower() not in FORMATS:
        raise InvalidInputError(f"Cannot write a report as '{out.name}': name the output file *.html or *.pdf.")
    given = [x for x in (target, session_id, client, facility) if x]
    if len(given) != 1:
        raise InvalidInputError("Give exactly one of: a recording (with --hypno), a session id (TARGET or --session), "
                                "--client ID or --facility.")
    if date is not None and not facility:
        raise InvalidInputError("--date applies to --facility only.")
    is_file = target is not None and (Path(target).is_file() or Path(target).suffix.lower() in (".edf", ".bdf"))
    if is_file:
        from nexus.reports.night import build_night_report, night_from_recording

        assert target is not None
        data = night_from_recording(target, hypno, hypno_fmt=hypno_format, events=events_path,
                                    reference=reference, channel=channel, detect=not no_events,
                                    background=True)  # the figures are drawn while the events are detected
        rep = build_night_report(data)
    else:
        if hypno or reference or events_path or channel:
            raise InvalidInputError("--hypno, --reference, --events and --channel apply to a recording; a stored "
                                    "session's report reads them from the database.")
        from nexus.core.settings import load_settings
        from nexus.store import open_store

        settings = load_settings(database_url=database) if database else load_settings()
        store = open_store(settings)
        try:
            if facility:
                from nexus.reports.facility import build_facility_report, facility_night

                rep = build_facility_report(facility_night(store, date))
            elif client:
                from nexus.reports.trend import build_trend_report, client_trend

                rep = build_trend_report(*client_trend(store, client))
            else:
                from nexus.reports.night import build_night_report, night_from_session

                rep = build_night_report(night_from_session(store, str(session_id or target),
                                                            detect=not no_events))
        finally:
            store.close()
    path = write_report(rep, out)
    click.echo(f"Wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
