"""Figures of the reports, drawn with matplotlib (imported lazily, Agg canvas, no pyplot state).

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure`; :func:`to_png` turns it into
PNG bytes (what the HTML and PDF writers embed). Time axes are in hours since the start of the
recording, labelled with clock times when the start is known.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nexus.core.stages import STAGE_LABELS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from nexus.reports.agreement import Agreement

__all__ = [
    "STAGE_COLORS",
    "new_figure",
    "plot_agreement",
    "plot_dreamscape",
    "plot_events",
    "plot_hypnogram",
    "plot_spectrogram",
    "plot_trend",
    "to_png",
]

#: colour per stage code (W N1 N2 N3 R), shared by hypnogram, hypnodensity and tables
STAGE_COLORS: dict[int, str] = {0: "#f2b134", 1: "#9ecae1", 2: "#4292c6", 3: "#08306b", 4: "#d7301f"}
#: vertical position of each stage code in a hypnogram: W on top, then R, N1, N2, N3 (as YASA)
_Y = {0: 4, 4: 3, 1: 2, 2: 1, 3: 0}
_Y_LABELS = ["N3", "N2", "N1", "R", "W"]
DPI = 110
_SPECTRA_BLOCK = 32  # epochs per block of epoch_spectra: its scratch stays in the cache


def new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas (no pyplot, no display needed); sizes in inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    """PNG bytes of ``fig``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _time_axis(ax: Axes, hours: float, start: dt.datetime | None) -> None:
    """Ticks every 2 or 1 hours, 15, 5 or 2 minutes (a few even on an excerpt); clock times when ``start`` is known."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    ax.set_xlim(0, max(hours, 1 / 60))
    if hours > 10:
        step = 2.0
    elif hours >= 2:
        step = 1.0
    elif hours >= 0.75:
        step = 0.25
    elif hours >= 0.25:
        step = 5 / 60
    else:
        step = 2 / 60
    ax.xaxis.set_major_locator(MultipleLocator(step))
    if start is None:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g} h" if step >= 0.25 else f"{60 * x:.0f} min"))
        ax.set_xlabel("time since start")
    else:
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda x, _: (start + dt.timedelta(hours=float(x))).strftime("%H:%M")))
        ax.set_xlabel(f"clock time (start {start:%Y-%m-%d %H:%M})")


def _stage_line(ax: Axes, stages: npt.NDArray[np.int64], epoch_s: float, **kw: Any) -> None:
    # lines with drawstyle steps-post: stairs() patches cost ~0.2 s each to lay out for a whole night
    lut = np.full(7, np.nan)
    for code, pos in _Y.items():
        lut[code + 2] = pos
    y = lut[np.clip(stages, -2, 4) + 2]
    t = np.arange(stages.size + 1) * epoch_s / 3600
    ax.plot(t, np.append(y, y[-1:]), drawstyle="steps-post", **kw)
    rem = np.where(stages == 4, 3.0, np.nan)  # REM drawn thick in red, as sleep labs do
    ax.plot(t, np.append(rem, rem[-1:]), drawstyle="steps-post", color=STAGE_COLORS[4], lw=3.5)


def _hypno_axes(ax: Axes) -> None:
    ax.set_yticks(range(5), _Y_LABELS)
    ax.set_ylim(-0.5, 4.5)
    ax.grid(axis="x", alpha=0.3)


def plot_hypnogram(stages: npt.ArrayLike, epoch_s: float, *, start: dt.datetime | None = None,
                   probabilities: npt.NDArray[np.float64] | None = None, title: str = "Hypnogram",
                   duration_s: float | None = None, confidence: npt.NDArray[np.float64] | None = None) -> Figure:
    """Hypnogram (W, R, N1, N2, N3 from top), with the hypnodensity below when probabilities are given.

    Without probabilities, a per-epoch ``confidence`` (probability of the chosen stage, as the live
    stager stores it) is drawn below instead.

    Artefact and unscored epochs are shaded grey. ``duration_s`` (the recording's length) extends the
    time axis so that a hypnogram shorter than the recording shows where scoring stops.
    """
    h = np.asarray(stages).astype(np.int64)
    hours = max(h.size * epoch_s, duration_s or 0.0) / 3600
    n_rows = 2 if probabilities is not None or confidence is not None else 1
    fig = new_figure(10, 2.6 if n_rows == 1 else 4.4)
    axes = fig.subplots(n_rows, 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": [1.2, 1][:n_rows]})[:, 0]
    ax = axes[0]
    _stage_line(ax, h, epoch_s, color="#333333", lw=1.2)
    for j in np.flatnonzero(h < 0):
        ax.axvspan(j * epoch_s / 3600, (j + 1) * epoch_s / 3600, color="#bbbbbb", alpha=0.6, lw=0)
    if duration_s and duration_s > h.size * epoch_s + epoch_s:
        ax.axvspan(h.size * epoch_s / 3600, duration_s / 3600, color="#f4cccc", alpha=0.6, lw=0)
        ax.text(h.size * epoch_s / 3600, 4.2, "  not scored", fontsize=8, va="top")
    _hypno_axes(ax)
    ax.set_title(title, loc="left", fontsize=10)
    if probabilities is not None:
        from matplotlib.colors import to_rgb
        from matplotlib.patches import Patch

        p = np.nan_to_num(np.asarray(probabilities, dtype=float)[: h.size])
        order = [3, 2, 1, 4, 0]  # N3 at the bottom, W on top
        cum = np.cumsum(p[:, order], axis=1)
        # an image, 200 levels high: the stage whose cumulative band holds each level (white above the total)
        levels = (np.arange(200) + 0.5) / 200
        band = (levels[:, None, None] >= cum[None, :, :]).sum(axis=2)
        colors = np.array([to_rgb(STAGE_COLORS[k]) for k in order] + [(1.0, 1.0, 1.0)])
        axes[1].imshow(colors[band], aspect="auto", origin="lower", interpolation="nearest",
                       extent=(0, p.shape[0] * epoch_s / 3600, 0, 1))
        handles = [Patch(color=STAGE_COLORS[k], label=STAGE_LABELS[k]) for k in order]
        axes[1].set_ylim(0, 1)
        axes[1].set_ylabel("probability")
        axes[1].set_title("Hypnodensity (stage probabilities per epoch)", loc="left", fontsize=10)
        axes[1].legend(handles=handles[::-1], ncols=1, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                       framealpha=0.8)
    elif confidence is not None:
        c = np.asarray(confidence, dtype=float)[: h.size]
        t = np.arange(c.size + 1) * epoch_s / 3600
        axes[1].plot(t, np.append(c, c[-1:]), drawstyle="steps-post", color="#4292c6", lw=0.8)
        axes[1].set_ylim(0, 1.02)
        axes[1].set_ylabel("probability")
        axes[1].grid(alpha=0.3)
        axes[1].set_title("Confidence of the live stager (probability of the stage it chose)", loc="left",
                          fontsize=10)
    _time_axis(axes[-1], hours, start)
    return fig


def epoch_spectra(x: npt.NDArray[np.float64], fs: float, epoch_s: float = 30.0,
                  fmax: float = 25.0) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Welch power spectral density per epoch (4-s Hann segments, half overlap), in µV²/Hz.

    Returns ``freqs`` (Hz, up to ``fmax``) and ``psd`` of shape (n_epochs, n_freqs); a trailing part
    shorter than one epoch is dropped.
    """
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy import fft

    n = round(epoch_s * fs)
    n_ep = x.size // n
    if n_ep == 0:
        return np.zeros(0), np.zeros((0, 0))
    seg = min(round(4 * fs), n)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(seg) / seg)
    win32 = win.astype(np.float32)
    f = np.fft.rfftfreq(seg, 1 / fs).astype(np.float64)
    keep = f <= fmax
    p = np.empty((n_ep, int(keep.sum())))
    # Welch by hand (scipy.signal.welch's detrending takes seconds on a whole night): float32 segments,
    # _SPECTRA_BLOCK epochs at a time (each epoch's spectrum alone, so the same numbers as all at once)
    for a in range(0, n_ep, _SPECTRA_BLOCK):
        b = min(a + _SPECTRA_BLOCK, n_ep)
        segs = sliding_window_view(x[a * n : b * n].reshape(b - a, n).astype(np.float32), seg,
                                   axis=1)[:, :: max(1, seg // 2)]
        spec = fft.rfft((segs - segs.mean(axis=-1, keepdims=True)) * win32, axis=-1, workers=-1)
        p[a:b] = (np.abs(spec[..., keep]) ** 2).mean(axis=1)
    p *= 2 / (fs * float((win**2).sum()))  # one-sided density, µV²/Hz
    return f[keep], p


def plot_spectrogram(x: npt.NDArray[np.float64], fs: float, *, start: dt.datetime | None = None,
                     channel: str = "EEG", epoch_s: float = 30.0, fmax: float = 25.0) -> Figure:
    """Whole-night spectrogram (dB, one column per 30-s epoch, colours clipped to the 2nd–98th percentile)."""
    finite = bool(np.isfinite(x).all())  # a whole night: copied by nan_to_num only when it has gaps
    f, p = epoch_spectra(x if finite else np.nan_to_num(x), fs, epoch_s, fmax)
    fig = new_figure(10, 2.6)
    ax = fig.add_subplot()
    hours = x.size / fs / 3600
    if p.size:
        db = 10 * np.log10(np.maximum(p, 1e-12))
        lo, hi = np.percentile(db, [2, 98])
        im = ax.imshow(db.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=lo, vmax=hi,
                       extent=(0, p.shape[0] * epoch_s / 3600, float(f[0]), float(f[-1])), interpolation="nearest")
        cb = fig.colorbar(im, ax=ax, pad=0.01)
        cb.set_label("dB µV²/Hz", fontsize=8)
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(f"Spectrogram of {channel}", loc="left", fontsize=10)
    _time_axis(ax, hours, start)
    return fig


def plot_events(rows: Sequence[tuple[str, npt.NDArray[np.float64]]], hours: float, *,
                start: dt.datetime | None = None, title: str = "Events") -> Figure:
    """One raster row per event kind: ``rows`` is a list of (label, onsets in seconds)."""
    fig = new_figure(10, 0.45 * max(len(rows), 1) + 1.0)
    ax = fig.add_subplot()
    colors = ["#08306b", "#6a51a3", "#d94801", "#238b45", "#cb181d", "#525252", "#8c6d31"]
    for i, (_label, onsets) in enumerate(rows):
        ax.eventplot([np.asarray(onsets, dtype=float) / 3600], lineoffsets=i, linelengths=0.7, linewidths=0.6,
                     colors=colors[i % len(colors)])
    ax.set_yticks(range(len(rows)), [f"{lab} ({len(o)})" for lab, o in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.invert_yaxis()
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    _time_axis(ax, hours, start)
    return fig


def plot_dreamscape(decisions: Sequence[dict[str, Any]], hours: float, *, start: dt.datetime | None = None,
                    stages: npt.NDArray[np.int64] | None = None, epoch_s: float = 30.0) -> Figure:
    """Dreamscape timeline: scenes as coloured bands, cues, CLAS clicks (coloured by phase), silences and wake.

    ``decisions`` are dicts with ``t_s``, ``kind``, ``command`` and ``inputs`` (database rows). A polar
    histogram of the clicks' phase sits on the right when there are clicks.
    """
    from matplotlib import colormaps

    # what happened is the command's kind (a "scene" decision may issue a silence); the decision's kind otherwise
    decisions = [{**d, "kind": (d.get("command") or {}).get("kind") or d["kind"]} for d in decisions]
    clicks = [d for d in decisions if d["kind"] == "click"]
    phases = np.array([float(d["inputs"].get("phase_deg", np.nan)) for d in clicks], dtype=float)
    fig = new_figure(10, 3.6 if stages is not None else 2.6)
    grid = fig.add_gridspec(2 if stages is not None else 1, 2, width_ratios=[5, 1])
    ax = fig.add_subplot(grid[-1, 0])
    scenes = sorted((d for d in decisions if d["kind"] in ("scene", "silence", "wake")), key=lambda d: d["t_s"])
    # a scene plays from its decision to the next scene, silence or wake
    palette = colormaps["Set2"]
    names: dict[str, int] = {}
    for i, d in enumerate(scenes):
        if d["kind"] != "scene":
            continue
        name = str((d.get("command") or {}).get("name", "scene"))
        end = scenes[i + 1]["t_s"] if i + 1 < len(scenes) else hours * 3600
        k = names.setdefault(name, len(names))
        ax.broken_barh([(d["t_s"] / 3600, (end - d["t_s"]) / 3600)], (3.6, 0.8), color=palette(k % 8))
    for name, k in names.items():
        ax.plot([], [], lw=6, color=palette(k % 8), label=f"scene: {name}")
    rows = {"cue": 2.5, "protect": 2.5, "silence": 1.5, "wake": 1.5}
    marks = {"cue": ("v", "#6a51a3"), "protect": ("s", "#238b45"), "silence": ("|", "#525252"),
             "wake": ("*", "#f2b134")}
    for kind, (marker, color) in marks.items():
        t = np.array([d["t_s"] for d in decisions if d["kind"] == kind], dtype=float) / 3600
        if t.size:
            ax.plot(t, np.full(t.size, rows[kind]), marker, color=color, ms=7 if kind != "silence" else 10,
                    label=f"{kind} ({t.size})", ls="none")
    if clicks:
        t = np.array([d["t_s"] for d in clicks], dtype=float) / 3600
        sc = ax.scatter(t, np.full(t.size, 0.5), c=phases, cmap="twilight", vmin=-180, vmax=180, marker="|", s=120,
                        linewidths=0.8)
        cb = fig.colorbar(sc, ax=ax, pad=0.01, aspect=12)
        cb.set_label("click phase (°)", fontsize=7)
    ax.set_yticks([0.5, 1.5, 2.5, 4.0], [f"CLAS clicks ({len(clicks)})", "silence / wake", "cues", "scenes"])
    ax.set_ylim(0, 4.6)
    ax.grid(axis="x", alpha=0.3)
    if names or any(d["kind"] in marks for d in decisions):
        ax.legend(fontsize=7, ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.35), frameon=False)
    _time_axis(ax, hours, start)
    if stages is not None:
        top = fig.add_subplot(grid[0, 0], sharex=ax)
        _stage_line(top, stages, epoch_s, color="#333333", lw=1.0)
        _hypno_axes(top)
        top.tick_params(labelbottom=False)
        top.set_title("Dreamscape timeline with the live hypnogram", loc="left", fontsize=10)
    else:
        ax.set_title("Dreamscape timeline", loc="left", fontsize=10)
    pol = fig.add_subplot(grid[:, 1], projection="polar")
    ok = phases[np.isfinite(phases)]
    if ok.size:
        counts, edges = np.histogram(np.radians(ok), bins=24, range=(-math.pi, math.pi))
        pol.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#6a51a3", alpha=0.8)
        mean = np.angle(np.mean(np.exp(1j * np.radians(ok))))
        pol.plot([mean, mean], [0, counts.max()], color="#cb181d", lw=2)
        pol.set_title(f"click phase, mean {math.degrees(mean):.0f}°", fontsize=8)
    else:
        pol.set_title("no CLAS clicks", fontsize=8)
    pol.set_yticklabels([])
    pol.tick_params(labelsize=6)
    return fig


def plot_agreement(result: Agreement, stages: npt.ArrayLike, reference: npt.ArrayLike, *,
                   start: dt.datetime | None = None, names: tuple[str, str] = ("scored", "reference")) -> Figure:
    """Both hypnograms (disagreeing epochs marked) and the confusion matrix in % of each reference stage."""
    a = np.asarray(stages).astype(np.int64)
    b = np.asarray(reference).astype(np.int64)
    fig = new_figure(11, 3.6)
    grid = fig.add_gridspec(2, 2, width_ratios=[3, 1])
    ax0 = fig.add_subplot(grid[0, 0])
    ax1 = fig.add_subplot(grid[1, 0], sharex=ax0)
    for ax, h, name in ((ax0, a, names[0]), (ax1, b, names[1])):
        _stage_line(ax, h, result.epoch_s, color="#333333", lw=1.0)
        _hypno_axes(ax)
        ax.set_title(name, loc="left", fontsize=9)
    dis = result.disagreements[:, 0] * result.epoch_s / 3600
    ax0.plot(dis, np.full(dis.size, 4.45), "|", color="#cb181d", ms=5, label=f"{dis.size} disagreeing epochs")
    ax0.legend(fontsize=7, loc="lower right")
    ax0.tick_params(labelbottom=False)
    _time_axis(ax1, max(a.size, b.size) * result.epoch_s / 3600, start)
    axc = fig.add_subplot(grid[:, 1])
    conf = result.confusion.astype(float)
    share = 100 * conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
    axc.imshow(share, cmap="Blues", vmin=0, vmax=100)
    for i in range(5):
        for j in range(5):
            axc.text(j, i, f"{share[i, j]:.0f}", ha="center", va="center", fontsize=7,
                     color="white" if share[i, j] > 60 else "black")
    axc.set_xticks(range(5), STAGE_LABELS, fontsize=7)
    axc.set_yticks(range(5), STAGE_LABELS, fontsize=7)
    axc.set_xlabel(names[0], fontsize=8)
    axc.set_ylabel(names[1], fontsize=8)
    kappa = "n/a" if math.isnan(result.kappa) else f"{result.kappa:.2f}"
    axc.set_title(f"% of {names[1]} stage\naccuracy {100 * result.accuracy:.1f}%, κ {kappa}", fontsize=8)
    return fig


def plot_trend(dates: Sequence[str], metrics: dict[str, Sequence[float]], stimulated: Sequence[bool],
               title: str = "Trend across nights") -> Figure:
    """One small panel per metric over nights; natural nights as open circles, stimulated as filled."""
    n = len(metrics)
    cols = 3
    rows = max(1, math.ceil(n / cols))
    fig = new_figure(10, 2.0 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    x = np.arange(len(dates))
    stim = np.asarray(stimulated, dtype=bool)
    for ax, (name, values) in zip(axes.ravel(), metrics.items(), strict=False):
        v = np.asarray(values, dtype=float)
        ax.plot(x, v, color="#999999", lw=0.8)
        ax.plot(x[stim], v[stim], "o", color="#d94801", ms=5, label="stimulated")
        ax.plot(x[~stim], v[~stim], "o", mfc="white", mec="#08306b", ms=5, label="natural")
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_xticks(x, list(dates), fontsize=6, rotation=45, ha="right")
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    return fig
