"""``nexus client``: enrolment, portal login (token, invite, password), consent and data rights."""

from __future__ import annotations

from typing import Any

import click

from nexus.cli.commands.user import as_option, cli_principal, managing, open_db


@click.group()
def client() -> None:
    """Clients (sleepers): enrolment, consent scopes, export (GDPR Art. 20) and erasure (Art. 17)."""


@client.command("add")
@click.argument("code")
@click.option("--name", default=None, help="Display name (personal data; optional).")
@click.option("--birth-year", type=click.IntRange(1900, 2100), default=None)
@click.option("--sex", default=None)
@click.option("--consent", "scopes", multiple=True,
              help="Consent scopes granted at enrolment (comma list or repeated), e.g. recording,audio.")
@as_option
def add(code: str, name: str | None, birth_year: int | None, sex: str | None, scopes: tuple[str, ...],
        as_user: str | None) -> None:
    """Enrol a client under the pseudonymous CODE staff will see."""
    from nexus.guard.policy import Action, require
    from nexus.store.clients import add_client

    store = open_db()
    try:
        me = cli_principal(store, as_user)
        require(me, Action.CLIENT_CREATE)
        with store.session() as s:
            c = add_client(s, code, display_name=name, birth_year=birth_year, sex=sex, scopes=list(scopes),
                           actor=me.actor)
            click.echo(f"Added client {c.code} (id {c.id}); consent: {', '.join(c.consent_scopes) or 'none'}.")
    finally:
        store.close()


@client.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the clients as JSON.")
@as_option
def list_(as_json: bool, as_user: str | None) -> None:
    """List clients: pseudonymous code, id, consent scopes, erased or not (no personal fields; audited)."""
    import json

    from sqlalchemy import select

    from nexus.guard.policy import Action
    from nexus.store.access import check_access
    from nexus.store.audit import append
    from nexus.store.models import Client

    store = open_db()
    try:
        me = cli_principal(store, as_user)
        check_access(store, me, Action.CONSENT_READ)  # a refusal is audited
        with store.session() as s:
            rows: list[dict[str, Any]] = [{"code": c.code, "id": c.id, "consent": list(c.consent_scopes or []),
                     "erased": c.erased_at is not None}
                    for c in s.scalars(select(Client).order_by(Client.created_at, Client.code))]
            append(s, me.actor, "access.client.list", None, {"clients": len(rows)})
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['code']:<40} {r['id']}  {'erased' if r['erased'] else ', '.join(r['consent']) or 'no consent'}")
    click.echo(f"{len(rows)} client{'s' if len(rows) != 1 else ''}.")


@client.command()
@click.argument("client_ref", metavar="CLIENT")
@click.option("--grant", multiple=True, help="Scopes to grant (comma list or repeated).")
@click.option("--revoke", multiple=True, help="Scopes to revoke (comma list or repeated); always allowed.")
@as_option
def consent(client_ref: str, grant: tuple[str, ...], revoke: tuple[str, ...], as_user: str | None) -> None:
    """Show or change CLIENT's consent scopes (effective from the next step of a running session).

    Scopes: recording, audio, stimulation (CLAS; needs audio), dream_incubation (needs audio), psyche_monitoring,
    research, clinician_sharing; and the preference opt_out_natural_nights.
    """
    from nexus.guard.consent import plan_night
    from nexus.store.access import get_client
    from nexus.store.clients import set_consent

    store = open_db()
    try:
        me = cli_principal(store, as_user)
        if grant or revoke:
            ch = set_consent(store, me, client_ref, grant=list(grant), revoke=list(revoke))
            for note in ch.notes:
                click.echo(f"Note: {note}.")
            scopes = ch.after
        else:
            with store.session() as s:
                scopes = list(get_client(s, client_ref).consent_scopes or [])
    finally:
        store.close()
    plan = plan_night(scopes)
    click.echo(f"Consent: {', '.join(scopes) or 'none'}")
    click.echo(f"Tonight: {plan.mode}" + "".join(f"\n  - {r}" for r in plan.reasons))


