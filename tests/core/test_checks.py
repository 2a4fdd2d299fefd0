"""Validation helpers: one message style."""

import pytest


def test_check_writable_path_refuses_dash_instead_of_creating_a_file(tmp_path, monkeypatch):
    from nexus.core.checks import check_writable_path
    from nexus.core.errors import InvalidInputError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError, match=r"Cannot write the report to standard output \('-'\)"):
        check_writable_path("-", "report")


@pytest.mark.parametrize(("n", "text"), [(0, "0 beds"), (1, "1 bed"), (2, "2 beds")], ids=["zero", "one", "two"])
def test_plural(n, text):
    from nexus.core.checks import plural

    assert plural(n, "bed") == text
