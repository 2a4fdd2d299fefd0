"""``nexus audit verify/log/checkpoint/show``: the tamper-evident audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from nexus.cli.commands.user import as_option, cli_principal, open_db
from nexus.core.errors import NexusError

if TYPE_CHECKING:
    from nexus.store.db import Store


class AuditChainBroken(NexusError):
    """The audit chain failed verification (exit 1)."""

    exit_code = 1


@click.group()
def audit() -> None:
    """The tamper-evident audit log: verify it, read it, sign its head."""


@audit.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--checkpoint", "checkpoint_files", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="A checkpoint kept outside the database (from 'nexus audit checkpoint -o'); repeatable.")
def verify(as_json: bool, checkpoint_files: tuple[str, ...]) -> None:
    """Recompute the chain and check every signed checkpoint; name the first bad entry. Exit 1 when broken."""
    import json
    from pathlib import Path

    from nexus.core.errors import InvalidInputError
    from nexus.core.settings import load_settings
    from nexus.guard.chain import Checkpoint
    from nexus.store.audit import verify as do_verify

    extra = []
    for f in checkpoint_files:
        try:
            extra.append(Checkpoint.from_dict(json.loads(Path(f).read_text(encoding="utf-8"))))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"Checkpoint file '{f}' is not JSON ({exc.msg}): give the file written by "
                                    "'nexus audit checkpoint -o'.") from None
    store = open_db()
    try:
        report = do_verify(store, load_settings().secret_key, extra)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif report.ok:
        click.echo(report.summary())
    if not report.ok:
        raise AuditChainBroken(report.summary() + " Restore the database from a backup and investigate who wrote it.")


@audit.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Also write the signed checkpoint here (keep a copy outside the database).")
def checkpoint(output: str | None) -> None:
    """Sign the current head of the chain (HMAC with NEXUS_SECRET_KEY) and keep it."""
    import json
    from pathlib import Path

    from nexus.core.settings import load_settings
    from nexus.store.audit import checkpoint as do_checkpoint

    store = open_db()
    try:
        with store.session() as s:
            cp = do_checkpoint(s, load_settings().secret_key)
    finally:
        store.close()
    text = json.dumps(cp.to_dict(), indent=2)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    click.echo(text)


def _subjects(store: Store, client: str | None, session: str | None) -> list[str] | None:
    from sqlalchemy import select

    from nexus.store.access import get_client
    from nexus.store.models import NightSession

    if client is None and session is None:
        return None
    subjects = [session] if session else []
    if client is not None:
        with store.session() as s:
            c = get_client(s, client)
            subjects += [c.id, *s.scalars(select(NightSession.id).where(NightSession.client_id == c.id))]
    return subjects


@audit.command()
@click.option("--session", default=None, help="Only entries about this session.")
@click.option("--client", default=None, help="Only entries about this client (id or code) and their sessions.")
@click.option("--action", default=None, help="Only actions starting with this, e.g. 'decision.' or 'consent'.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many entries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@as_option
def log(session: str | None, client: str | None, action: str | None, limit: int | None, as_json: bool,
        as_user: str | None) -> None:
    """Print audit entries, oldest first (reading them is audited too)."""
    import json

    from nexus.guard.chain import canonical_ts
    from nexus.guard.policy import Action, require
    from nexus.store.audit import append, entries, entry_dict

    store = open_db()
    try:
        me = cli_principal(store, as_user)
        require(me, Action.AUDIT_READ)
        subjects = _subjects(store, client, session)
        with store.session() as s:
            rows = entries(s, subjects=subjects, action_prefix=action, limit=limit)
            append(s, me.actor, "audit.read", None, {"session": session, "client": client, "rows": len(rows)})
    finally:
        store.close()
    for e in rows:
        if as_json:
            click.echo(json.dumps(entry_dict(e), ensure_ascii=False))
        else:
            payload = json.dumps(e.payload, ensure_ascii=False, sort_keys=True)
            click.echo(f"{e.seq:>7}  {canonical_ts(e.ts)[:19]}  {e.actor:<24} {e.action:<24} {e.subject or '-'}  "
                       f"{payload}")


@audit.command()
@click.option("--client", required=True, help="Client id or code.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@as_option
def show(client: str, as_json: bool, as_user: str | None) -> None:
    """For every stimulus and decision of a client's nights: when, what, the inputs and the rule that caused it.

    Ends with the anti-exploitation check of those decisions (an auditor's night report).
    """
    import json

    from nexus.guard.exploitation import night_report
    from nexus.guard.policy import Action
    from nexus.store.access import check_access, get_client
    from nexus.store.audit import entries

    store = open_db()
    try:
        me = cli_principal(store, as_user)
        with store.session() as s:
            cid = get_client(s, client).id
        check_access(store, me, Action.DECISIONS_READ, cid)
        subjects = _subjects(store, cid, None)
        with store.session() as s:
            rows = entries(s, subjects=subjects, action_prefix="decision.")
            decisions = [{"session": e.subject, "kind": e.action.split(".", 1)[1], **e.payload} for e in rows]
    finally:
        store.close()
    report = night_report(decisions)
    if as_json:
        click.echo(json.dumps({"decisions": decisions, "report": report}, indent=2, ensure_ascii=False))
        return
    for d in decisions:
        inputs = json.dumps(d.get("inputs") or {}, sort_keys=True)
        click.echo(f"{d['session']}  t={float(d.get('t') or 0):9.1f}s  {d['kind']:<10} {d.get('reason') or ''}  "
                   f"inputs {inputs}")
    click.echo(f"{report['decisions']} decisions; by kind {report['by_kind']}; "
               f"{len(report['violations'])} anti-exploitation violation(s)")
    for v in report["violations"]:
        click.echo(f"  VIOLATION {v['where']}: {v['message']}")
