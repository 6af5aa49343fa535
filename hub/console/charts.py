"""Charts for the console, drawn on the server as SVG by pygal (from PyPI): no script and
nothing fetched by the browser, an image the page shows like any other. pygal's tooltip
script, which it would load from its own site, is turned off, and its inline configuration
script taken out."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Final

import pygal
from pygal.etree import etree
from pygal.style import Style

from hub.clock import CHINA

FONTS: Final = "'Noto Sans CJK SC', 'Source Han Sans SC', 'WenQuanYi Micro Hei', sans-serif"
STYLE: Final = Style(
    font_family=FONTS,
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1a1a1a",
    foreground_strong="#1a1a1a",
    foreground_subtle="#cccccc",
    colors=("#1f5fa8", "#0b6b2f", "#a15c00", "#7a2e8e", "#a11", "#2b7a78"),
)


def per_minute(title: str, series: dict[str, list[int]], now: datetime) -> bytes:
    """One line per series over the minutes ending with the one `now` is in, labelled in China
    time every ten minutes."""
    minutes = max((len(counts) for counts in series.values()), default=0)
    last = now.astimezone(CHINA).replace(second=0, microsecond=0)
    chart = pygal.Line(
        js=[],
        title=title,
        width=1100,
        height=280,
        style=STYLE,
        show_dots=False,
        fill=False,
        include_x_axis=True,
        legend_at_bottom=True,
        show_minor_x_labels=False,
        x_labels_major_every=10,
        truncate_legend=-1,
        truncate_label=-1,
        no_data_text="—",
    )
    top = max((max(counts, default=0) for counts in series.values()), default=0)
    step = max(1, math.ceil(top / 5))
    chart.y_labels = list(range(0, max(top, 1) + step, step))  # whole deliveries, not 0.1
    chart.x_labels = [
        (last - timedelta(minutes=minutes - 1 - at)).strftime("%H:%M") for at in range(minutes)
    ]
    for name, counts in series.items():
        chart.add(name, counts)
    return _without_scripts(chart.render_tree())


def _without_scripts(root: Any) -> bytes:
    """The SVG without the configuration script pygal always writes in (an image runs no
    script, and a page's policy allows none)."""
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag == "script":
                parent.remove(child)
    return bytes(etree.tostring(root))


def per_month(
    title: str, months: list[str], series: dict[str, list[float]], *, stacked: bool
) -> bytes:
    """Bars per month (stacked where the series add up to a whole), for the statistics."""
    kind = pygal.StackedBar if stacked else pygal.Bar
    chart = kind(
        js=[],
        title=title,
        width=1100,
        height=300,
        style=STYLE,
        legend_at_bottom=True,
        truncate_legend=-1,
        truncate_label=-1,
        no_data_text="—",
        x_label_rotation=0,
    )
    chart.x_labels = months
    for name, values in series.items():
        chart.add(name, values)
    return _without_scripts(chart.render_tree())
