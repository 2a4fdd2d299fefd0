"""Stage a whole archive of recordings as Ray tasks: resumable, per-file errors kept, one statistics table.

>>> summary = stage_archive("psg/", "staged/", workers=2)   # doctest: +SKIP
>>> summary.staged, summary.skipped, summary.failed           # doctest: +SKIP

Every ``*.edf`` / ``*.bdf`` under the archive folder is one night. Each night is staged by
:func:`stage_night` in a Ray task (a local Ray with ``workers`` CPUs by default, or the cluster
at ``address``); the driver writes the results as they come back. The output folder holds:

================== ==========================================================================
``hypnograms/``    one TSV per night (as ``nexus stage -o``: onset, duration, stage, p_W … p_R)
``manifest.jsonl`` one line per finished night: SHA-256 of the file, its path, stager, model,
                   channels, hypnogram file and AASM statistics; appended as each night ends
``stats.csv``      AASM statistics of every night in the manifest, one row per night (also
``stats.parquet``  as Parquet)
``errors.csv``     the recordings of the last run that could not be staged, with the reason
================== ==========================================================================

A run skips every night whose content hash is already in the manifest (an interrupted run
resumes where it stopped; a renamed or moved file is not staged again), and files with the same
content are staged once. A recording that cannot be read or staged goes to ``errors.csv`` and
the rest of the batch goes on; it is tried again on the next run.

On a cluster, every node must see the archive at the same path (a shared file system): tasks
receive paths, not file contents; the outputs are written by the driver only.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nexus.core.errors import ConfigError, InvalidInputError, NexusError, NotFoundError
from nexus.core.log import logger

MANIFEST = "manifest.jsonl"
ERRORS = "errors.csv"
STATS_CSV = "stats.csv"
STATS_PARQUET = "stats.parquet"
HYPNOGRAMS = "hypnograms"
SUFFIXES = (".edf", ".bdf")
#: columns of the statistics table before the AASM statistics
ID_COLUMNS = ("night", "sha256", "stager", "model", "channels", "epochs", "hypnogram")
_INSTALL = "pip install 'bedtime-nexus[cluster]'"


@dataclass(frozen=True)
class NightOutcome:
    """What a task returns for one recording: the staged night, or why it failed.

    Attributes
    ----------
    stages : ndarray of int8, shape (n_epochs,) or None
        YASA codes per 30-s epoch.
    probabilities : ndarray, shape (n_epochs, 5) or None
        Probabilities of W, N1, N2, N3, R.
    epoch_s : float
        Epoch length in seconds.
    model : str
        The classifier used.
    channels : dict
        Kind → channel label used (``{"eeg": "EEG Fpz-Cz", …}``).
    error : str or None
        One line saying why the night could not be staged (then ``stages`` is None).
    seconds : float
        Time the task took, in s.
    """

    stages: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    epoch_s: float = 30.0
    model: str = ""
    channels: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class ArchiveSummary:
    """What a run of :func:`stage_archive` did.

    Attributes
    ----------
    found : int
        Recordings found under the archive folder.
    staged : int
        Nights staged by this run.
    skipped : int
        Recordings skipped: already in the manifest, or the same content as another file of this run.
    failed : list of (str, str)
        ``(recording, reason)`` of each recording that could not be staged (also in ``errors.csv``).
    nights : int
        Nights in the statistics table (all runs).
    seconds : float
        Wall-clock time of the run, in s.
    """

    found: int = 0
    staged: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    nights: int = 0
    seconds: float = 0.0


def find_recordings(root: str | Path, exclude: str | Path | None = None) -> list[Path]:
    """Every EDF/BDF file under ``root`` (case-insensitive suffix), sorted; files under ``exclude`` left out."""
    base = Path(root)
    if not base.is_dir():
        hint = " It is a file; give the folder that holds the recordings." if base.exists() else ""
        raise NotFoundError(f"The archive folder '{base}' does not exist.{hint or ' Check the path.'}")
    skip = Path(exclude).resolve() if exclude is not None else None
    found = []
    for p in base.rglob("*"):
        if p.suffix.lower() not in SUFFIXES or not p.is_file():
            continue
        if skip is not None and p.resolve().is_relative_to(skip):
            continue
        found.append(p)
    return sorted(found)


def content_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def pick_signals(
    labels: Sequence[str],
    fs_of: Callable[[str], float],
    *,
    eeg: str | None = None,
    eog: str | None = None,
    emg: str | None = None,
) -> dict[str, str]:
    """Choose the staging channels as ``nexus stage`` does.

    :func:`~nexus.staging.offline.pick_channels`, then an EOG or EMG that was picked automatically
    is dropped when its sampling rate is at or below :data:`~nexus.staging.offline.MIN_FS`.
    """
    from nexus.staging.offline import MIN_FS, pick_channels

    chosen = pick_channels(labels, eeg=eeg, eog=eog, emg=emg)
    given = {"eeg": eeg, "eog": eog, "emg": emg}
    for kind in ("eog", "emg"):
        if kind in chosen and given[kind] is None and fs_of(chosen[kind]) <= MIN_FS:
            chosen.pop(kind)
    return chosen


def stage_night(
    path: str | Path,
    *,
    live: bool = False,
    eeg: str | None = None,
    eog: str | None = None,
    emg: str | None = None,
) -> NightOutcome:
    """Read and stage one recording; never raises for a bad file (the reason is in ``error``).

    Parameters
    ----------
    path : path-like
        EDF/EDF+/BDF recording.
    live : bool
        Causal staging (:func:`~nexus.staging.live.stage_causal`) instead of offline
        (:func:`~nexus.staging.offline.stage_offline`).
    eeg, eog, emg : str, optional
        Channel names; default: chosen as ``nexus stage`` does.
    """
    from nexus.formats.edf import read_edf

    t0 = time.perf_counter()
    try:
        rec = read_edf(path)
        chosen = pick_signals(rec.labels, lambda lab: rec.channel(lab).fs, eeg=eeg, eog=eog, emg=emg)
        signals = {k: rec.channel(lab).data for k, lab in chosen.items()}
        fs = {k: rec.channel(lab).fs for k, lab in chosen.items()}
        if live:
            from nexus.staging.live import stage_causal

            result = stage_causal(signals, fs)
        else:
            from nexus.staging.offline import stage_offline

            result = stage_offline(signals, fs)
    except NexusError as exc:
        return NightOutcome(error=" ".join(exc.message.split()), seconds=time.perf_counter() - t0)
    except Exception as exc:  # a bad file must not stop the batch: any failure is this night's error
        msg = " ".join(f"{type(exc).__name__}: {exc}".split())
        return NightOutcome(error=f"Cannot stage this recording ({msg}).", seconds=time.perf_counter() - t0)
    return NightOutcome(
        stages=result.stages,
        probabilities=result.probabilities,
        epoch_s=result.epoch_s,
        model=result.model,
        channels=chosen,
        seconds=time.perf_counter() - t0,
    )


def read_manifest(out: str | Path) -> dict[str, dict[str, Any]]:
    """Entries of ``out/manifest.jsonl`` by SHA-256 (an unreadable line, e.g. cut by a crash, is ignored)."""
    path = Path(out) / MANIFEST
    entries: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return entries
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            entries[str(entry["sha256"])] = entry
        except (json.JSONDecodeError, KeyError, TypeError):
            logger.warning("Ignoring line %d of %s: not a manifest entry (cut by an interrupted run?).", n, path)
    return entries


def _hypnogram_name(rel: Path, taken: set[str]) -> str:
    stem = "__".join(rel.with_suffix("").parts)
    name, i = f"{stem}.tsv", 1
    while name in taken:
        i += 1
        name = f"{stem}-{i}.tsv"
    return name


def _record(out: Path, entry: dict[str, Any]) -> None:
    with open(out / MANIFEST, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, allow_nan=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_tables(out: str | Path, entries: Sequence[dict[str, Any]]) -> Any:
    """Write ``stats.csv`` and ``stats.parquet`` (one row per night) and return the table (a DataFrame)."""
    import pandas as pd

    from nexus.core.files import atomic_path

    rows = []
    for e in entries:
        row = {k: e[k] for k in ID_COLUMNS if k != "channels"}
        row["channels"] = ", ".join(f"{k.upper()}={v}" for k, v in e["channels"].items())
        row.update({k: (math.nan if v is None else v) for k, v in e["stats"].items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        table = pd.DataFrame(columns=list(ID_COLUMNS))
    table = table.sort_values("night", kind="stable").reset_index(drop=True)
    folder = Path(out)
    with atomic_path(folder / STATS_CSV) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(folder / STATS_PARQUET) as tmp:
        table.to_parquet(tmp, index=False, engine="pyarrow")
    return table


def _write_errors(out: Path, failed: Sequence[tuple[str, str]]) -> None:
    from nexus.core.files import atomic_path

    with atomic_path(out / ERRORS) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["recording", "error"])
        w.writerows(failed)


def _require_cluster_extra() -> None:
    missing = []
    for mod in ("ray", "pyarrow"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise ConfigError(f"Archive staging needs {' and '.join(missing)}, which is not installed. Run: {_INSTALL}")


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at a Ray address (``ray.init`` itself waits minutes)."""
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidInputError(
            f"Invalid Ray address '{address}': expected HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:10001."
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"No Ray cluster answers at '{address}' ({reason}). Start it with 'ray start --head' on that host, "
            "check the address, or leave out --address to use a local Ray."
        ) from None


