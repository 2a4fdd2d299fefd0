"""``nexus user add/list/token/unlock/break-glass``: staff users, API tokens and emergency access."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nexus.guard.policy import Principal
    from nexus.store.db import Store


def open_db() -> Store:
    """The database of the current settings (at the migration head)."""
    from nexus.core.settings import load_settings
    from nexus.store import open_store

    return open_store(load_settings())


def cli_principal(store: Store, as_user: str | None) -> Principal:
    """Who runs this command: a named staff user (``--as``), else the local operator with database access (admin).

    The command line is run by whoever holds the database; ``--as`` makes the audit log name the person and
    applies their role's limits.
    """
    import getpass

    from nexus.guard.policy import Principal, Role
    from nexus.store.access import get_user

    if as_user is None:
        return Principal(f"cli:{getpass.getuser()}", Role.ADMIN)
    with store.session() as s:
        u = get_user(s, as_user)
        return Principal(u.username, Role(u.role.value))


@contextmanager
def managing(as_user: str | None) -> Iterator[tuple[Principal, Session]]:
    """A database session for managing users and logins, as the CLI's principal (admins only: ``user.manage``)."""
    from nexus.guard.policy import Action, require

    store = open_db()
    try:
        me = cli_principal(store, as_user)
        require(me, Action.USER_MANAGE)
        with store.session() as s:
            yield me, s
    finally:
        store.close()


as_option = click.option("--as", "as_user", metavar="USER", default=None,
                         help="Act as this staff user (their role applies; the audit names them).")


@click.group()
def user() -> None:
    """Staff users (technician, clinician, auditor, admin), API tokens and break-glass access."""


@user.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["technician", "clinician", "auditor", "admin"]),
              help="Staff role (a clinician reads what a client shares with them, and changes nothing).")
@click.option("--full-name", default=None, help="Full name (optional).")
@click.option("--password/--no-password", default=True, show_default=True,
              help="Ask for a password (argon2id-hashed); without one the user logs in with tokens only.")
@as_option
def add(username: str, role: str, full_name: str | None, password: bool, as_user: str | None) -> None:
    """Add a staff user USERNAME."""
    from nexus.store.access import add_user

    pw = click.prompt("Password", hide_input=True, confirmation_prompt=True) if password else None
    with managing(as_user) as (me, s):
        u = add_user(s, username, role, password=pw, full_name=full_name, actor=me.actor)
        click.echo(f"Added {u.role.value} '{u.username}' (id {u.id}).")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List staff users."""
    import json

    from nexus.store.access import list_users

    store = open_db()
    try:
        with store.session() as s:
            rows = [{"username": u.username, "role": u.role.value, "active": u.active,
                     "full_name": u.full_name, "password": u.password_hash is not None} for u in list_users(s)]
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['username']:<20} {r['role']:<11} {'active' if r['active'] else 'disabled'}")


@user.command("token")
@click.argument("username")
@click.option("--days", type=click.FloatRange(min=0, min_open=True, max=90), default=30.0, show_default=True,
              help="Lifetime in days (at most 90).")
@click.option("--label", default="", help="What the token is for.")
@as_option
def token(username: str, days: float, label: str, as_user: str | None) -> None:
    """Make an API token for USERNAME (printed once; only its hash is kept)."""
    from datetime import timedelta

    from nexus.store.access import issue_token

    with managing(as_user) as (me, s):
        tok = issue_token(s, username=username, ttl=timedelta(days=days), label=label, actor=me.actor)
    click.echo(tok)


@user.command("unlock")
@click.argument("username")
@as_option
def unlock(username: str, as_user: str | None) -> None:
    """Lift the lockout on USERNAME's login (wrong passwords from some address; admins only, audited)."""
    from nexus.store.staff_login import unlock_staff

    with managing(as_user) as (me, s):
        unlock_staff(s, username, actor=me.actor)
    click.echo(f"The login '{username}' is unlocked: every address may try it again.")


@user.command("break-glass")
@click.argument("username")
@click.option("--reason", required=True, help="What went wrong (required; written to the audit log).")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True, max=60), default=30.0, show_default=True,
              help="How long the access lasts (at most 60).")
def break_glass_cmd(username: str, reason: str, minutes: float) -> None:
    """Emergency access for USERNAME when normal control is lost: see and extract sessions, nothing else.

    Time-limited, reason required, audited and logged loudly. It never gives access to psyche data or journals.
    """
    from datetime import timedelta

    from nexus.store.access import break_glass

    store = open_db()
    try:
        with store.session() as s:
            tok = break_glass(s, username, reason, ttl=timedelta(minutes=minutes))
    finally:
        store.close()
    click.echo(f"BREAK-GLASS token for {username}, valid {minutes:g} min, audited:", err=True)
    click.echo(tok)
