"""``compare``: agreement of two hypnogram files, printed and optionally drawn or reported."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy.typing as npt

from nexus.core.checks import check_writable_path
from nexus.core.errors import InvalidInputError
from nexus.formats.hypnogram import read_hypnogram
from nexus.reports.agreement import Agreement, agreement
from nexus.reports.document import Image, Note, Report, Section, Table, write_report

__all__ = ["agreement_section", "compare_files"]


def compare_files(path: str | Path, reference: str | Path, *, fmt: str | None = None,
                  reference_fmt: str | None = None, output: str | Path | None = None) -> Agreement:
    """Read two hypnograms (any format), compare them, and write ``output`` (.png plot, .html or .pdf report)."""
    out = None
    if output is not None:
        out = Path(output)
        if out.suffix.lower() not in (".png", ".html", ".htm", ".pdf"):
            raise InvalidInputError(f"Cannot write '{out}': name the output *.png (plot), *.html or *.pdf (report).")
        check_writable_path(out, "comparison output")
    h = read_hypnogram(path, fmt)
    r = read_hypnogram(reference, reference_fmt)
    if abs(h.epoch_s - r.epoch_s) > 1e-9:
        raise InvalidInputError(f"The hypnograms have different epoch lengths ({h.epoch_s:g} s and {r.epoch_s:g} s); "
                                "re-score one of them in the other's epochs.")
    result = agreement(h.stages, r.stages, h.epoch_s)
    if out is not None:
        names = (Path(path).name, Path(reference).name)
        if out.suffix.lower() == ".png":
            from nexus.core.files import atomic_path
            from nexus.reports.plots import plot_agreement, to_png

            png = to_png(plot_agreement(result, h.stages, r.stages, names=names))
            with atomic_path(out) as tmp:
                tmp.write_bytes(png)
        else:
            rep = Report(f"Agreement: {names[0]} vs {names[1]}", "Epoch-by-epoch comparison of two hypnograms.")
            rep.sections.append(agreement_section(result, h.stages, r.stages, names))
            write_report(rep, out)
    return result


def _pct(v: float) -> str:
    return "n/a" if v != v else f"{100 * v:.1f}%"


def agreement_section(result: Agreement, stages: npt.ArrayLike, reference: npt.ArrayLike,
                      names: tuple[str, str], start: dt.datetime | None = None) -> Section:
    """A report section: overall figures, per-stage table, plot, notes."""
    from nexus.reports.plots import plot_agreement

    sec = Section(f"Agreement with {names[1]}")
    kappa = "n/a" if result.kappa != result.kappa else f"{result.kappa:.3f}"
    sec.blocks.append(
        f"{result.n_epochs} epochs compared: accuracy {_pct(result.accuracy)}, Cohen's kappa {kappa}, "
        f"macro F1 {_pct(result.macro_f1)}; {len(result.disagreements)} epochs disagree.")
    sec.blocks += [Note(n) for n in result.notes]
    sec.blocks.append(Table(["stage", "precision", "recall", "F1", "support (epochs)"],
                            [[k, _pct(d["precision"]), _pct(d["recall"]), _pct(d["f1"]), str(int(d["support"]))]
                             for k, d in result.per_stage.items()]))
    sec.blocks.append(Image.from_figure(plot_agreement(result, stages, reference, names=names, start=start),
                                        "hypnograms and confusion matrix"))
    return sec
