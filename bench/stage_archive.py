"""Archive staging throughput: ``nexus stage-archive`` against YASA run the same way, through Ray.

Builds a temporary archive and stages it at 1 and 2 workers (a fresh local Ray with that many CPUs
for each run, one task per night, at most ``workers`` in flight):

* real: copies of the Sleep-EDF excerpt in tests/data (5 min, EEG Fpz-Cz + EOG at 100 Hz), each with
  its own patient field so that every copy has its own content hash (otherwise the archive stager
  rightly stages identical files once);
* synthetic: longer nights of the project's synthetic sleeper (EEG C4-M1, EOG E1-M2, EMG Chin at
  256 Hz; two seeds, the rest header-distinct copies of those), since no full-night real PSG signal
  is kept here.

Nexus: :func:`nexus.facility.archive.stage_archive` (hashing, manifest, hypnogram TSV per night, AASM
table in CSV and Parquet). YASA: one Ray task per night that reads the EDF with MNE and runs
``yasa.SleepStaging(...).predict()`` (stages and probabilities) on the same channels; the driver writes
the same outputs (hypnogram TSV, statistics table). Timed: the batch, from the first task submitted
to the last output written, in a Ray started just before whose workers have first imported the
stager's libraries (one warm-up task per worker: the steady state of a long batch); Ray's start-up
and the warm-up are reported apart. The machine's load average is
printed with the figures: other work on the machine slows both stagers.

    nice -n 10 .venv/bin/python bench/stage_archive.py [--real 16] [--synthetic 8] [--hours 2] [--workers 1 2]
"""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

PSG = Path(__file__).resolve().parents[1] / "tests" / "data" / "sleep-edf" / "SC4001E0-PSG_first5min.edf"
SYNTH_CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EMG Chin")
DISTINCT_SYNTHETIC = 2  # synthesizing is slow; further nights are header-distinct copies of these


def build_archive(root: Path, n_real: int, n_synth: int, hours: float) -> dict[str, dict[str, str | None]]:
    """Write the archive; return each file's channels (for YASA, the ones Nexus picks)."""
    from nexus.formats.edf import write_edf
    from nexus.sources.synthetic import synthesize_night

    channels: dict[str, dict[str, str | None]] = {}
    if n_real:
        (root / "real").mkdir(parents=True)
        for i in range(n_real):
            path = root / "real" / f"SC4001E0-copy{i:03d}.edf"
            _copy_with_patient(PSG, path, i)
            channels[str(path)] = {"eeg": "EEG Fpz-Cz", "eog": "EOG horizontal", "emg": None}
    if n_synth:
        (root / "synthetic").mkdir(parents=True)
        distinct = []
        for i in range(min(n_synth, DISTINCT_SYNTHETIC)):
            night = synthesize_night("typical_adult", hours=hours, seed=100 + i, channels=SYNTH_CHANNELS)
            rec = night.to_recording()
            distinct.append(root / f"seed{100 + i}.edf.src")
            write_edf(distinct[-1], rec.signals)
        for i in range(n_synth):
            path = root / "synthetic" / f"night{i:03d}.edf"
            _copy_with_patient(distinct[i % len(distinct)], path, i)
            channels[str(path)] = {"eeg": "EEG C4-M1", "eog": "EOG E1-M2", "emg": "EMG Chin"}
    return channels


def _copy_with_patient(src: Path, dst: Path, i: int) -> None:
    raw = bytearray(src.read_bytes())
    raw[8:88] = f"X X X copy-{i:04d}".ljust(80).encode()  # EDF+ header: local patient identification
    dst.write_bytes(bytes(raw))


def yasa_night(
    path: str, eeg: str, eog: str | None, emg: str | None
) -> tuple[list[int], list[list[float]], int]:
    """One night with YASA, as its users run it (MNE reads the EDF)."""
    import warnings

    warnings.filterwarnings("ignore")
    import mne
    import yasa

    raw = mne.io.read_raw_edf(path, preload=True, verbose=False)
    sls = yasa.SleepStaging(raw, eeg_name=eeg, eog_name=eog, emg_name=emg)
    hyp = sls.predict()  # a yasa.Hypnogram with the probabilities in .proba
    codes = {"WAKE": 0, "N1": 1, "N2": 2, "N3": 3, "REM": 4}
    stages = [codes[s] for s in hyp.hypno.tolist()]
    return stages, hyp.proba[list(codes)].to_numpy().tolist(), os.getpid()


def _warm_nexus() -> int:
    from nexus.facility.archive import stage_night

    stage_night(PSG)  # imports, compiled kernels from numba's cache, the classifier
    time.sleep(2.0)  # hold this worker so that every worker gets a warm-up task
    return os.getpid()


