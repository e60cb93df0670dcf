"""Server-side SVG for the campaign report in the admin: conversion per group and the uplift.

Pure functions from plain values to an SVG string, in the style of ``invoices.charts`` (its
colours, font stack and coordinate helper). The chart is ``role="img"``, labelled by a
``<title>`` and described by a ``<desc>`` that state every figure in words; the report page
prints the same figures in a data table next to it.

Call with the reader's language active (the admin's request, ``LocaleMiddleware``): the
texts are translated and the numbers written with that language's decimal separator here.
"""

from django.utils.formats import get_format
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from invoices.charts import ACCENT, FONT, INK, MUTED, TRACK, _n

HOLDOUT = "#55606e"  # 6.4:1 on white, apart from the accent by lightness as well as hue
SCALE_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1.0)


def _ceiling(value: float) -> float:
    """The smallest step of SCALE_STEPS at or above ``value`` (1.0 at most)."""
    for step in SCALE_STEPS:
        if value <= step:
            return step
    return 1.0


def number_text(text: str) -> str:
    """A number as Python prints it (``-12.5``), as the active language writes it: its
    decimal separator (``,`` in Swedish) and a real minus sign."""
    return text.replace(".", str(get_format("DECIMAL_SEPARATOR"))).replace("-", "−")


def share_text(share: float) -> str:
    """A share (0–1) as a percentage with one decimal: ``12.5 %``, ``12,5 %``."""
    return f"{number_text(f'{share * 100:.1f}')} %"


def points_text(difference: float) -> str:
    """A difference of shares in signed percentage points: ``+12.5 pp``, ``+12,5 p.e.``."""
    return f"{number_text(f'{difference * 100:+.1f}')} {pgettext('percentage points', 'pp')}"


def conversion_chart_svg(
    *,
    treatment: float,
    holdout: float,
    uplift: float,
    low: float,
    high: float,
    chart_id: str = "conversion-chart",
) -> str:
    """Two bars (conversion of treatment and holdout, shares 0–1) above the uplift with its
    confidence interval (``low``–``high``, differences of shares) on an axis through 0.

    The conversion axis runs from 0 to a round share above the larger bar; the uplift axis is
    symmetric around 0 and covers the whole interval, so whether it crosses 0 — whether the
    campaign's effect could be nil — is read at a glance.
    """
    width, left, right = 560, 150, 24
    plot = width - left - right
    title = _("Conversion: treatment against holdout, and the uplift with its 95 % interval")
    figures = {
        "treatment": share_text(treatment),
        "holdout": share_text(holdout),
        "uplift": points_text(uplift),
        "low": points_text(low),
        "high": points_text(high),
    }
    if low <= 0 <= high:
        desc = _(
            "Treatment converted %(treatment)s, holdout %(holdout)s. Uplift %(uplift)s, "
            "95 %% confidence interval %(low)s to %(high)s (includes zero)."
        )
    else:
        desc = _(
            "Treatment converted %(treatment)s, holdout %(holdout)s. Uplift %(uplift)s, "
            "95 %% confidence interval %(low)s to %(high)s (excludes zero)."
        )
    desc %= figures
    interval = _("95 %% interval %(low)s to %(high)s") % figures
    top = _ceiling(max(treatment, holdout, 0.001) * 1.1)
    span = _ceiling(max(abs(low), abs(high), abs(uplift), 0.001) * 1.1)

    def x_share(value: float) -> float:
        return left + plot * max(0.0, min(value, top)) / top

    def x_diff(value: float) -> float:
        return left + plot * (max(-span, min(value, span)) + span) / (2 * span)

    parts = [
        f'<svg id="{chart_id}" class="conversion-chart" viewBox="0 0 {width} 230" '
        f'width="100%" style="max-width:{width}px" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="{FONT}" font-size="12">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
        f'<text x="0" y="14" font-weight="700" fill="{INK}">{escape(_("Conversion"))}</text>',
    ]
    for index, (label, value, colour) in enumerate(
        ((_("Treatment"), treatment, ACCENT), (_("Holdout"), holdout, HOLDOUT))
    ):
        y = 26 + index * 30
        parts.append(f'<text x="0" y="{y + 15}" fill="{INK}">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{plot}" height="20" rx="3" fill="{TRACK}"/>')
        bar = x_share(value) - left
        if bar > 0:
            parts.append(
                f'<rect x="{left}" y="{y}" width="{_n(bar)}" height="20" rx="3" fill="{colour}"/>'
            )
        inside = bar > 70
        parts.append(
            f'<text x="{_n(left + bar + (-6 if inside else 6))}" y="{y + 15}" '
            f'text-anchor="{"end" if inside else "start"}" '
            f'fill="{"#fff" if inside else INK}">{share_text(value)}</text>'
        )
    parts.append(
        f'<text x="{left}" y="100" fill="{MUTED}">0 %</text>'
        f'<text x="{left + plot}" y="100" text-anchor="end" fill="{MUTED}">{share_text(top)}</text>'
    )

    axis_y = 170
    zero = x_diff(0)
    parts += [
        f'<text x="0" y="130" font-weight="700" fill="{INK}">{escape(_("Uplift"))}</text>',
        # Short: it stands left of the axis, in the chart's 150 px margin.
        f'<text x="0" y="{axis_y + 4}" fill="{INK}">'
        f"{escape(pgettext('chart axis, at most 150 px', 'Treatment − holdout'))}</text>",
        f'<line x1="{left}" y1="{axis_y}" x2="{left + plot}" y2="{axis_y}" stroke="{MUTED}"/>',
        f'<line x1="{_n(zero)}" y1="{axis_y - 26}" x2="{_n(zero)}" y2="{axis_y + 14}" '
        f'stroke="{INK}" stroke-dasharray="4 3"/>',
    ]
    x_low, x_high, x_mid = x_diff(low), x_diff(high), x_diff(uplift)
    parts += [
        f'<line x1="{_n(x_low)}" y1="{axis_y - 12}" x2="{_n(x_high)}" y2="{axis_y - 12}" '
        f'stroke="{ACCENT}" stroke-width="2"/>',
        f'<line x1="{_n(x_low)}" y1="{axis_y - 18}" x2="{_n(x_low)}" y2="{axis_y - 6}" '
        f'stroke="{ACCENT}" stroke-width="2"/>',
        f'<line x1="{_n(x_high)}" y1="{axis_y - 18}" x2="{_n(x_high)}" y2="{axis_y - 6}" '
        f'stroke="{ACCENT}" stroke-width="2"/>',
        f'<circle cx="{_n(x_mid)}" cy="{axis_y - 12}" r="5" fill="{ACCENT}"/>',
        f'<text x="{_n(x_mid)}" y="{axis_y - 24}" text-anchor="middle" fill="{INK}" '
        f'stroke="#fff" stroke-width="3" paint-order="stroke">{points_text(uplift)}</text>',
        f'<text x="{left}" y="{axis_y + 28}" fill="{MUTED}">{points_text(-span)}</text>',
        f'<text x="{_n(zero)}" y="{axis_y + 28}" text-anchor="middle" fill="{MUTED}">0</text>',
        f'<text x="{left + plot}" y="{axis_y + 28}" text-anchor="end" fill="{MUTED}">'
        f"{points_text(span)}</text>",
        f'<text x="{left}" y="{axis_y + 50}" fill="{INK}">{escape(interval)}</text>',
        "</svg>",
    ]
    return "".join(parts)
