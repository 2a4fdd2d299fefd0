"""`nexus report`, `nexus compare`, `nexus trend`: argument errors are one line, name the problem, exit 2 or 3."""

import pytest

from nexus.cli.main import main


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["report", "-o", "r.html"], 2, "Give exactly one of"),
        (["report", "s1", "--client", "C-1", "-o", "r.html"], 2, "Give exactly one of"),
        (["report", "s1", "--date", "2026-01-01", "-o", "r.html"], 2, "--date applies to --facility only"),
        (["report", "s1", "--hypno", "h.tsv", "-o", "r.html"], 2, "apply to a recording"),
        (["report", "s1", "-o", "r.txt"], 2, "*.html or *.pdf"),
        (["report", "missing.edf", "--hypno", "h.tsv", "-o", "r.html"], 3, "missing.edf"),
        (["report", "s1", "-o", "r.html"], 74, "nexus db upgrade"),
        (["trend", "C-1", "-o", "t.png"], 2, "*.html or *.pdf"),
        (["trend", "C-1"], 74, "nexus db upgrade"),
        (["compare", "a.tsv"], 2, "Missing argument 'REFERENCE'"),
    ],
    ids=["nothing", "two-targets", "date-without-facility", "hypno-with-session", "bad-suffix", "missing-edf",
         "no-database", "trend-bad-suffix", "trend-no-database", "compare-one-file"],
)
def test_argument_errors(args, code, message, capsys):
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