@client.command()
@click.argument("client_ref", metavar="CLIENT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@as_option
def show(client_ref: str, as_json: bool, as_user: str | None) -> None:
    """CLIENT's consent, dependency index, natural-night schedule and weaning plan."""
    import json

    from nexus.store.clients import client_view

    store = open_db()
    try:
        view = client_view(store, cli_principal(store, as_user), client_ref)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    dep, nat, plan = view["dependency"], view["natural_night_tonight"], view["weaning_plan"]
    click.echo(f"Client {view['code']} (id {view['id']})" + (" — ERASED" if view["erased_at"] else ""))
    click.echo(f"Consent: {', '.join(view['consent']) or 'none'}")
    click.echo(f"Dependency: {dep['level']} — {dep['stimulated_nights']}/{dep['nights']} nights stimulated, "
               f"{dep['mean_dose']:.0f} stimuli per stimulated night")
    click.echo(f"Natural night tonight: {'yes' if nat['due'] else 'no'} ({nat['reason']})")
    click.echo(f"Weaning: {'start' if plan['start'] else 'not yet'} ({plan['reason']})")


@client.command()
@click.argument("client_ref", metavar="CLIENT")
@click.option("--days", type=click.FloatRange(min=0, min_open=True, max=90), default=30.0, show_default=True)
@as_option
def token(client_ref: str, days: float, as_user: str | None) -> None:
    """Make an API token for CLIENT (their own data only; printed once)."""
    from datetime import timedelta

    from nexus.store.access import issue_token

    with managing(as_user) as (me, s):
        tok = issue_token(s, client_id=client_ref, ttl=timedelta(days=days), actor=me.actor)
    click.echo(tok)


@client.command()
@click.argument("client_ref", metavar="CLIENT")
@click.option("--days", type=click.FloatRange(min=0, min_open=True, max=90), default=7.0, show_default=True,
              help="How long the code stays valid.")
@as_option
def invite(client_ref: str, days: float, as_user: str | None) -> None:
    """A one-time code for CLIENT to set their portal password (printed once; a new one replaces the last)."""
    from datetime import timedelta

    from nexus.store.client_login import invite_client

    with managing(as_user) as (me, s):
        code, expires = invite_client(s, client_ref, ttl=timedelta(days=days), actor=me.actor)
    click.echo(f"Give the client this one-time code for /console/portal.html (valid until "
               f"{expires.strftime('%Y-%m-%d %H:%M')} UTC):", err=True)
    click.echo(code)


@client.command()
@click.argument("client_ref", metavar="CLIENT")
@as_option
def password(client_ref: str, as_user: str | None) -> None:
    """Set CLIENT's portal password (asked twice; at least 12 characters; argon2id-hashed, as staff passwords)."""
    from nexus.store.client_login import set_client_password

    pw = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with managing(as_user) as (me, s):
        set_client_password(s, client_ref, pw, actor=me.actor)
    click.echo(f"Password set for client '{client_ref}'; they log in at /console/portal.html with code and password.")


@client.command()
@click.argument("client_ref", metavar="CLIENT")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The zip to write.")
@as_option
def export(client_ref: str, output: str, as_user: str | None) -> None:
    """Export everything about CLIENT to a zip: JSON, TSV hypnograms and events, EDF+ recordings, a manifest."""
    from nexus.core.settings import load_settings
    from nexus.store.clients import export_client

    store = open_db()
    try:
        manifest = export_client(store, cli_principal(store, as_user), client_ref, output,
                                 data_dir=load_settings().data_dir)
    finally:
        store.close()
    click.echo(f"Wrote {output}: {len(manifest['files'])} files (manifest.json lists them with SHA-256).")


@client.command()
@click.argument("client_ref", metavar="CLIENT")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@as_option
def erase(client_ref: str, yes: bool, as_user: str | None) -> None:
    """Erase CLIENT: signals, journal, events, recordings and personal fields. Not undoable.

    Refused while a session of theirs runs (extract it first). The audit log keeps only the fact and counts.
    """
    from nexus.core.settings import load_settings
    from nexus.store.clients import erase_client

    if not yes:
        click.confirm(f"Erase everything about client '{client_ref}'? This cannot be undone", abort=True)
    store = open_db()
    try:
        counts = erase_client(store, cli_principal(store, as_user), client_ref, data_dir=load_settings().data_dir)
    finally:
        store.close()
    click.echo("Erased: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) + ".")


@client.command("research-export")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The zip to write.")
@as_option
def research_export_cmd(output: str, as_user: str | None) -> None:
    """De-identified nights of the clients who granted 'research' consent (auditor or admin); others are skipped."""
    from nexus.core.settings import load_settings
    from nexus.store.clients import research_export

    store = open_db()
    try:
        m = research_export(store, cli_principal(store, as_user), output, key=load_settings().secret_key)
    finally:
        store.close()
    click.echo(f"Wrote {output}: {m['clients']} client(s) with research consent, "
               f"{m['skipped_without_consent']} skipped without it.")
