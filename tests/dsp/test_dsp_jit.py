"""The kernels' disk cache follows edits of the compiled functions they call from other modules."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

RUN = textwrap.dedent(
    """
    import json, sys
    import nexus.dsp._jit as jit
    jit._PACKAGE = "probe_pkg."  # the probe package stands in for nexus
    from probe_pkg.caller import twice
    value = twice(1.0)
    print(json.dumps({"value": value, "hits": sum(twice.stats.cache_hits.values())}))
    """
)


def _run(root, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=os.pathsep.join([str(root), *sys.path]))
    done = subprocess.run(
        [sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _write_callee(pkg, step):
    (pkg / "callee.py").write_text(
        f"from nexus.dsp._jit import kernel\n\n\n@kernel\ndef add(x):\n    return x + {step}\n", encoding="utf-8"
    )


@pytest.mark.slow
def test_an_edit_of_a_callee_in_another_module_recompiles_the_caller(tmp_path):
    pkg = tmp_path / "src" / "probe_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "caller.py").write_text(
        "from nexus.dsp._jit import kernel\nfrom probe_pkg.callee import add\n\n\n"
        "@kernel\ndef twice(x):\n    return add(x) * 2.0\n",
        encoding="utf-8",
    )
    _write_callee(pkg, 1.0)
    cache = tmp_path / "cache"
    first = _run(tmp_path / "src", cache)
    assert first == {"value": 4.0, "hits": 0}  # compiled and saved
    again = _run(tmp_path / "src", cache)
    assert again == {"value": 4.0, "hits": 1}  # loaded from the cache: nothing changed
    _write_callee(pkg, 2.0)  # only the callee's module changes
    edited = _run(tmp_path / "src", cache)
    assert edited == {"value": 6.0, "hits": 0}  # the caller was compiled anew, with the new callee
