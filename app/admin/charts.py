"""Server-rendered SVG charts for the embedded page (docs/metrics.md: the page works without
extra JavaScript). Pure functions from numbers to markup.

Accessible by construction: every chart is ``role="img"`` with a ``<title>`` and an ``aria-label``
that say what it shows, axes carry labels, every mark carries its value as text, and series differ
by pattern as well as colour (never colour alone).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count

from markupsafe import Markup, escape

Format = Callable[[float], str]

_ids = count(1)
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'
INK = "#202223"
MUTED = "#616161"
# Each at least 3:1 against the white card (WCAG 1.4.11); the hatch of the second is drawn in it.
SERIES_COLOURS = ("#2c6ecb", "#8a6500", "#6d7175")
SERIES_PATTERNS = ("solid", "hatch", "dots")


# A phone's card: 360 px less the page's and the card's padding on each side (8 + 12, admin.css).
FIT_WIDTH = 320
MIN_PLOT = 100
LINE = 16  # a line of 12 px text
# An upper estimate of a string's width in the charts' sans-serif at 12 px (0.62 em a character).
EM_PER_CHARACTER = 0.62


def _text_width(text: str, size: float = 12) -> float:
    return len(text) * size * EM_PER_CHARACTER


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")


def _open(width: int, height: int, title: str, description: str, role: str = "img") -> tuple[str, str]:
    """The chart's root: ``role="img"`` for a picture; ``role="group"`` when it holds links (an
    image's children are presentational, so its links would be hidden from assistive technology)."""
    uid = f"chart{next(_ids)}"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="{role}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" '
        f'aria-labelledby="{uid}-title {uid}-desc" aria-label="{escape(title)}: {escape(description)}" '
        f'{FONT} font-size="12">'
        f'<title id="{uid}-title">{escape(title)}</title><desc id="{uid}-desc">{escape(description)}</desc>'
    )
    return uid, head