def connect_ray(address: str | None, workers: int | None) -> bool:
    """Start a local Ray with ``workers`` CPUs, or connect to the cluster at ``address``.

    Nothing is started when Ray is already initialised in this process. Returns whether this call
    started Ray (so the caller shuts it down). The local Ray has no dashboard and reports no usage
    statistics, so it never reaches the network.
    """
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    if address is None:
        ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, _node_ip_address="127.0.0.1", **common)
        return True
    _probe(address)
    try:
        ray.init(address=address, **common)
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(
            f"Cannot reach a Ray cluster at '{address}' ({reason}). Start it with 'ray start --head' on that host, "
            "check the address (HOST:6379 or ray://HOST:10001), or leave out --address to use a local Ray."
        ) from None
    return True


def _stage_pending(
    pending: list[tuple[Path, str]],
    *,
    live: bool,
    channels: dict[str, str | None],
    in_flight: int,
    progress: bool | None,
) -> Iterator[tuple[Path, str, NightOutcome]]:
    """Run one Ray task per recording, at most ``in_flight`` at a time; yield results as they finish."""
    import ray

    from nexus.core.progress import track

    task: Any = ray.remote(num_cpus=1, max_retries=1)(stage_night)

    def results() -> Iterator[tuple[Path, str, NightOutcome]]:
        queue = list(reversed(pending))
        running: dict[Any, tuple[Path, str]] = {}
        while queue or running:
            while queue and len(running) < in_flight:
                path, digest = queue.pop()
                running[task.remote(str(path), live=live, **channels)] = (path, digest)
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                path, digest = running.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died (out of memory, crash)
                    reason = " ".join(str(exc).split())[:300]
                    outcome = NightOutcome(error=f"The Ray task failed: {reason}")
                yield path, digest, outcome

    disable = None if progress is None else not progress
    yield from track(results(), "Staging nights", total=len(pending), disable=disable)


