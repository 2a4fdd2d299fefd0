"""A report as a list of sections (paragraphs, notes, tables, figures), written as HTML or PDF.

The HTML file is self-contained: styles inline and figures as base64 PNG ``data:`` URIs, no external
reference, so it opens offline. The PDF is laid out on A4 pages with matplotlib's ``PdfPages``
(figures embedded as the same PNGs).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nexus.core.checks import check_writable_path
from nexus.core.errors import InvalidInputError
from nexus.core.files import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["Image", "Note", "Report", "Section", "Table", "write_report"]

FORMATS = (".html", ".htm", ".pdf")


@dataclass
class Note:
    """A plain-language warning shown prominently (missing channel, hypnogram longer than the recording…)."""

    text: str


@dataclass
class Table:
    """A small table of strings."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Image:
    """A figure as PNG bytes; ``width_in`` and ``height_in`` are its size in inches."""

    png: bytes
    width_in: float
    height_in: float
    alt: str = ""

    @classmethod
    def from_figure(cls, fig: Figure, alt: str = "") -> Image:
        """Render a matplotlib figure."""
        from nexus.reports.plots import to_png

        w, h = fig.get_size_inches()
        return cls(to_png(fig), float(w), float(h), alt)


Block = str | Note | Table | Image


@dataclass
class Section:
    """A titled part of a report; ``blocks`` are paragraphs (str), notes, tables and images, in order."""

    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    """A whole report."""

    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def section(self, title: str) -> Section:
        """Append and return a new section."""
        s = Section(title)
        self.sections.append(s)
        return s

    def find(self, title: str) -> Section | None:
        """The first section called ``title`` (None when absent)."""
        return next((s for s in self.sections if s.title == title), None)


