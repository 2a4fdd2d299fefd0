"""The layers of DESIGN.md import one way only (after mne-python's test_import_nesting).

Every ``import nexus.X`` / ``from nexus.X import`` / relative import in ``src/nexus/<layer>`` is
checked against the allowed table below, including imports inside functions.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "nexus"

# rank of each layer: a module may import layers of lower rank (and its own layer)
RANK = {
    "core": 0,
    "formats": 1,
    "dsp": 2,
    "staging": 3,
    "events": 3,
    "sources": 4,
    "sinks": 4,
    "dreamscape": 5,
    "monitor": 6,
    "safety": 6,
    "guard": 6,
    "store": 7,
    "facility": 8,
    "api": 9,
    "console": 9,
    "reports": 9,
    "cli": 10,
}
# pure computation: only core (and dsp) and numeric libraries, never files or higher layers
PURE_ALLOWED = {"dsp": {"core"}, "staging": {"core", "dsp"}, "events": {"core", "dsp"}}
# siblings of equal rank that must not import each other
SIBLING_FORBIDDEN = {
    ("staging", "events"),
    ("events", "staging"),
    ("sources", "sinks"),
    ("sinks", "sources"),
    ("monitor", "safety"),
    ("monitor", "guard"),
    ("guard", "safety"),
}


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "nexus" else None


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = ".".join(("nexus", *path.relative_to(SRC).parent.parts))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
    return found


def _violations() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if len(rel.parts) < 2:
            continue
        layer = rel.parts[0]
        if layer not in RANK:
            bad.append(f"{rel}: folder '{layer}' is not a known layer; add it to RANK")
            continue
        for lineno, mod in _imports(path):
            target = _layer_of(mod)
            if target is None or target == layer:
                continue
            if target not in RANK:
                bad.append(f"{rel}:{lineno} imports unknown layer nexus.{target}")
            elif layer in PURE_ALLOWED and target not in PURE_ALLOWED[layer]:
                bad.append(f"{rel}:{lineno} pure layer '{layer}' imports nexus.{target}")
            elif RANK[target] > RANK[layer] or (layer, target) in SIBLING_FORBIDDEN:
                bad.append(f"{rel}:{lineno} '{layer}' imports higher layer nexus.{target}")
    return bad


def test_layers_import_one_way():
    assert _violations() == []


def test_checker_catches_an_upward_import(tmp_path, monkeypatch):
    # the checker itself must be able to fail
    fake = tmp_path / "nexus"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "bad.py").write_text("from nexus.store import models\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    assert _violations() == ["core/bad.py:1 'core' imports higher layer nexus.store"]


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("nexus", ("numpy", "sqlalchemy", "fastapi", "matplotlib", "yasa")),
        ("nexus.cli.main", ("numpy", "sqlalchemy", "fastapi", "matplotlib", "yasa")),
        ("nexus.core.stages", ("sqlalchemy", "fastapi", "matplotlib", "yasa", "click")),
    ],
    ids=["package", "cli-entry", "core"],
)
def test_light_imports(module, forbidden):
    """Importing these must not drag in heavy or higher-layer libraries (fast CLI start, clean core)."""
    code = f"import sys, {module}; print(' '.join(m for m in {forbidden!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
