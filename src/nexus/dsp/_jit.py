"""The one decorator of the compiled kernels: ``numba.njit(cache=True, nogil=True)``, cache kept honest.

numba caches a compiled function on disk and reuses it while the source file of that function is
unchanged. It does not look at the compiled functions it calls from *other* modules (numba issue
#1833): after an edit of ``dsp/_biquad.py``, the cached live-stager filter chain of
``staging/_kernels.py``, which calls the biquad cascade, would keep running the old cascade. Here
every kernel of the package gets a cache locator whose source stamp also covers the files of the
compiled functions it calls, directly or through others (read from the names its code uses), so
an edit of any of them recompiles it. Nothing else changes: the cache lives where numba puts it
(``__pycache__`` next to the module, or ``NUMBA_CACHE_DIR``).
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable
from types import CodeType, FunctionType
from typing import Any, TypeVar

import numba
from numba.core import caching

F = TypeVar("F", bound=Callable[..., Any])

_PACKAGE = "nexus."


def _names(code: CodeType) -> set[str]:
    """Global names a function's code (and the code nested in it) may read."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names(const)
    return names


def _called_files(py_func: FunctionType, seen: set[int] | None = None) -> set[str]:
    """Source files of the compiled functions ``py_func`` calls, followed through their own calls."""
    seen = set() if seen is None else seen
    files: set[str] = set()
    for name in _names(py_func.__code__):
        target = py_func.__globals__.get(name)
        callee = getattr(target, "py_func", None)  # a numba dispatcher
        if not isinstance(callee, FunctionType) or id(callee) in seen:
            continue
        seen.add(id(callee))
        files.add(os.path.abspath(inspect.getfile(callee)))
        files |= _called_files(callee, seen)
    return files


def _file_hash(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class _CalleeStamp:
    """Mix-in for numba's file-backed cache locators: the stamp covers the callees' files too."""

    _callee_files: tuple[str, ...] = ()

    def get_source_stamp(self) -> Any:
        own = super().get_source_stamp()  # type: ignore[misc]
        return (own, tuple((os.path.basename(p), _file_hash(p)) for p in self._callee_files))

    @classmethod
    def from_function(cls, py_func: FunctionType, py_file: str) -> Any:
        if not py_func.__module__.startswith(_PACKAGE):
            return None  # other packages' functions: numba's own locators
        locator = super().from_function(py_func, py_file)  # type: ignore[misc]
        if locator is not None:
            own = os.path.abspath(py_file)
            locator._callee_files = tuple(sorted(f for f in _called_files(py_func) if f != own))
        return locator


def _locator(name: str) -> Any:
    """A numba locator class by its name (public since numba 0.60, with a leading underscore before)."""
    return getattr(caching, name, None) or getattr(caching, f"_{name}")


class _UserDirLocator(_CalleeStamp, _locator("UserProvidedCacheLocator")):  # type: ignore[misc]
    """``NUMBA_CACHE_DIR`` set: the cache lives there."""


class _InTreeLocator(_CalleeStamp, _locator("InTreeCacheLocator")):  # type: ignore[misc]
    """The cache lives in the module's ``__pycache__``."""


class _UserWideLocator(_CalleeStamp, _locator("UserWideCacheLocator")):  # type: ignore[misc]
    """A read-only install: the cache lives in the user's cache directory."""


def _register() -> None:
    """Put the locators first in numba's list (once): they answer for this package's functions only."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")  # noqa: B009 (older numba)
    classes = impl._locator_classes
    for cls in (_UserWideLocator, _InTreeLocator, _UserDirLocator):  # numba's own order, in front
        if cls not in classes:
            classes.insert(0, cls)


_register()


def kernel(func: F | None = None, **options: Any) -> Any:
    """Compile ``func`` with numba: no Python objects, the GIL released, cached on disk.

    ``@kernel`` or ``@kernel(fastmath=..., error_model=...)``; options go to :func:`numba.njit`.
    """
    options = {"cache": True, "nogil": True, **options}
    if func is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(func)
