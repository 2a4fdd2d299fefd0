"""Read and write hypnograms in every format the field uses.

Formats (the ``fmt`` names):

======================  ========================================================================
``tsv``                 BIDS-like ``onset  duration  stage`` (tab-separated, header line), then
                        optional ``p_W p_N1 p_N2 p_N3 p_R`` probability columns (hypnodensity)
``csv``                 the same columns, comma-separated
``yasa-int``            YASA ints, one epoch per line (0=W 1=N1 2=N2 3=N3 4=R, -1 art, -2 uns);
                        lines starting with ``#`` are comments
``yasa-str``            YASA strings, one epoch per line (W, N1, N2, N3, R; also S1-S4, REM, ART…)
``edf``                 Sleep-EDF EDF+ annotations ("Sleep stage W/1/2/3/4/R/?", "Movement time")
``sleep-edf-csv``       the 1-Hz Sleep-EDF CSVs: one value per second, 0=W 1=S1 2=S2 3=S3 4=S4
                        5=REM 6=artefact 7=movement 9=unknown
``nsrr-xml``            NSRR XML (``ScoredEvent`` with ``EventType`` "Stages|Stages")
======================  ========================================================================

R&K stages are mapped to AASM when read: S3 and S4 → N3, movement time → W (as for
statistics), artefact → -1 (ART), unknown / "?" → -2 (UNS).

Writes are atomic (temporary file in the same folder, then rename). :func:`format_for_path` picks the
format from a file name's extension (``.tsv``, ``.csv``, ``.edf``, ``.xml``, ``.txt``).
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_file_exists, check_number, check_option, check_writable_path
from nexus.core.errors import DataFormatError, InvalidInputError
from nexus.core.files import atomic_path
from nexus.core.stages import EPOCH_S, STAGE_LABELS, Stage, parse_stage

FORMATS: tuple[str, ...] = ("tsv", "csv", "yasa-int", "yasa-str", "edf", "sleep-edf-csv", "nsrr-xml")
"""Known hypnogram formats (values of ``fmt``)."""

EXTENSIONS: dict[str, tuple[str, ...]] = {
    ".tsv": ("tsv",), ".csv": ("csv", "sleep-edf-csv"), ".edf": ("edf",), ".xml": ("nsrr-xml",),
    ".txt": ("yasa-int", "yasa-str"),
}
"""File extension → the formats a file with it may hold (the first is the default)."""

#: R&K codes of the 1-Hz Sleep-EDF CSVs → AASM stage codes
_SLEEPEDF_CSV_CODES: dict[int, int] = {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 6: -1, 7: 0, 9: -2}

#: Sleep-EDF EDF+ annotation texts → AASM stage codes
_SLEEPEDF_ANNOTATIONS: dict[str, int] = {
    "sleep stage w": 0, "sleep stage 1": 1, "sleep stage 2": 2, "sleep stage 3": 3, "sleep stage 4": 3,
    "sleep stage r": 4, "sleep stage ?": -2, "movement time": 0,
}
_SLEEPEDF_LABELS: dict[int, str] = {
    0: "Sleep stage W", 1: "Sleep stage 1", 2: "Sleep stage 2", 3: "Sleep stage 3", 4: "Sleep stage R",
    -1: "Sleep stage ?", -2: "Sleep stage ?",
}

#: NSRR ``EventConcept`` numeric suffix → AASM stage codes (R&K: 3 and 4 → N3; 5 REM; 6 movement; 9 unscored)
_NSRR_CODES: dict[int, int] = {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 6: 0, 9: -2}
_NSRR_CONCEPTS: dict[int, str] = {
    0: "Wake|0", 1: "Stage 1 sleep|1", 2: "Stage 2 sleep|2", 3: "Stage 3 sleep|3", 4: "REM sleep|5",
    -1: "Unscored|9", -2: "Unscored|9",
}

_PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{s}" for s in STAGE_LABELS)


@dataclass(frozen=True)
class Hypnogram:
    """A scored night: one stage per epoch, optionally with stage probabilities.

    Attributes
    ----------
    stages : ndarray of int8, shape (n_epochs,)
        YASA stage codes (0=W 1=N1 2=N2 3=N3 4=R, -1 artefact, -2 unscored).
    epoch_s : float
        Epoch length in seconds.
    probabilities : ndarray of float, shape (n_epochs, 5), optional
        Probability of W, N1, N2, N3, R per epoch (hypnodensity), when known.
    """

    stages: npt.NDArray[np.int8]
    epoch_s: float = EPOCH_S
    probabilities: npt.NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return int(self.stages.size)

    @property
    def labels(self) -> list[str]:
        """Stage labels per epoch (``"W"``, ``"N1"``, …, ``"ART"``, ``"UNS"``)."""
        return [Stage(int(c)).label for c in self.stages]

    @property
    def duration(self) -> float:
        """Length of the hypnogram in seconds."""
        return float(self.stages.size * self.epoch_s)


# --------------------------------------------------------------------------- helpers


def _as_stages(stages: npt.ArrayLike) -> npt.NDArray[np.int8]:
    arr = np.asarray(stages)
    if arr.ndim != 1:
        raise InvalidInputError(f"Invalid value for 'stages': expected a 1-D sequence, got shape {arr.shape}.")
    if arr.dtype.kind in "USO":
        return np.array([int(parse_stage(str(x))) for x in arr], dtype=np.int8)
    if arr.size and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InvalidInputError("Invalid value for 'stages': contains NaN or infinite values.")
    codes = arr.astype(np.int64)
    bad = (codes < -2) | (codes > 4)
    if arr.dtype.kind == "f":
        bad |= codes != arr
    if bad.any():
        raise InvalidInputError(
            f"Invalid stage code {arr[bad][0]}: expected -2..4 (UNS, ART, W, N1, N2, N3, R)."
        )
    return codes.astype(np.int8)


def _atomic_write(path: Path, payload: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def _intervals_to_epochs(
    onsets: Sequence[float], durations: Sequence[float], codes: Sequence[int], epoch_s: float, what: str
) -> npt.NDArray[np.int8]:
    """Expand scored intervals ``(onset, duration, code)`` into one code per epoch (gaps → UNS)."""
    if not len(codes):
        raise DataFormatError(f"No sleep stages found in {what}. Check that it is a hypnogram file.")
    on = np.asarray(onsets, dtype=float)
    du = np.asarray(durations, dtype=float)
    first = on.min()
    start = np.rint((on - first) / epoch_s).astype(np.int64)
    count = np.maximum(np.rint(du / epoch_s).astype(np.int64), 1)
    out = np.full(int((start + count).max()), int(Stage.UNS), dtype=np.int8)
    for s, c, code in zip(start, count, codes, strict=True):  # one iteration per scored interval
        out[s : s + c] = code
    return out


def format_for_path(path: str | Path, fmt: str | None = None) -> str:
    """The format to write ``path`` in: ``fmt`` when it fits the extension, else the extension's default.

    Parameters
    ----------
    path : path-like
        The output file; ``-`` (standard output) takes any format, ``tsv`` by default (``edf`` is binary:
        the caller writes its bytes, :func:`format_hypnogram`, to ``sys.stdout.buffer``).
    fmt : str, optional
        One of :data:`FORMATS`.

    Raises
    ------
    InvalidInputError
        Unknown ``fmt``, an extension no format uses (with no ``fmt``), or a ``fmt`` that does not fit the
        extension (e.g. ``tsv`` into ``hypno.edf``).
    """
    if fmt is not None:
        check_option("hypnogram format", fmt, FORMATS)
    name = str(path)
    if name == "-":
        return fmt or "tsv"
    suffix = Path(name).suffix.lower()
    known = ", ".join(f"{ext} ({'/'.join(f)})" for ext, f in EXTENSIONS.items())
    if suffix not in EXTENSIONS:
        if fmt is not None:
            return fmt
        raise InvalidInputError(
            f"Cannot tell the hypnogram format of '{name}' from its extension: use {known}, or give --format."
        )
    if fmt is None:
        return EXTENSIONS[suffix][0]
    if fmt not in EXTENSIONS[suffix]:
        raise InvalidInputError(
            f"Format '{fmt}' does not fit '{name}': a {suffix} file holds {'/'.join(EXTENSIONS[suffix])}. "
            f"Change the extension or drop --format ({known})."
        )
    return fmt


def _sniff(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".edf", ".bdf"):
        return "edf"
    if suffix == ".xml":
        return "nsrr-xml"
    head = path.read_bytes()[:4096].decode("utf-8", errors="replace")
    if head.lstrip().startswith("<"):
        return "nsrr-xml"
    lines = [ln.strip() for ln in head.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return "yasa-int"
    if "\t" in lines[0] and "onset" in lines[0].lower():
        return "tsv"
    if suffix == ".tsv":
        return "tsv"
    if suffix == ".csv" and "," in lines[0] and "onset" in lines[0].lower():
        return "csv"
    if suffix == ".csv" and ".edf" in path.name.lower():
        return "sleep-edf-csv"
    if re.fullmatch(r"-?\d+", lines[0]):
        return "sleep-edf-csv" if suffix == ".csv" else "yasa-int"
    return "yasa-str"


# --------------------------------------------------------------------------- readers


def _data_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _read_yasa(path: Path, epoch_s: float) -> Hypnogram:
    lines = _data_lines(path.read_text(encoding="utf-8-sig"))
    if not lines:
        raise DataFormatError(f"No sleep stages found in '{path}'. Check that it is a hypnogram file.")
    try:
        stages = np.array([int(parse_stage(int(x) if re.fullmatch(r"-?\d+", x) else x)) for x in lines], np.int8)
    except InvalidInputError as exc:
        raise DataFormatError(f"Cannot read '{path}' as a YASA hypnogram: {exc}") from None
    return Hypnogram(stages, epoch_s)


def _read_tsv(path: Path, delimiter: str = "\t") -> Hypnogram:
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO("\n".join(_data_lines(text))), delimiter=delimiter))
    if not rows:
        raise DataFormatError(f"No sleep stages found in '{path}'. Check that it is a hypnogram file.")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ("onset", "duration", "stage") if c not in header]
    if missing:
        raise DataFormatError(
            f"Cannot read '{path}' as TSV hypnogram: missing column(s) {', '.join(missing)} in the header "
            f"(found: {', '.join(header)}). Expected 'onset<TAB>duration<TAB>stage'."
        )
    i_on, i_du, i_st = (header.index(c) for c in ("onset", "duration", "stage"))
    i_p = [header.index(c.lower()) for c in _PROB_COLUMNS if c.lower() in header]
    onsets, durs, codes, probs = [], [], [], []
    for n, row in enumerate(rows[1:], start=2):
        try:
            onsets.append(float(row[i_on]))
            durs.append(float(row[i_du]))
            codes.append(int(parse_stage(row[i_st])))
            if len(i_p) == 5:
                probs.append([float(row[i]) for i in i_p])
        except (IndexError, ValueError) as exc:
            why = str(exc).rstrip(".")
            raise DataFormatError(f"Cannot read line {n} of '{path}': {why}. Fix or remove that line.") from None
    if not codes:
        raise DataFormatError(f"No sleep stages found in '{path}'. Check that it is a hypnogram file.")
    epoch_s = float(np.median(durs))
    if epoch_s <= 0:
        raise DataFormatError(f"Cannot read '{path}': epoch durations must be > 0 s, got {epoch_s:g} s.")
    stages = _intervals_to_epochs(onsets, durs, codes, epoch_s, f"'{path}'")
    p = None
    if probs and stages.size == len(codes):
        p = np.asarray(probs, dtype=np.float64)
    return Hypnogram(stages, epoch_s, p)


def _read_sleep_edf_csv(path: Path, epoch_s: float) -> Hypnogram:
    lines = _data_lines(path.read_text(encoding="utf-8-sig"))
    try:
        values = np.array([int(float(ln.split(",")[0])) for ln in lines], dtype=np.int64)
    except ValueError as exc:
        raise DataFormatError(f"Cannot read '{path}' as a 1-Hz Sleep-EDF CSV: {exc}.") from None
    unknown = sorted(set(np.unique(values).tolist()) - set(_SLEEPEDF_CSV_CODES))
    if unknown:
        raise DataFormatError(
            f"Cannot read '{path}' as a 1-Hz Sleep-EDF CSV: unknown code(s) {unknown}; "
            "expected 0-7 or 9 (0=W 1-4=S1-S4 5=REM 6=artefact 7=movement 9=unknown)."
        )
    step = round(epoch_s)
    n = values.size // step
    lut = np.full(10, -2, dtype=np.int8)
    for k, v in _SLEEPEDF_CSV_CODES.items():
        lut[k] = v
    return Hypnogram(lut[values[: n * step : step]], float(epoch_s))


def _read_edf_annotations(path: Path, epoch_s: float) -> Hypnogram:
    from nexus.formats.edf import read_edf

    rec = read_edf(path)
    on, du, codes = [], [], []
    for a in rec.annotations:
        key = " ".join(a.text.strip().lower().split())
        if key in _SLEEPEDF_ANNOTATIONS:
            on.append(a.onset)
            du.append(a.duration if a.duration > 0 else epoch_s)
            codes.append(_SLEEPEDF_ANNOTATIONS[key])
        elif key.startswith("sleep stage "):
            try:
                on.append(a.onset)
                du.append(a.duration if a.duration > 0 else epoch_s)
                codes.append(int(parse_stage(key.removeprefix("sleep stage "))))
            except InvalidInputError:
                on.pop(), du.pop()
    return Hypnogram(_intervals_to_epochs(on, du, codes, epoch_s, f"the annotations of '{path}'"), epoch_s)


def _read_nsrr_xml(path: Path, epoch_s: float) -> Hypnogram:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DataFormatError(f"Cannot read '{path}' as NSRR XML: {exc}.") from None
    on, du, codes = [], [], []
    for ev in root.iter("ScoredEvent"):
        etype = (ev.findtext("EventType") or "").lower()
        concept = ev.findtext("EventConcept") or ""
        if not etype.startswith("stages"):
            continue
        m = re.search(r"\|\s*(\d+)\s*$", concept)
        if m is None or int(m.group(1)) not in _NSRR_CODES:
            raise DataFormatError(
                f"Cannot read '{path}': unknown stage concept '{concept}' (expected e.g. 'Stage 2 sleep|2')."
            )
        try:
            on.append(float(ev.findtext("Start") or "nan"))
            du.append(float(ev.findtext("Duration") or "nan"))
        except ValueError as exc:
            raise DataFormatError(f"Cannot read '{path}': bad Start/Duration ({exc}).") from None
        codes.append(_NSRR_CODES[int(m.group(1))])
    return Hypnogram(_intervals_to_epochs(on, du, codes, epoch_s, f"'{path}'"), epoch_s)


def read_hypnogram(path: str | Path, fmt: str | None = None, *, epoch_s: float = EPOCH_S) -> Hypnogram:
    """Read a hypnogram in any known format.

    Parameters
    ----------
    path : path-like
        The file.
    fmt : str, optional
        One of :data:`FORMATS`; guessed from the name and content when omitted.
    epoch_s : float
        Epoch length in seconds for formats that do not store it (YASA ints/strings, the 1-Hz CSV,
        EDF+ and XML are resampled to it). TSV files carry their own.

    Returns
    -------
    Hypnogram
        ``stages`` as int8 YASA codes (R&K S3+S4 → N3, movement → W, artefact → -1, unknown → -2).

    Raises
    ------
    NotFoundError
        The file does not exist.
    InvalidInputError
        Unknown format name (the message lists the known formats).
    DataFormatError
        Unreadable content.
    """
    p = check_file_exists(path, "hypnogram")
    epoch_s = check_number("epoch_s", epoch_s, gt=0, unit="s")
    if fmt is None:
        fmt = _sniff(p)
    elif fmt not in FORMATS:
        check_option("hypnogram format", fmt, FORMATS)  # a bad option (exit 2), as in every command
    try:
        if fmt == "tsv":
            return _read_tsv(p)
        if fmt == "csv":
            return _read_tsv(p, ",")
        if fmt in ("yasa-int", "yasa-str"):
            return _read_yasa(p, epoch_s)
        if fmt == "sleep-edf-csv":
            return _read_sleep_edf_csv(p, epoch_s)
        if fmt == "edf":
            return _read_edf_annotations(p, epoch_s)
        return _read_nsrr_xml(p, epoch_s)
    except UnicodeDecodeError:
        raise DataFormatError(
            f"Cannot read '{p}' as a hypnogram: it is not text. Known formats: {', '.join(FORMATS)}."
        ) from None


# --------------------------------------------------------------------------- writers


def _format_tsv(
    stages: npt.NDArray[np.int8], epoch_s: float, probabilities: npt.NDArray[np.float64] | None, sep: str = "\t"
) -> str:
    cols = ["onset", "duration", "stage"] + (list(_PROB_COLUMNS) if probabilities is not None else [])
    lines = [sep.join(cols)]
    labels = [Stage(int(c)).label for c in stages]
    for i, lab in enumerate(labels):
        row = [f"{i * epoch_s:g}", f"{epoch_s:g}", lab]
        if probabilities is not None:
            row += [f"{v:.4f}" for v in probabilities[i]]
        lines.append(sep.join(row))
    return "\n".join(lines) + "\n"


def _format_nsrr(stages: npt.NDArray[np.int8], epoch_s: float) -> bytes:
    root = ET.Element("PSGAnnotation")
    ET.SubElement(root, "SoftwareVersion").text = "Bedtime Nexus"
    ET.SubElement(root, "EpochLength").text = f"{epoch_s:g}"
    events = ET.SubElement(root, "ScoredEvents")
    for i, code in enumerate(stages):
        ev = ET.SubElement(events, "ScoredEvent")
        ET.SubElement(ev, "EventType").text = "Stages|Stages"
        ET.SubElement(ev, "EventConcept").text = _NSRR_CONCEPTS[int(code)]
        ET.SubElement(ev, "Start").text = f"{i * epoch_s:g}"
        ET.SubElement(ev, "Duration").text = f"{epoch_s:g}"
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def format_hypnogram(
    stages: npt.ArrayLike,
    epoch_s: float = EPOCH_S,
    probabilities: npt.ArrayLike | None = None,
    fmt: str = "tsv",
) -> bytes:
    """A hypnogram as the bytes of a file in format ``fmt`` (see :func:`write_hypnogram`)."""
    check_option("hypnogram format", fmt, FORMATS)
    epoch_s = check_number("epoch_s", epoch_s, gt=0, unit="s")
    codes = _as_stages(stages)
    probs = None
    if probabilities is not None:
        probs = np.asarray(probabilities, dtype=np.float64)
        if probs.shape != (codes.size, 5):
            raise InvalidInputError(
                f"Invalid value for 'probabilities': expected shape ({codes.size}, 5), got {probs.shape}."
            )
    if fmt in ("tsv", "csv"):
        return _format_tsv(codes, epoch_s, probs, "\t" if fmt == "tsv" else ",").encode()
    if fmt == "yasa-int":
        return ("\n".join(str(int(c)) for c in codes) + "\n").encode()
    if fmt == "yasa-str":
        return ("\n".join(Stage(int(c)).label for c in codes) + "\n").encode()
    if fmt == "sleep-edf-csv":
        inv = {0: 0, 1: 1, 2: 2, 3: 3, 4: 5, -1: 6, -2: 9}
        step = round(epoch_s)
        return ("\n".join(str(inv[int(c)]) for c in np.repeat(codes, step)) + "\n").encode()
    if fmt == "nsrr-xml":
        return _format_nsrr(codes, epoch_s)
    return _format_edf_annotations(codes, epoch_s)


def write_hypnogram(
    path: str | Path,
    stages: npt.ArrayLike,
    epoch_s: float = EPOCH_S,
    probabilities: npt.ArrayLike | None = None,
    fmt: str = "tsv",
) -> Path:
    """Write a hypnogram (atomically).

    Parameters
    ----------
    path : path-like
        Output file; its folder must exist.
    stages : array-like of int or str, shape (n_epochs,)
        YASA codes (-2..4) or labels (``"W"``, ``"N2"``, ``"REM"``, …).
    epoch_s : float
        Epoch length in seconds.
    probabilities : array-like, shape (n_epochs, 5), optional
        Probabilities of W, N1, N2, N3, R per epoch; written as ``p_W … p_R`` columns (TSV and CSV only).
    fmt : str
        One of :data:`FORMATS` (:func:`format_for_path` picks it from the extension).

    Returns
    -------
    Path
        The written file.

    Notes
    -----
    TSV/CSV columns: ``onset`` (s from the start), ``duration`` (s), ``stage`` (label), then
    ``p_W p_N1 p_N2 p_N3 p_R`` when probabilities are given. Artefact and unscored epochs are
    written as "Sleep stage ?" in EDF+ and "Unscored|9" in NSRR XML (those formats have no artefact code).
    """
    check_option("hypnogram format", fmt, FORMATS)
    out = check_writable_path(path, "hypnogram")
    _atomic_write(out, format_hypnogram(stages, epoch_s, probabilities, fmt))
    return out


def _format_edf_annotations(codes: npt.NDArray[np.int8], epoch_s: float) -> bytes:
    import tempfile

    import edfio

    # merge runs of the same stage into one annotation, as Sleep-EDF does
    change = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [codes.size]])
    anns = [
        edfio.EdfAnnotation(float(s * epoch_s), float((e - s) * epoch_s), _SLEEPEDF_LABELS[int(codes[s])])
        for s, e in zip(starts, ends, strict=True)
    ] if codes.size else []
    edf = edfio.Edf([], annotations=anns)
    with tempfile.TemporaryDirectory(prefix="nexus-hypno-") as tmp:
        path = Path(tmp) / "hypnogram.edf"
        edf.write(path)
        return path.read_bytes()
