"""Entry point of the ``nexus`` command.

Commands are loaded lazily (only the one invoked is imported), so ``nexus --help`` and
``nexus version`` start fast. Errors print one line — what is wrong and how to fix it — and
exit non-zero; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import re
import sys

import click

from nexus import __version__
from nexus.core.errors import NexusError, NotFoundError

#: command name → "module:attribute" of its click command; help text shown in ``nexus --help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "version": ("nexus.cli.commands.version:version", "Print the Bedtime Nexus version and environment."),
    "db": ("nexus.cli.commands.db:db", "Manage the database (migrations)."),
    "stage": ("nexus.cli.commands.stage:stage", "Stage sleep in a recording, offline or live (causal)."),
    "stage-archive": ("nexus.cli.commands.stage_archive:stage_archive", "Stage a folder of EDFs on Ray (resumable)."),
    "stats": ("nexus.cli.commands.stats:stats", "AASM sleep statistics of a hypnogram (any format)."),
    "compare": ("nexus.cli.commands.compare:compare", "Epoch-by-epoch agreement of two hypnograms (kappa, F1, plot)."),
    "report": ("nexus.cli.commands.report:report", "Night report (HTML/PDF) of a recording + hypnogram or a session."),
    "trend": ("nexus.cli.commands.trend:trend", "A client's sleep across nights, natural vs stimulated."),
    "events": ("nexus.cli.commands.events:events", "Detect spindles, slow waves, REMs, arousals, HR, movement."),
    "synth": ("nexus.cli.commands.synth:synth", "Write one synthetic night (EDF+) with its ground truth."),
    "dreamscape": ("nexus.cli.commands.dreamscape:dreamscape", "Check, dry-run, render, replay dreamscapes."),
    "simulate": ("nexus.cli.commands.simulate:simulate", "A whole facility night of synthetic beds in fast-forward."),
    "sessions": ("nexus.cli.commands.sessions:sessions", "List the facility's sessions (client, program, state)."),
    "bench": ("nexus.cli.commands.bench:bench", "Benchmarks that print JSON figures (live, ...)."),
    "glitches": ("nexus.cli.commands.glitches:glitches", "Run the glitch monitor over a recording (TSV or JSON)."),
    "audit": ("nexus.cli.commands.audit:audit", "Verify, read and sign the tamper-evident audit log."),
    "user": ("nexus.cli.commands.user:user", "Staff users, API tokens and break-glass access."),
    "client": ("nexus.cli.commands.client:client", "Clients: consent, dependency, export and erasure."),
    "extract": ("nexus.cli.commands.extract:extract", "End sessions safely: stop stimulation, then wake or release."),
    "recover": ("nexus.cli.commands.recover:recover", "End the sessions a crashed facility left open; merge journals."),
    "run": ("nexus.cli.commands.run:run", "Run the facility: live beds, REST/WebSocket API and the web console."),
    "worker": ("nexus.cli.commands.worker:worker", "Multi-host facility: open beds, run a worker, see who runs what."),
    "record": ("nexus.cli.commands.record:record", "Record natural nights from LSL, BrainFlow, EDF replays."),
    "assign": ("nexus.cli.commands.assign:assign", "Give an unassigned bed's session to its client."),
}


class LazyGroup(click.Group):
    """A click group that imports each command's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Names of all commands, sorted."""
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return the command ``cmd_name`` (``None`` when unknown)."""
        if cmd_name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[cmd_name][0].split(":")
        cmd = getattr(importlib.import_module(module_name), attr)
        if not isinstance(cmd, click.Command):  # pragma: no cover - programming error
            raise TypeError(f"{module_name}:{attr} is not a click command")
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands with their one-line help, without importing them."""
        # help from the table, so listing commands imports none of them
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Resolve a command, suggesting the closest name for a typo."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            from nexus.core.checks import did_you_mean

            raise click.UsageError(
                f"No such command '{name}'.{did_you_mean(name, COMMANDS)} See 'nexus --help'."
            )
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> None:
        """Run the subcommand; an explicit exit (``ctx.exit(3)``) keeps its code through :func:`main`."""
        # in click's non-standalone mode an Exit comes back as cli.main's return value, like a command's
        # own return value: raise it as its own exception so that main() can tell them apart
        try:
            super().invoke(ctx)
        except click.exceptions.Exit as exc:
            raise _ExitRequest(int(exc.exit_code)) from None


