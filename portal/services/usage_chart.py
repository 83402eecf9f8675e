"""Geometry of the daily usage chart: bars for this period beside the previous one, in SVG units.

The template draws it as inline SVG (no script, no CDN); the table under it carries the figures.
"""
from __future__ import annotations

from dataclasses import dataclass

from portal.services.usage_page import DailySeries

WIDTH = 640
HEIGHT = 180
TOP = 10
BOTTOM = 24  # room for the day labels
LEFT = 48  # room for the scale labels
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Bar:
    """One bar: which period, which day, its value and where it is drawn."""

    period: str  # "current" or "previous"
    day: int  # 1-based
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class ChartGeometry:
    """Everything the template needs to draw one meter's chart."""

    series: DailySeries
    bars: list[Bar]
    top_value: int
    day_labels: list[tuple[int, float]]  # (day, x of its label)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_top: int = TOP
    plot_bottom: int = TOP + PLOT_HEIGHT


def nice_ceiling(value: int) -> int:
    """Return 1, 2 or 5 times a power of ten at or above `value` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def chart_geometry(series: DailySeries) -> ChartGeometry:
    """Place a pair of bars per day (previous period left, this period right)."""
    days = max(len(series.current), len(series.previous))
    values = [value for value in series.current + series.previous if value]
    top = nice_ceiling(max(values, default=1))
    slot = (WIDTH - LEFT) / days
    bar_width = max(1.0, slot * 0.4)
    bars = []
    for period, figures, offset in (("previous", series.previous, 0.1),
                                    ("current", series.current, 0.5)):
        for index, value in enumerate(figures):
            if value is None:
                continue
            height = PLOT_HEIGHT * value / top
            bars.append(Bar(period, index + 1, value, round(LEFT + slot * (index + offset), 2),
                            round(TOP + PLOT_HEIGHT - height, 2), round(bar_width, 2),
                            round(height, 2)))
    every = max(1, -(-days // 10))
    labels = [(day, round(LEFT + slot * (day - 0.5), 2)) for day in range(1, days + 1, every)]
    return ChartGeometry(series=series, bars=bars, top_value=top, day_labels=labels)
