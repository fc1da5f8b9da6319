"""Dependency-free SVG charts for the benchmark report: grouped bars, horizontal bars and lines, with axes, value
labels and target lines. Pure functions returning the SVG text; nothing in it refers to anything outside the
file (no links, no fonts or styles to fetch), so docs/benchmarks.md needs no network to be viewed."""
from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
TARGET_COLOUR = "#d62728"
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'
# A white outline behind figures and target labels keeps them readable where a line crosses them.
HALO = ' paint-order="stroke" stroke="#ffffff" stroke-width="3" stroke-linejoin="round"'


@dataclass(frozen=True)
class Target:
    """A dashed line at VALUE labelled LABEL; on a bar chart CATEGORY limits it to that group of bars."""
    value: float
    label: str
    category: str | None = None


def fmt(value: float) -> str:
    """A figure as the report prints it: 3 significant digits at most, no trailing zeros."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2f}".rstrip("0").rstrip(".")


class Scale:
    """Maps values to pixels between BOTTOM (value lo) and TOP (value hi), linear or log10."""

    def __init__(self, values: list[float], bottom: float, top: float, log: bool = False) -> None:
        self.log, self.bottom, self.top = log, bottom, top
        positive = [v for v in values if v is not None and v > 0] or [1.0]
        if log:
            self.lo = 10 ** math.floor(math.log10(min(positive)))
            self.hi = 10 ** math.ceil(math.log10(max(positive) * 1.0001))
            if self.hi <= self.lo:
                self.hi = self.lo * 10
        else:
            self.lo = 0.0
            top = max([v for v in values if v is not None] + [1e-9]) * 1.12
            self.step = nice_ceiling(top / 5)
            self.hi = self.step * math.ceil(top / self.step - 1e-9)

    def __call__(self, value: float) -> float:
        if self.log:
            value = max(value, self.lo)
            share = (math.log10(value) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            share = (value - self.lo) / (self.hi - self.lo)
        return self.bottom - share * (self.bottom - self.top)

    def ticks(self) -> list[float]:
        if self.log:
            exponents = range(round(math.log10(self.lo)), round(math.log10(self.hi)) + 1)
            return [10.0 ** e for e in exponents]
        return [self.step * i for i in range(int(round(self.hi / self.step)) + 1)]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least VALUE."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= value * 0.999999:
            return factor * power
    return 10 * power


def text(x: float, y: float, content: str, size: int = 12, anchor: str = "middle", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {FONT}{extra}>'
            f"{escape(content)}</text>")


def document(width: int, height: int, title: str, body: list[str]) -> str:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img">')
    return "\n".join([head, f"<title>{escape(title)}</title>",
                      f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
                      text(width / 2, 24, title, size=15, extra=' font-weight="bold"'), *body, "</svg>"]) + "\n"


def y_axis(scale: Scale, left: float, right: float, label: str) -> list[str]:
    parts = [f'<line x1="{left}" y1="{scale.top}" x2="{left}" y2="{scale.bottom}" stroke="#333"/>']
    for tick in scale.ticks():
        y = scale(tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(text(left - 6, y + 4, fmt(tick), size=11, anchor="end"))
    middle = (scale.top + scale.bottom) / 2
    parts.append(text(16, middle, label, extra=f' transform="rotate(-90 16 {middle:.1f})"'))
    return parts


def legend(names: list[str], left: float, y: float) -> list[str]:
    parts, x = [], left
    for index, name in enumerate(names):
        parts.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{PALETTE[index % len(PALETTE)]}"/>')
        parts.append(text(x + 17, y, name, anchor="start"))
        x += 30 + 7 * len(name)
    return parts


def bar_chart(title: str, categories: list[str], series: dict[str, list[float | None]], y_label: str, unit: str = "",
              log: bool = False, targets: tuple[Target, ...] = (), missing: str = "n/a",
              cap: float | None = None, width: int = 760, height: int = 420) -> str:
    """Grouped bars: one group per category, one bar per series. A None value has no figure (its bar is drawn
    hollow up to CAP, when given, and labelled MISSING, e.g. "> 150 s")."""
    left, right, top, bottom = 70, width - 20, 50, height - 80
    values = [v for vs in series.values() for v in vs if v is not None] + [t.value for t in targets]
    scale = Scale(values + ([cap] if cap else []), bottom, top, log)
    body = y_axis(scale, left, right, y_label)
    group = (right - left) / max(len(categories), 1)
    bar = min(60.0, group * 0.8 / max(len(series), 1))
    for c, category in enumerate(categories):
        start = left + group * c + (group - bar * len(series)) / 2
        for s, (name, figures) in enumerate(series.items()):
            value, x = figures[c], start + bar * s
            colour = PALETTE[s % len(PALETTE)]
            if value is None:
                if cap is not None:
                    y = scale(cap)
                    body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{bottom - y:.1f}" '
                                f'fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="5,3"/>')
                else:
                    y = bottom
                body.append(text(x + bar / 2, y - 5, missing, size=10))
                continue
            y = scale(value)
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{max(bottom - y, 0.5):.1f}" '
                        f'fill="{colour}"><title>{escape(f"{name}, {category}: {fmt(value)}{unit}")}</title></rect>')
            body.append(text(x + bar / 2 - 1, y - 5, f"{fmt(value)}{unit}", size=10, extra=HALO))
        body.append(text(left + group * (c + 0.5), bottom + 18, category))
    for target in targets:
        if target.category is not None:
            c = categories.index(target.category)
            x1, x2 = left + group * c + 4, left + group * (c + 1) - 4
        else:
            x1, x2 = left, right
        y = scale(target.value)
        body.append(f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" stroke="{TARGET_COLOUR}" '
                    f'stroke-width="1.5" stroke-dasharray="6,4"/>')
        body.append(text(x2 - 2, y - 4, target.label, size=10, anchor="end", extra=f' fill="{TARGET_COLOUR}"' + HALO))
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>')
    body += legend(list(series), left, height - 30)
    if log:
        body.append(text(right, height - 10, "log scale", size=10, anchor="end", extra=' fill="#666"'))
    return document(width, height, title, body)


def hbar_chart(title: str, labels: list[str], values: list[float], x_label: str, unit: str = "",
               targets: tuple[Target, ...] = (), highlight: tuple[str, ...] = (), width: int = 760) -> str:
    """Horizontal bars, one per label (for long labels); HIGHLIGHT bars get the second colour."""
    row = 30
    label_width = 8 + 6.6 * max(len(label) for label in labels)
    left, right, top = label_width, width - 60, 50
    bottom = top + row * len(labels)
    height = int(bottom + 60)
    scale = Scale(list(values) + [t.value for t in targets], right, left)
    # Scale maps to a vertical pixel range; here "bottom" is the left edge and "top" the right edge.
    body = [f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>']
    for tick in scale.ticks():
        x = left + right - scale(tick)
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#e5e5e5"/>')
        body.append(text(x, bottom + 16, fmt(tick), size=11))
    body.append(text((left + right) / 2, bottom + 36, x_label))
    for index, (label, value) in enumerate(zip(labels, values)):
        y = top + row * index + 5
        length = left + right - scale(value) - left
        colour = PALETTE[1] if label in highlight else PALETTE[0]
        body.append(f'<rect x="{left}" y="{y:.1f}" width="{max(length, 0.5):.1f}" height="{row - 10}" fill="{colour}">'
                    f"<title>{escape(f'{label}: {fmt(value)}{unit}')}</title></rect>")
        body.append(text(left - 6, y + row / 2, label, size=11, anchor="end"))
        body.append(text(left + length + 4, y + row / 2, f"{fmt(value)}{unit}", size=10, anchor="start", extra=HALO))
    for target in targets:
        x = left + right - scale(target.value)
        body.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom}" stroke="{TARGET_COLOUR}" '
                    f'stroke-width="1.5" stroke-dasharray="6,4"/>')
        body.append(text(x, top - 10, target.label, size=10, extra=f' fill="{TARGET_COLOUR}"' + HALO))
    return document(width, height, title, body)


def line_chart(title: str, xs: list[float], series: dict[str, list[float]], x_label: str, y_label: str,
               unit: str = "", targets: tuple[Target, ...] = (), width: int = 760, height: int = 420) -> str:
    """Lines with a marker and its value at every x; x positions are proportional to the x values."""
    left, right, top, bottom = 70, width - 30, 50, height - 90
    values = [v for vs in series.values() for v in vs] + [t.value for t in targets]
    scale = Scale(values, bottom, top)
    body = y_axis(scale, left, right, y_label)
    lo, hi = min(xs), max(xs)

    def x_at(value: float) -> float:
        return left + 30 + (value - lo) / ((hi - lo) or 1) * (right - left - 60)

    for x in xs:
        body.append(text(x_at(x), bottom + 18, fmt(x)))
    body.append(text((left + right) / 2, bottom + 38, x_label))
    for s, (name, figures) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        points = " ".join(f"{x_at(x):.1f},{scale(v):.1f}" for x, v in zip(xs, figures))
        body.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, v in zip(xs, figures):
            body.append(f'<circle cx="{x_at(x):.1f}" cy="{scale(v):.1f}" r="3.5" fill="{colour}">'
                        f"<title>{escape(f'{name}, {fmt(x)}: {fmt(v)}{unit}')}</title></circle>")
            # Labels of alternate series sit above and below their markers, so close lines do not hide them.
            body.append(text(x_at(x), scale(v) + (17 if s % 2 else -8), f"{fmt(v)}{unit}", size=10, extra=f' fill="{colour}"' + HALO))
    for target in targets:
        y = scale(target.value)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{TARGET_COLOUR}" '
                    f'stroke-width="1.5" stroke-dasharray="6,4"/>')
        body.append(text(right - 2, y - 4, target.label, size=10, anchor="end", extra=f' fill="{TARGET_COLOUR}"' + HALO))
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>')
    body += legend(list(series), left, height - 30)
    return document(width, height, title, body)