class _ExitRequest(Exception):  # not an error: a command asked to exit with this code
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors (also accepted after the subcommand).")
@click.version_option(__version__, "-V", "--version", prog_name="nexus")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """Bedtime Nexus — run a sleep facility: stage sleep live, play dreamscapes, watch for glitches.

    Settings come from NEXUS_* environment variables (see README); data lives in ./nexus-data by default.
    """
    from nexus.core.log import set_log_level

    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["quiet"] = quiet
    set_log_level(verbose, quiet)


def _one_line(msg: str) -> str:
    text = " ".join(msg.split())
    text = re.sub(r"(?<!\.)\.\.(?!\.)", ".", text)  # "… (UNS).. Fix" from a message quoting a message
    return text if text.endswith((".", "?", "!", ":")) else text + "."


def _command_of(args: list[str]) -> click.Command | None:
    """The (sub)command that ``args`` invoke, without running it (``None`` when unknown)."""
    cmd: click.Command = cli
    ctx = click.Context(cli)
    for a in args:
        if not isinstance(cmd, click.Group) or a.startswith("-"):
            continue
        sub = cmd.get_command(ctx, a)
        if sub is None:
            break
        cmd = sub
    return None if cmd is cli else cmd


def _option_names(msg: str, args: list[str]) -> str:
    """Name options as the user typed them: ``'tick_s'`` → ``'--tick'`` (library checks know only parameters)."""
    try:
        cmd = _command_of(args)
    except Exception:  # a message must never fail to print
        return msg
    if cmd is None:
        return msg
    names = {}
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name:
            longest = max(p.opts, key=len)
            names[p.name] = longest
            names[longest.lstrip("-").replace("-", "_")] = longest
    return re.sub(r"(value for )'(\w+)'", lambda m: f"{m.group(1)}'{names.get(m.group(2), m.group(2))}'", msg)


def _debug_first(args: list[str]) -> list[str]:
    """Accept ``--debug`` anywhere before ``--`` (``nexus stage --debug x.edf``): move it to the front."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    rest = [a for a in args[:end] if a != "--debug"]
    return ["--debug", *rest, *args[end:]]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (used by the ``nexus`` console script)."""
    args = _debug_first(list(sys.argv[1:] if argv is None else argv))
    debug = args[:1] == ["--debug"]
    try:
        rc = cli.main(args=args, prog_name="nexus", standalone_mode=False)
    except _ExitRequest as exc:
        return exc.code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.BadParameter as exc:
        if _missing_path(exc):  # click.Path(exists=True): the same error, and exit code, as check_file_exists
            click.echo(f"Error: {_one_line(exc.format_message())}", err=True)
            return NotFoundError.exit_code
        return _usage_error(exc)
    except click.UsageError as exc:
        return _usage_error(exc)
    except click.ClickException as exc:
        click.echo(f"Error: {_one_line(exc.format_message())}", err=True)
        return exc.exit_code
    except NexusError as exc:
        if debug:
            raise
        click.echo(f"Error: {_one_line(_option_names(exc.message, args))}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    # an Exit outside a command (--help, --version) comes back as an int
    return rc if isinstance(rc, int) and not isinstance(rc, bool) else 0


def _missing_path(exc: click.BadParameter) -> bool:
    return (exc.param is not None and isinstance(exc.param.type, click.Path)
            and "does not exist" in exc.format_message())


def _usage_error(exc: click.UsageError) -> int:
    hint = ""
    if exc.ctx is not None and "--help" not in exc.format_message():
        hint = f" See '{exc.ctx.command_path} --help'."
    click.echo(f"Error: {_one_line(exc.format_message())}{hint}", err=True)
    return exc.exit_code


def entry() -> None:  # pragma: no cover - thin wrapper for the console script
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())