def _warm_yasa() -> int:
    yasa_night(str(PSG), "EEG Fpz-Cz", "EOG horizontal", None)  # imports, and YASA's first-call compilation
    time.sleep(2.0)
    return os.getpid()


def warm_workers(stager: str, workers: int) -> tuple[float, set[int]]:
    """Stage the 5-min excerpt once in every Ray worker (one blocking task each); return seconds and worker pids."""
    import ray

    t = time.perf_counter()
    task = ray.remote(num_cpus=1)(_warm_nexus if stager == "nexus" else _warm_yasa)
    pids = set(ray.get([task.remote() for _ in range(workers)]))
    return time.perf_counter() - t, pids


def run_yasa(files: dict[str, dict[str, str | None]], out: Path, workers: int) -> tuple[int, set[int]]:
    """Stage every file with YASA as Ray tasks; write a TSV per night and the statistics table."""
    import pandas as pd
    import ray

    from nexus.formats.hypnogram import write_hypnogram
    from nexus.staging.stats import sleep_statistics

    (out / "hypnograms").mkdir(parents=True)
    task = ray.remote(num_cpus=1)(yasa_night)
    queue = list(files.items())
    running: dict = {}
    rows = []
    pids = set()
    while queue or running:
        while queue and len(running) < workers:
            path, ch = queue.pop(0)
            running[task.remote(path, ch["eeg"], ch["eog"], ch["emg"])] = path
        done, _ = ray.wait(list(running), num_returns=1)
        for ref in done:
            path = running.pop(ref)
            stages, proba, pid = ray.get(ref)
            pids.add(pid)
            write_hypnogram(out / "hypnograms" / (Path(path).stem + ".tsv"), stages, 30.0, proba)
            rows.append({"night": path, **sleep_statistics(stages)})
    table = pd.DataFrame(rows)
    table.to_csv(out / "stats.csv", index=False)
    table.to_parquet(out / "stats.parquet", index=False)
    return len(rows), pids


def one_run(stager: str, archive: Path, files: dict, workers: int, out: Path) -> dict:
    import ray

    from nexus.facility.archive import connect_ray, stage_archive

    t = time.perf_counter()
    connect_ray(None, workers)
    ray_start = time.perf_counter() - t
    load = os.getloadavg()[0]
    try:
        warm, warm_pids = warm_workers(stager, workers)
        reused = None
        t = time.perf_counter()
        if stager == "nexus":
            s = stage_archive(archive, out, workers=workers, progress=False)
            nights, failed = s.staged, len(s.failed)
        else:
            (nights, pids), failed = run_yasa(files, out, workers), 0
            reused = pids <= warm_pids
        batch = time.perf_counter() - t
    finally:
        ray.shutdown()
    return {
        "nights": nights,
        "failed": failed,
        "batch_s": round(batch, 2),
        "nights_per_min": round(nights / batch * 60, 2),
        "ray_start_s": round(ray_start, 2),
        "worker_warmup_s": round(warm, 2),
        **({} if reused is None else {"batch_ran_in_warmed_workers": reused}),
        "load_avg_1min_before": round(load, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--real", type=int, default=16, help="copies of the 5-min Sleep-EDF excerpt")
    ap.add_argument("--synthetic", type=int, default=8, help="synthetic nights")
    ap.add_argument("--hours", type=float, default=2.0, help="length of each synthetic night")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("NEXUS_PROGRESS", "0")
    import yasa

    results: dict = {
        "machine": {"cpus": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "yasa_version": yasa.__version__,
        "archives": {},
    }
    with tempfile.TemporaryDirectory(prefix="nexus-bench-archive-") as tmp:
        for kind, n_real, n_synth in (("real_5min", args.real, 0), ("synthetic", 0, args.synthetic)):
            if not (n_real or n_synth):
                continue
            archive = Path(tmp) / kind
            t = time.perf_counter()
            files = build_archive(archive, n_real, n_synth, args.hours)
            info = {
                "nights": len(files),
                "minutes_per_night": 5.0 if n_real else args.hours * 60,
                "build_s": round(time.perf_counter() - t, 1),
                "runs": {},
            }
            for workers in args.workers:
                pair = {}
                for stager in ("nexus", "yasa"):
                    out = Path(tmp) / f"out-{kind}-{stager}-{workers}"
                    pair[stager] = one_run(stager, archive, files, workers, out)
                    shutil.rmtree(out)
                pair["ratio_nexus_to_yasa"] = round(
                    pair["nexus"]["nights_per_min"] / pair["yasa"]["nights_per_min"], 2
                )
                info["runs"][f"workers_{workers}"] = pair
            results["archives"][kind] = info
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