def write_report(report: Report, path: str | Path) -> Path:
    """Write ``report`` as HTML (``.html``/``.htm``) or PDF (``.pdf``), chosen by the suffix; atomically."""
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise InvalidInputError(f"Cannot write a report as '{p.suffix or p.name}': name the output file "
                                "*.html or *.pdf.")
    p = check_writable_path(p, "report")
    with atomic_path(p) as tmp:
        if p.suffix.lower() == ".pdf":
            _write_pdf(report, tmp)
        else:
            tmp.write_text(to_html(report), encoding="utf-8")
    return p


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;max-width:1100px;margin:24px auto;
padding:0 16px;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:0}.subtitle{color:#555;margin-top:4px}
h2{font-size:1.2em;border-bottom:2px solid #4292c6;padding-bottom:3px;margin-top:1.8em}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.92em}
th,td{border:1px solid #ccc;padding:3px 9px;text-align:right}th{background:#eef4fa}
td:first-child,th:first-child{text-align:left}caption{text-align:left;color:#555;font-size:.9em;padding:2px 0}
.note{background:#fff4e5;border-left:4px solid #e6550d;padding:6px 10px;margin:8px 0}
img{max-width:100%;height:auto;display:block;margin:8px 0}footer{color:#888;font-size:.8em;margin-top:2em}
"""


def _html_block(b: Block) -> str:
    if isinstance(b, Note):
        return f'<p class="note">{html.escape(b.text)}</p>'
    if isinstance(b, Table):
        cap = f"<caption>{html.escape(b.caption)}</caption>" if b.caption else ""
        head = "".join(f"<th>{html.escape(c)}</th>" for c in b.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in b.rows)
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(b, Image):
        data = base64.b64encode(b.png).decode("ascii")
        return f'<img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}">'
    return f"<p>{html.escape(b)}</p>"


def to_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
    ]
    if report.subtitle:
        parts.append(f'<p class="subtitle">{html.escape(report.subtitle)}</p>')
    for s in report.sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>")
        parts += [_html_block(b) for b in s.blocks]
        parts.append("</section>")
    parts.append(f"<footer>Bedtime Nexus report, {report.created:%Y-%m-%d %H:%M} UTC. Research software, not a "
                 "medical device.</footer></body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- PDF

_PAGE_W, _PAGE_H = 8.27, 11.69  # A4, inches
_MARGIN = 0.6
_LINE = 0.18  # inches per 9-pt text line


class _PdfLayout:
    """Places blocks top to bottom on A4 pages, starting a new page when the next one does not fit."""

    def __init__(self, pdf: object, report: Report) -> None:
        self.pdf = pdf
        self.report = report
        self.fig: Figure | None = None
        self.y = 0.0  # inches from the top of the page
        self.page = 0

    def _new_page(self) -> None:
        from nexus.reports.plots import new_figure

        self.flush()
        self.fig = new_figure(_PAGE_W, _PAGE_H)
        self.fig.set_layout_engine("none")
        self.page += 1
        self.y = _MARGIN
        self.fig.text(1 - _MARGIN / _PAGE_W, 0.35 / _PAGE_H, f"{self.report.title} · page {self.page}",
                      ha="right", fontsize=7, color="#888888")

    def flush(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)  # type: ignore[attr-defined]
            self.fig = None

    def _room(self, height: float) -> None:
        if self.fig is None or self.y + height > _PAGE_H - _MARGIN:
            self._new_page()

    def _text(self, text: str, size: float = 9, **kw: object) -> None:
        assert self.fig is not None
        self.fig.text(_MARGIN / _PAGE_W, 1 - self.y / _PAGE_H, text, fontsize=size, va="top", **kw)  # type: ignore[arg-type]

    def title(self, text: str, subtitle: str) -> None:
        self._room(1.0)
        for line in textwrap.wrap(text, 60):  # 16-pt bold: about 60 characters fit the A4 width
            self._text(line, 16, weight="bold")
            self.y += 0.32
        for line in textwrap.wrap(subtitle, 100):
            self._text(line, 9, color="#555555")
            self.y += _LINE
        self.y += 0.1

    @staticmethod
    def image_height(im: Image) -> float:
        width = _PAGE_W - 2 * _MARGIN
        return min(width * im.height_in / im.width_in, _PAGE_H - 2 * _MARGIN)

    def heading(self, text: str, first: Block | None = None) -> None:
        # keep a heading with what follows it: a whole image, or a few lines of text
        follow = self.image_height(first) + 0.12 if isinstance(first, Image) else 5 * _LINE
        self._room(0.42 + follow)
        self.y += 0.12
        self._text(text, 12, weight="bold", color="#08306b")
        self.y += 0.3

    def paragraph(self, text: str, note: bool = False) -> None:
        lines = textwrap.wrap(("Note: " if note else "") + text, 105)
        for line in lines:
            self._room(_LINE)
            self._text(line, 9, color="#a63603" if note else "#222222")
            self.y += _LINE
        self.y += 0.06

    def table(self, t: Table) -> None:
        widths = [max(len(c), *(len(r[i]) for r in t.rows)) if t.rows else len(c) for i, c in enumerate(t.columns)]
        scale = min(0.085, (_PAGE_W - 2 * _MARGIN) / max(sum(w + 3 for w in widths), 1))
        size = 8 * scale / 0.085  # a wide table gets a smaller font, so that its columns do not overlap
        xs = [_MARGIN]
        for w in widths[:-1]:
            xs.append(xs[-1] + (w + 3) * scale)
        rows = [t.columns, *t.rows]
        if t.caption:
            self.paragraph(t.caption)
        for k, row in enumerate(rows):
            self._room(_LINE)
            assert self.fig is not None
            for i, (x, cell) in enumerate(zip(xs, row, strict=False)):
                right = i > 0
                xx = x + widths[i] * scale if right else x
                self.fig.text(xx / _PAGE_W, 1 - self.y / _PAGE_H, cell, fontsize=size, va="top",
                              ha="right" if right else "left", weight="bold" if k == 0 else "normal",
                              family="DejaVu Sans")
            self.y += _LINE
        self.y += 0.1

    def image(self, im: Image) -> None:
        import matplotlib.image as mpimg

        height = self.image_height(im)
        width = height * im.width_in / im.height_in
        self._room(height + 0.1)
        assert self.fig is not None
        ax = self.fig.add_axes((_MARGIN / _PAGE_W, 1 - (self.y + height) / _PAGE_H, width / _PAGE_W,
                                height / _PAGE_H))
        ax.imshow(mpimg.imread(io.BytesIO(im.png), format="png"), interpolation="none")  # embedded as is, not resampled
        ax.set_axis_off()
        self.y += height + 0.12


def _write_pdf(report: Report, path: Path) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(path, metadata={"Title": report.title, "Creator": "Bedtime Nexus"}) as pdf:
        lay = _PdfLayout(pdf, report)
        lay.title(report.title, report.subtitle)
        for s in report.sections:
            lay.heading(s.title, s.blocks[0] if s.blocks else None)
            for b in s.blocks:
                if isinstance(b, Note):
                    lay.paragraph(b.text, note=True)
                elif isinstance(b, Table):
                    lay.table(b)
                elif isinstance(b, Image):
                    lay.image(b)
                else:
                    lay.paragraph(b)
        lay.flush()
