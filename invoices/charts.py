"""Server-side SVG for the invoice page and the PDF: the same markup in a browser and WeasyPrint.

Pure functions from plain values to SVG strings. No JavaScript, no fonts to load: text uses
the system font stack. Every chart is ``role="img"`` with an ``aria-label`` and a ``<title>``
that say in words what the picture shows, so a screen reader (and a PDF's text layer) gets
the same facts as the eye. Callers pass labels already translated and formatted.

Colours (contrast against white): accent #0b5cad 6.7:1, earlier months #6b8fc2 3.3:1 and the
over-allowance amber #b45309 5.0:1 (graphics need 3:1), axis and text #1b1f24 / #55606e.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import escape

ACCENT = "#0b5cad"
EARLIER = "#6b8fc2"
OVER = "#b45309"
TRACK = "#e3e8ee"
INK = "#1b1f24"
MUTED = "#55606e"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def _n(value: float) -> str:
    """A coordinate with at most one decimal, without a trailing '.0'."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def usage_bar_svg(*, used: Decimal, included: Decimal | None, label: str) -> str:
    """A horizontal bar: the share of an allowance used, and what went beyond it.

    ``included`` None means unlimited: the bar is then drawn empty with no scale, since there
    is nothing to measure against; the caller shows the figure in words. ``label`` is the text
    equivalent, e.g. "4.2 GB of 10 GB used (42%)".
    """
    width, height, radius = 300, 12, 6
    parts = [
        f'<svg class="usage-bar" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
        f'<rect width="{width}" height="{height}" rx="{radius}" fill="{TRACK}"/>',
    ]
    if included is not None and used > 0:
        scale = max(used, included)
        within = min(used, included)
        within_w = float(within / scale) * width if scale else 0.0
        if within_w > 0:
            parts.append(
                f'<rect width="{_n(within_w)}" height="{height}" rx="{radius}" fill="{ACCENT}"/>'
            )
        if used > included:
            start = float(included / scale) * width
            parts.append(
                f'<rect x="{_n(start)}" width="{_n(width - start)}" height="{height}" '
                f'rx="{radius}" fill="{OVER}"/>'
            )
            # A white notch where the allowance ends, so the two parts read apart.
            parts.append(
                f'<rect x="{_n(max(start - 1, 0))}" width="2" height="{height}" fill="#fff"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class ChartBar:
    """One month in the usage chart. ``value`` None means no invoice for that month."""

    label: str  # the month, short: "okt"
    value: Decimal | None
    value_label: str  # the figure as printed above the bar: "14,2"
    current: bool = False
    allowance: Decimal | None = None  # what the plans included that month; None = unlimited


def monthly_usage_chart_svg(
    *, bars: Sequence[ChartBar], label: str, allowance_label: str = ""
) -> str:
    """Vertical bars for up to a dozen months, the current one in the accent colour.

    ``label`` is the full text equivalent (every month and its figure). Each month's
    allowance is a dashed mark across its slot, so a month with another number of
    subscriptions is measured against what it really included; ``allowance_label`` explains
    the mark in a legend (no legend, and no marks, when it is empty).
    """
    width, plot_top, plot_height = 340, 22, 130
    allowances = [bar.allowance for bar in bars if bar.allowance is not None]
    legend = bool(allowances and allowance_label)
    height = plot_top + plot_height + 26 + (24 if legend else 0)
    baseline = plot_top + plot_height
    values = [bar.value for bar in bars if bar.value is not None]
    top = max([*values, *(allowances if legend else []), Decimal(0)])
    top = top * Decimal("1.08") if top > 0 else Decimal(1)
    slot = width / max(len(bars), 1)
    bar_w = min(slot * 0.58, 44.0)

    parts = [
        f'<svg class="usage-chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="{FONT}">',
        f"<title>{escape(label)}</title>",
        f'<line x1="0" y1="{baseline}" x2="{width}" y2="{baseline}" stroke="{MUTED}" '
        f'stroke-width="1"/>',
    ]
    for index, bar in enumerate(bars):
        centre = slot * index + slot / 2
        if legend and bar.allowance is not None and bar.allowance > 0:
            y = baseline - float(bar.allowance / top) * plot_height
            parts.append(
                f'<line x1="{_n(slot * index + 2)}" y1="{_n(y)}" x2="{_n(slot * (index + 1) - 2)}" '
                f'y2="{_n(y)}" stroke="{INK}" stroke-width="1.5" stroke-dasharray="5 4"/>'
            )
        if bar.value is not None:
            bar_h = float(bar.value / top) * plot_height
            y = baseline - bar_h
            colour = ACCENT if bar.current else EARLIER
            if bar_h > 0:
                parts.append(
                    f'<rect x="{_n(centre - bar_w / 2)}" y="{_n(y)}" width="{_n(bar_w)}" '
                    f'height="{_n(bar_h)}" rx="3" fill="{colour}"/>'
                )
            weight = ' font-weight="700"' if bar.current else ""
            # A white halo keeps the figure readable where an allowance mark crosses it.
            parts.append(
                f'<text x="{_n(centre)}" y="{_n(y - 5)}" text-anchor="middle" font-size="12" '
                f'fill="{INK}" stroke="#fff" stroke-width="3" paint-order="stroke"{weight}>'
                f"{escape(bar.value_label)}</text>"
            )
        weight = ' font-weight="700"' if bar.current else ""
        parts.append(
            f'<text x="{_n(centre)}" y="{baseline + 18}" text-anchor="middle" font-size="12" '
            f'fill="{INK if bar.current else MUTED}"{weight}>{escape(bar.label)}</text>'
        )
    if legend:
        y = baseline + 38
        parts.append(
            f'<line x1="0" y1="{y - 4}" x2="24" y2="{y - 4}" stroke="{INK}" stroke-width="1.5" '
            f'stroke-dasharray="5 4"/>'
            f'<text x="32" y="{y}" font-size="12" fill="{INK}">{escape(allowance_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
