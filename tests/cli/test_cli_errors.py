"""One error, one line, one exit code, whichever command meets it; ``--debug`` anywhere."""

import sys
import types

import click
import pytest

from nexus.cli.main import COMMANDS, main
from nexus.core.errors import InvalidInputError, NotFoundError


@click.command()
@click.option("--code", type=int, default=3)
def _exits(code: int) -> None:
    click.get_current_context().exit(code)


@click.command()
@click.option("--tick", "tick_s", type=float, default=1.0)
def _checks(tick_s: float) -> None:
    from nexus.core.checks import check_number

    check_number("tick_s", tick_s, gt=0, unit="s")


@click.command()
def _double_period() -> None:
    raise InvalidInputError("Cannot read line 2: Known: W, N1 (also UNS).. Fix or remove that line.")


@pytest.fixture
def fake_commands(monkeypatch):
    mod = types.ModuleType("nexus_fake_commands")
    mod.exits, mod.checks, mod.double = _exits, _checks, _double_period  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nexus_fake_commands", mod)
    for name in ("exits", "checks", "double"):
        monkeypatch.setitem(COMMANDS, name, (f"nexus_fake_commands:{name}", "test"))


def test_a_command_that_exits_keeps_its_code(fake_commands):
    assert main(["exits", "--code", "3"]) == 3
    assert main(["exits", "--code", "0"]) == 0


def test_library_parameter_names_are_shown_as_the_options_typed(fake_commands, capsys):
    assert main(["checks", "--tick", "-1"]) == InvalidInputError.exit_code
    err = capsys.readouterr().err
    assert "Invalid value for '--tick'" in err
    assert "tick_s" not in err


def test_no_double_period(fake_commands, capsys):
    assert main(["double"]) == 2
    assert "(also UNS). Fix or remove" in capsys.readouterr().err


def test_click_messages_end_with_a_period(capsys):
    assert main(["version", "extra"]) == 2
    assert "Got unexpected extra argument (extra). See 'nexus version --help'." in capsys.readouterr().err


def test_missing_file_is_exit_3_also_through_click_path(tmp_path, capsys):
    # click.Path(exists=True) (audit verify --checkpoint) and check_file_exists (stats) say the same thing
    assert main(["audit", "verify", "--checkpoint", str(tmp_path / "nope.json")]) == NotFoundError.exit_code
    assert "does not exist" in capsys.readouterr().err
    assert main(["stats", str(tmp_path / "nope.tsv")]) == NotFoundError.exit_code


@pytest.mark.parametrize("where", ["before", "after"], ids=["before-subcommand", "after-subcommand"])
def test_debug_anywhere_shows_the_traceback(tmp_path, where):
    args = ["stats", str(tmp_path / "nope.tsv")]
    args = ["--debug", *args] if where == "before" else [*args[:1], "--debug", *args[1:]]
    with pytest.raises(NotFoundError, match="does not exist"):
        main(args)


def test_debug_after_double_dash_is_an_argument(tmp_path, capsys):
    assert main(["stats", "--", "--debug"]) == NotFoundError.exit_code
    assert "'--debug' does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["stats", "{h}", "--format", "foo"], ["compare", "{h}", "{h}", "--format", "foo"],
     ["stage", "{edf}", "--format", "foo"]],
    ids=["stats", "compare", "stage"],
)
def test_unknown_hypnogram_format_is_the_same_error_everywhere(tmp_path, capsys, args):
    from nexus.formats.hypnogram import write_hypnogram

    h = write_hypnogram(tmp_path / "h.tsv", [0, 2, 2])
    edf = tmp_path / "missing-but-checked-later.edf"
    rc = main([a.format(h=h, edf=edf) for a in args])
    assert rc == InvalidInputError.exit_code
    assert "Unknown hypnogram format 'foo'" in capsys.readouterr().err
