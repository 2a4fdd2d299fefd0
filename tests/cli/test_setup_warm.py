"""scripts/setup.sh compiles the first commands' kernels: each warm-up command line must still parse, or the
warm-up fails and every kernel compiles in the user's first runs (e.g. ~24 s of CPU in the first 'nexus simulate')."""

import re
import shlex
from pathlib import Path

import click

from nexus.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def _warm_lines() -> list[list[str]]:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    calls = re.findall(r"\bwarm ((?:synth|stage|report|simulate)\b[^&;\n]*)", setup)
    return [shlex.split(c.replace('"$scratch', '"/tmp/scratch').replace("\\", "")) for c in calls]


def test_setup_warms_the_first_commands_in_a_scratch_data_dir():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert [c[0] for c in _warm_lines()] == ["synth", "stage", "report", "simulate"]
    assert 'NEXUS_DATA_DIR="$scratch"' in setup  # never the user's database
    assert 'NEXUS_SETUP_WARM=0 bash scripts/setup.sh' in (ROOT / "scripts" / "test.sh").read_text()


def test_each_warm_up_command_line_parses():
    ctx = click.Context(cli)
    for args in _warm_lines():
        cmd = cli.get_command(ctx, args[0])
        assert cmd is not None, args
        cmd.make_context(args[0], args[1:], parent=ctx)  # raises click.UsageError on an unknown option