def stage_archive(
    archive: str | Path,
    out: str | Path,
    *,
    address: str | None = None,
    workers: int | None = None,
    live: bool = False,
    eeg: str | None = None,
    eog: str | None = None,
    emg: str | None = None,
    progress: bool | None = None,
) -> ArchiveSummary:
    """Stage every recording under ``archive`` as Ray tasks; write hypnograms, manifest, statistics, errors.

    Parameters
    ----------
    archive : path-like
        Folder searched recursively for ``*.edf`` and ``*.bdf``.
    out : path-like
        Output folder (created); see the module docstring for what it holds.
    address : str, optional
        Address of a running Ray cluster (``HOST:6379`` or ``ray://HOST:10001``); default: a local Ray.
    workers : int, optional
        Nights staged at once (one CPU each); default: every CPU of the local machine or cluster.
    live : bool
        Causal staging, as the live facility would have scored each epoch.
    eeg, eog, emg : str, optional
        Channel names used for every night; default: chosen per recording as ``nexus stage`` does.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Returns
    -------
    ArchiveSummary

    Raises
    ------
    NotFoundError
        ``archive`` is not a folder.
    InvalidInputError
        ``out`` cannot be used, ``workers`` < 1, or ``out`` holds hypnograms of the other stager.
    ConfigError
        Ray or pyarrow is missing, or the Ray cluster at ``address`` does not answer.
    """
    t0 = time.perf_counter()
    if workers is not None and workers < 1:
        raise InvalidInputError(f"Invalid value for --workers: expected >= 1, got {workers}.")
    root = Path(archive)
    dest = Path(out)
    if dest.exists() and not dest.is_dir():
        raise InvalidInputError(f"Cannot write to '{dest}': it is a file. Give a folder for --out.")
    files = find_recordings(root, exclude=dest)
    _require_cluster_extra()
    try:
        (dest / HYPNOGRAMS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(
            f"Cannot create the output folder '{dest}': {exc.strerror}. Choose another --out."
        ) from None
    stager = "live" if live else "offline"
    done = read_manifest(dest)
    other = {e.get("stager") for e in done.values()} - {stager}
    if other:
        raise InvalidInputError(
            f"'{dest}' holds hypnograms of the {other.pop()} stager; give another --out for {stager} staging."
        )
    # a night whose hypnogram was deleted is staged again
    done = {d: e for d, e in done.items() if (dest / str(e.get("hypnogram", ""))).is_file()}
    summary = ArchiveSummary(found=len(files))
    taken = {Path(str(e["hypnogram"])).name for e in done.values()}
    pending: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for path in files:
        digest = content_hash(path)
        if digest in done or digest in seen:
            summary.skipped += 1
            continue
        seen.add(digest)
        pending.append((path, digest))
    logger.info("%d recordings under %s: %d to stage, %d skipped.", len(files), root, len(pending), summary.skipped)
    if pending:
        started = connect_ray(address, workers)
        try:
            import ray

            in_flight = workers or max(int(ray.cluster_resources().get("CPU", 1)), 1)
            channels = {"eeg": eeg, "eog": eog, "emg": emg}
            for path, digest, outcome in _stage_pending(
                pending, live=live, channels=channels, in_flight=in_flight, progress=progress
            ):
                rel = path.relative_to(root)
                if outcome.error is not None or outcome.stages is None:
                    summary.failed.append((str(rel), outcome.error or "The task returned no stages."))
                    continue
                done[digest] = _finish(dest, rel, digest, outcome, outcome.stages, stager, taken)
                summary.staged += 1
        finally:
            if started:
                import ray

                ray.shutdown()
    _write_errors(dest, summary.failed)
    write_tables(dest, list(done.values()))
    summary.nights = len(done)
    summary.seconds = time.perf_counter() - t0
    return summary


def _finish(
    dest: Path, rel: Path, digest: str, outcome: NightOutcome, stages: np.ndarray, stager: str, taken: set[str]
) -> dict[str, Any]:
    """Write one night's hypnogram, then its manifest line (so a crash in between only restages it)."""
    from nexus.formats.hypnogram import write_hypnogram
    from nexus.staging.stats import sleep_statistics

    name = _hypnogram_name(rel, taken)
    taken.add(name)
    write_hypnogram(dest / HYPNOGRAMS / name, stages, outcome.epoch_s, outcome.probabilities)
    stats = sleep_statistics(stages, outcome.epoch_s)
    entry: dict[str, Any] = {
        "night": str(rel),
        "sha256": digest,
        "stager": stager,
        "model": outcome.model,
        "channels": outcome.channels,
        "epochs": int(stages.size),
        "hypnogram": f"{HYPNOGRAMS}/{name}",
        "seconds": round(outcome.seconds, 3),
        "stats": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in stats.items()},
    }
    _record(dest, entry)
    return entry
