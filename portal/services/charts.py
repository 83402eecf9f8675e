"""Chart geometry for server-rendered SVG: a line, stacked bars and plain bars.

The functions turn integer series into coordinates in a fixed view box; templates draw them
(templates/_macros/charts.html) with a table of the same numbers beneath each chart.
"""
from __future__ import annotations

from dataclasses import dataclass, field

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 88, 12, 12, 28


@dataclass
class Mark:
    """One drawn thing: a bar (x, y, width, height) or a point, its series and its value."""

    x: float
    y: float
    width: float = 0
    height: float = 0
    series: str = ""
    label: str = ""
    value: int = 0


@dataclass
class Chart:
    """A chart's view box, its marks, axis ticks (value, y) and month labels (text, x)."""

    marks: list[Mark] = field(default_factory=list)
    ticks: list[tuple[int, float]] = field(default_factory=list)
    labels: list[tuple[str, float]] = field(default_factory=list)
    zero_y: float = 0
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def polyline(self) -> str:
        """Return the marks as an SVG polyline's points."""
        return " ".join(f"{mark.x:.1f},{mark.y:.1f}" for mark in self.marks)


def _scale(low: int, high: int):
    """Return a function mapping a value to a y coordinate, and the axis ticks."""
    low, high = min(low, 0), max(high, 0)
    if low == high:
        high = low + 1
    span = HEIGHT - TOP - BOTTOM

    def y(value: int) -> float:
        return TOP + (high - value) * span / (high - low)

    ticks = [(low + (high - low) * step // 4, 0.0) for step in range(5)]
    return y, [(value, y(value)) for value, _ in ticks]


def _slots(labels: list[str]) -> tuple[float, list[tuple[str, float]]]:
    """Return each label's slot width and centre."""
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    return slot, [(label, LEFT + slot * (index + 0.5)) for index, label in enumerate(labels)]


def line_chart(labels: list[str], values: list[int]) -> Chart:
    """Return a line through one value per label."""
    y, ticks = _scale(min(values, default=0), max(values, default=0))
    _, centres = _slots(labels)
    marks = [Mark(x, y(value), label=label, value=value)
             for (label, x), value in zip(centres, values, strict=True)]
    return Chart(marks, ticks, centres, y(0))


def stacked_bars(labels: list[str], series: dict[str, list[int]]) -> Chart:
    """Return bars stacking positive values up from zero and negative ones down from it."""
    ups = [sum(max(values[i], 0) for values in series.values()) for i in range(len(labels))]
    downs = [sum(min(values[i], 0) for values in series.values()) for i in range(len(labels))]
    y, ticks = _scale(min(downs, default=0), max(ups, default=0))
    slot, centres = _slots(labels)
    marks = []
    for index, (label, x) in enumerate(centres):
        up = down = 0
        for name, values in series.items():
            value = values[index]
            if value == 0:
                continue
            base = up if value > 0 else down
            top, bottom = (base + value, base) if value > 0 else (base, base + value)
            marks.append(Mark(x - slot * 0.35, y(top), slot * 0.7, y(bottom) - y(top),
                              name, label, value))
            if value > 0:
                up += value
            else:
                down += value
    return Chart(marks, ticks, centres, y(0))


def bars(labels: list[str], values: list[int], series: str = "value") -> Chart:
    """Return one bar per label, up from zero for gains and down for losses."""
    return stacked_bars(labels, {series: values})