def _text(x: float, y: float, text: str, *, anchor: str = "middle", fill: str = INK, extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{(" " + extra) if extra else ""}>'
        f"{escape(text)}</text>"
    )


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG 2 relative luminance (https://www.w3.org/TR/WCAG22/#dfn-relative-luminance)."""
    r, g, b = (_linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def rgb_of(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` or ``rgb(r,g,b)`` as a tuple."""
    if colour.startswith("#"):
        return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    r, g, b = (int(v) for v in colour.removeprefix("rgb(").removesuffix(")").split(","))
    return r, g, b


# The heat ramp, lightest to darkest. Its light end still stands out from the white card at 3:1
# (WCAG 1.4.11, non-text contrast); each cell's number is black or white, whichever reads better,
# and on every colour of the ramp that is at least 4.5:1 (WCAG 1.4.3); tests/admin/test_charts.py
# walks the ramp to hold both.
HEAT_LIGHT = (92, 142, 210)
HEAT_DARK = (16, 52, 110)
HEAT_TEXT = ("#000000", "#ffffff")


def _heat_colour(share: float) -> tuple[str, str]:
    """(fill, text colour) for a cell at ``share`` of the chart's largest value (light → dark blue)."""
    share = max(0.0, min(1.0, share))
    r, g, b = (round(lo + (hi - lo) * share) for lo, hi in zip(HEAT_LIGHT, HEAT_DARK, strict=True))
    ink = max(HEAT_TEXT, key=lambda text: contrast((r, g, b), rgb_of(text)))
    return f"rgb({r},{g},{b})", ink


def heat_map(
    title: str,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    x_label: str,
    y_label: str,
    fmt: Format = _number,
    cell_width: int = 50,
    cell_height: int = 34,
    description: str | None = None,
    notes: Sequence[Sequence[str | None]] | None = None,
    links: Sequence[Sequence[str | None]] | None = None,
    link_words: str = "show these customers",
) -> Markup:
    """A grid of cells, darker for larger values, each cell showing its value; None cells blank.
    ``notes`` (per cell) is added to the cell's tooltip, e.g. the segment the cell belongs to.
    ``links`` (per cell) makes a cell a link (focusable, named by its row, column, value, note and
    ``link_words``), e.g. to the customers of that cell."""
    # room for the rotated axis label and the longest row label (about 7 px a character at 12 px),
    # so a 5 × 5 grid fits a 360 px phone at its drawn size
    left, top, bottom = 34 + 7 * max((len(label) for label in row_labels), default=3), 12, 46
    width = left + cell_width * max(len(column_labels), 1) + 12
    height = top + cell_height * max(len(row_labels), 1) + bottom
    flat = [v for row in values for v in row if v is not None]
    peak = max(flat) if flat else 0.0
    uid, svg = _open(
        width,
        height,
        title,
        description or f"{y_label} by {x_label}, values in each cell",
        role="group",  # its cells are focusable: an image's children would be hidden
    )
    parts = [svg]
    for i, label in enumerate(row_labels):
        y = top + i * cell_height
        parts.append(_text(left - 8, y + cell_height / 2 + 4, label, anchor="end"))
        for j, value in enumerate(values[i] if i < len(values) else []):
            x = left + j * cell_width
            if value is None:
                parts.append(
                    f'<rect x="{x}" y="{y}" width="{cell_width - 2}" height="{cell_height - 2}" '
                    f'fill="#ffffff" stroke="#e1e3e5"/>'
                )
                continue
            fill, ink = _heat_colour(value / peak if peak else 0.0)
            note = notes[i][j] if notes is not None and i < len(notes) and j < len(notes[i]) else None
            link = links[i][j] if links is not None and i < len(links) and j < len(links[i]) else None
            words = f"{label}, {column_labels[j]}: {fmt(value)}{f' ({note})' if note else ''}"
            if link:
                name = escape(f"{words}: {link_words}")
                parts.append(f'<a class="cell-link" href="{escape(link)}" aria-label="{name}">')
            else:  # still reachable from the keyboard, and named, like the linked cells
                parts.append(f'<g class="cell" tabindex="0" role="img" aria-label="{escape(words)}">')
            parts.append(
                f'<rect class="cell" x="{x}" y="{y}" width="{cell_width - 2}" height="{cell_height - 2}" '
                f'fill="{fill}" stroke="#ffffff"><title>{escape(words)}</title></rect>'
            )
            parts.append(_text(x + cell_width / 2 - 1, y + cell_height / 2 + 4, fmt(value), fill=ink))
            parts.append("</a>" if link else "</g>")
    axis_y = top + cell_height * len(row_labels)
    for j, label in enumerate(column_labels):
        parts.append(_text(left + j * cell_width + cell_width / 2 - 1, axis_y + 16, label))
    parts.append(_text(left + cell_width * len(column_labels) / 2, height - 8, x_label, fill=MUTED))
    parts.append(
        _text(
            14,
            top + cell_height * len(row_labels) / 2,
            y_label,
            fill=MUTED,
            extra=f'transform="rotate(-90 14 {top + cell_height * len(row_labels) / 2:.1f})"',
        )
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    x_label: str,
    y_label: str,
    fmt: Format = _number,
    description: str | None = None,
) -> Markup:
    """Horizontal bars, one per label, the value written at the end of each bar.

    Drawn to fit a phone (``FIT_WIDTH``) at its full text size: the labels are as wide as the
    longest one, beside the bars or, when that leaves the bars too little room, each above its bar;
    the value column is as wide as the longest value, the bars take the rest, and the axis label
    wraps. Only a value too long for that makes it wider (its box then scrolls, docs/design.md)."""
    bar, gap, pad = 22, 8, 8
    value_w = round(max((_text_width(fmt(v)) for v in values), default=0.0) + 6 + pad)
    label_w = round(max((_text_width(t) for t in (*labels, y_label)), default=0.0) + pad + 4)
    beside = FIT_WIDTH - label_w - value_w >= MIN_PLOT
    left = label_w if beside else pad
    plot = max(MIN_PLOT, FIT_WIDTH - left - value_w)
    width = left + plot + value_w
    row = bar + gap + (0 if beside else LINE)
    top = 26  # below the y label's line
    axis_lines = _wrap(x_label, width - 2 * pad)
    height = top + len(labels) * row + 18 + LINE * len(axis_lines)
    peak = max((v for v in values), default=0.0)
    uid, svg = _open(width, height, title, description or f"{x_label} per {y_label}")
    parts = [svg]
    # what the labels are: the heading of their column, or the first line above them
    parts.append(
        _text(left - pad if beside else left, 14, y_label, anchor="end" if beside else "start", fill=MUTED)
    )
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row + (0 if beside else LINE)
        length = plot * (value / peak) if peak > 0 else 0.0
        if beside:
            parts.append(_text(left - pad, y + bar / 2 + 4, label, anchor="end"))
        else:
            parts.append(_text(left, y - 5, label, anchor="start"))
        parts.append(
            f'<rect class="bar" x="{left}" y="{y}" width="{max(length, 1.0):.1f}" height="{bar}" '
            f'fill="{SERIES_COLOURS[0]}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
        )
        parts.append(_text(left + length + 6, y + bar / 2 + 4, fmt(value), anchor="start"))
    axis_y = top + len(labels) * row
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot}" y2="{axis_y}" stroke="{MUTED}"/>')
    for k, line in enumerate(axis_lines):
        parts.append(_text(width / 2, axis_y + 20 + LINE * k, line, fill=MUTED))
    parts.append("</svg>")
    return Markup("".join(parts))


def _wrap(text: str, width: float) -> list[str]:
    """The words of ``text`` in lines no wider than ``width`` (a longer word on a line of its own)."""
    lines: list[str] = []
    for word in text.split():
        if lines and _text_width(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]


def _patterns(uid: str) -> str:
    return (
        "<defs>"
        f'<pattern id="{uid}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff8e6"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{SERIES_COLOURS[1]}" stroke-width="3"/></pattern>'
        f'<pattern id="{uid}-dots" width="5" height="5" patternUnits="userSpaceOnUse">'
        '<rect width="5" height="5" fill="#f1f2f3"/>'
        f'<circle cx="2.5" cy="2.5" r="1.4" fill="{SERIES_COLOURS[2]}"/>'
        "</pattern></defs>"
    )


def _fill(uid: str, index: int) -> str:
    pattern = SERIES_PATTERNS[index % len(SERIES_PATTERNS)]
    return SERIES_COLOURS[0] if pattern == "solid" else f"url(#{uid}-{pattern})"


def grouped_bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    fmt: Format = _number,
    description: str | None = None,
) -> Markup:
    """Vertical bars grouped by category, one bar per series (solid, hatched, dotted), each bar
    with its value above it, and a legend naming the series with their patterns."""
    left, top, bottom, plot_h = 64, 40, 56, 220
    group_w = max(22 * len(series) + 24, 80)
    legend_w = sum(34 + 7 * len(s.name) for s in series)
    width = max(left + group_w * max(len(categories), 1) + 20, left + legend_w + 20)
    height = top + plot_h + bottom
    peak = max((v for s in series for v in s.values), default=0.0) or 1.0
    uid, svg = _open(
        width, height, title, description or f"{y_label} per {x_label}: " + ", ".join(s.name for s in series)
    )
    parts = [svg, _patterns(uid)]
    legend_x = left
    for k, s in enumerate(series):
        parts.append(
            f'<rect x="{legend_x}" y="8" width="14" height="14" fill="{_fill(uid, k)}" '
            f'stroke="{INK}" stroke-width="0.5"/>'
        )
        parts.append(_text(legend_x + 20, 19, s.name, anchor="start"))
        legend_x += 34 + 7 * len(s.name)
    base = top + plot_h
    bar_w = (group_w - 24) / max(len(series), 1)
    for i, category in enumerate(categories):
        gx = left + i * group_w + 12
        for k, s in enumerate(series):
            value = float(s.values[i])
            h = plot_h * value / peak
            x = gx + k * bar_w
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{base - h:.1f}" width="{bar_w - 4:.1f}" '
                f'height="{max(h, 0.5):.1f}" '
                f'fill="{_fill(uid, k)}" stroke="{INK}" stroke-width="0.5"><title>{escape(category)}, '
                f"{escape(s.name)}: {escape(fmt(value))}</title></rect>"
            )
            parts.append(_text(x + (bar_w - 4) / 2, base - h - 4, fmt(value), extra='font-size="11"'))
        parts.append(_text(gx + (group_w - 24) / 2, base + 16, category))
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="{MUTED}"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="{MUTED}"/>')
    parts.append(_text(left - 6, top + 4, fmt(peak), anchor="end", fill=MUTED, extra='font-size="11"'))
    parts.append(_text(left - 6, base, "0", anchor="end", fill=MUTED, extra='font-size="11"'))
    parts.append(_text(left + (width - left) / 2, height - 10, x_label, fill=MUTED))
    parts.append(
        _text(
            14,
            top + plot_h / 2,
            y_label,
            fill=MUTED,
            extra=f'transform="rotate(-90 14 {top + plot_h / 2:.1f})"',
        )
    )
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True, slots=True)
class PartialSeries:
    """A series whose values may be missing: None is "not known yet" (drawn as a dashed outline)."""

    name: str
    values: Sequence[float | None]


def came_back_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[PartialSeries],
    *,
    x_label: str,
    y_label: str,
    missing: str,
    fmt: Format = _number,
    notes: Sequence[str] | None = None,
    description: str | None = None,
) -> Markup:
    """A small chart of shares (0-100) per category, one bar per series (solid, hatched, dotted),
    on a fixed 0-100 scale so that charts side by side compare; a value of None is drawn as a
    dashed empty bar marked "…", named ``missing`` in the legend and in its tooltip. ``notes``
    (per category) is added to each bar's tooltip, e.g. how many customers the share is of."""
    left, top, bottom, plot_h = 44, 30, 40, 140
    bar_w = 16
    group_w = bar_w * len(series) + 14
    legend = [(s.name, k) for k, s in enumerate(series)]
    legend_w = sum(30 + 6 * len(name) for name, _ in legend) + 30 + 6 * len(missing)
    width = max(left + group_w * max(len(categories), 1) + 10, left + legend_w)
    height = top + plot_h + bottom
    uid, svg = _open(
        width, height, title, description or f"{y_label} per {x_label}: " + ", ".join(s.name for s in series)
    )
    parts = [svg, _patterns(uid)]
    x = left
    for name, k in legend:
        parts.append(
            f'<rect x="{x}" y="6" width="12" height="12" fill="{_fill(uid, k)}" '
            f'stroke="{INK}" stroke-width="0.5"/>'
        )
        parts.append(_text(x + 16, 16, name, anchor="start", extra='font-size="11"'))
        x += 30 + 6 * len(name)
    parts.append(
        f'<rect x="{x}" y="6" width="12" height="12" fill="none" stroke="{MUTED}" stroke-dasharray="2 2"/>'
    )
    parts.append(_text(x + 16, 16, missing, anchor="start", fill=MUTED, extra='font-size="11"'))
    base = top + plot_h
    for tick in (0, 50, 100):
        y = base - plot_h * tick / 100
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 6}" y2="{y:.1f}" stroke="#e1e3e5"/>')
        parts.append(_text(left - 4, y + 3, f"{tick}%", anchor="end", fill=MUTED, extra='font-size="11"'))
    for i, category in enumerate(categories):
        gx = left + i * group_w + 7
        note = f" ({notes[i]})" if notes is not None and i < len(notes) and notes[i] else ""
        for k, s in enumerate(series):
            value = s.values[i]
            bx = gx + k * bar_w
            if value is None:
                parts.append(
                    f'<rect class="bar missing" x="{bx:.1f}" y="{base - 14:.1f}" width="{bar_w - 2}" '
                    f'height="14" fill="none" stroke="{MUTED}" stroke-dasharray="2 2">'
                    f"<title>{escape(category)}, {escape(s.name)}: {escape(missing)}{escape(note)}"
                    "</title></rect>"
                )
                parts.append(_text(bx + (bar_w - 2) / 2, base - 17, "…", fill=MUTED, extra='font-size="11"'))
                continue
            h = plot_h * max(0.0, min(float(value), 100.0)) / 100
            parts.append(
                f'<rect class="bar" x="{bx:.1f}" y="{base - h:.1f}" width="{bar_w - 2}" '
                f'height="{max(h, 0.5):.1f}" fill="{_fill(uid, k)}" stroke="{INK}" stroke-width="0.5" '
                f'data-value="{float(value):.1f}"><title>{escape(category)}, {escape(s.name)}: '
                f"{escape(fmt(value))}{escape(note)}</title></rect>"
            )
        parts.append(_text(gx + (group_w - 14) / 2, base + 14, category, extra='font-size="11"'))
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - 6}" y2="{base}" stroke="{MUTED}"/>')
    parts.append(_text(left + (width - left) / 2, height - 6, x_label, fill=MUTED, extra='font-size="11"'))
    parts.append(
        _text(
            10,
            top + plot_h / 2,
            y_label,
            fill=MUTED,
            extra=f'font-size="11" transform="rotate(-90 10 {top + plot_h / 2:.1f})"',
        )
    )
    parts.append("</svg>")
    return Markup("".join(parts))
