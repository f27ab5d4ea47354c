"""A unit's activation histogram drawn as inline SVG at build time.

No script draws it, so it shows from disk and under the site's strict
CSP; its colours come from classes in the stylesheet (light and dark).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from markupsafe import Markup, escape

from atlas.records import Histogram
from atlas.site.facts import format_number

WIDTH, HEIGHT = 320, 150
# The plot's box inside the drawing: room above for the count, below for
# the axis labels.
LEFT, TOP, RIGHT, BOTTOM = 4.0, 20.0, 316.0, 118.0
LABEL_Y = 134
FONT = 11

logger = logging.getLogger(__name__)


def histogram_svg(
    histogram: Histogram, value_name: str, marker: float | None = None
) -> Markup | None:
    """The histogram as an accessible `<svg>`, or None if it cannot be drawn.

    `marker` (the synthesized image's activation) is drawn as a line, at
    the plot's edge with an arrow when it falls outside the bins.
    """
    edges = np.asarray(histogram.edges, dtype=np.float64)
    counts = np.asarray(histogram.counts, dtype=np.int64)
    if len(edges) != len(counts) + 1 or not len(counts):
        return None
    if not np.all(np.isfinite(edges)):
        return None
    parts = [
        _header(edges, counts, value_name, marker),
        *_bars(edges, counts),
        *_axis(edges, counts),
    ]
    if marker is not None and math.isfinite(marker):
        parts.append(_marker(edges, marker))
    parts.append("</svg>")
    return Markup("\n".join(parts))


def describe(edges: np.ndarray, counts: np.ndarray, value_name: str) -> str:
    """One sentence for screen readers: the range and the fullest bin."""
    fullest = int(np.argmax(counts))
    return (
        f"{format_number(int(counts.sum()))} images, {value_name} from "
        f"{format_number(edges[0])} to {format_number(edges[-1])}; the fullest "
        f"bin, {format_number(edges[fullest])} to "
        f"{format_number(edges[fullest + 1])}, holds "
        f"{format_number(int(counts[fullest]))}."
    )


def _header(
    edges: np.ndarray, counts: np.ndarray, value_name: str, marker: float | None
) -> str:
    title = f"Histogram of the unit's largest {value_name} per image"
    text = describe(edges, counts, value_name)
    if marker is not None and math.isfinite(marker):
        text += f" The synthesized image reaches {format_number(marker)}."
    return (
        f'<svg class="histogram" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-labelledby="hist-title hist-desc">\n'
        f'<title id="hist-title">{escape(title)}</title>\n'
        f'<desc id="hist-desc">{escape(text)}</desc>'
    )


def _bars(edges: np.ndarray, counts: np.ndarray) -> list[str]:
    tallest = max(int(counts.max()), 1)
    bars = []
    for number, count in enumerate(counts):
        if count <= 0:
            continue
        left = _x(edges, edges[number])
        width = max(_x(edges, edges[number + 1]) - left, 0.5)
        height = max((BOTTOM - TOP) * count / tallest, 0.5)
        tip = (
            f"{format_number(edges[number])} to {format_number(edges[number + 1])}: "
            f"{format_number(int(count))} images"
        )
        bars.append(
            f'<rect class="bar" x="{left:.2f}" y="{BOTTOM - height:.2f}" '
            f'width="{width:.2f}" height="{height:.2f}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    return bars


def _axis(edges: np.ndarray, counts: np.ndarray) -> list[str]:
    tallest = format_number(int(counts.max()))
    lines = [
        f'<line class="axis" x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}"/>',
        _text(LEFT, 13, f"{tallest} images in the fullest bin", "start"),
        _text(LEFT, LABEL_Y, format_number(edges[0]), "start"),
        _text(RIGHT, LABEL_Y, format_number(edges[-1]), "end"),
    ]
    if edges[0] < 0 < edges[-1]:
        zero = _x(edges, 0.0)
        lines.append(
            f'<line class="axis" x1="{zero:.2f}" y1="{BOTTOM}" x2="{zero:.2f}" '
            f'y2="{BOTTOM + 4}"/>'
        )
        lines.append(_text(zero, LABEL_Y, "0", "middle"))
    return lines


def _marker(edges: np.ndarray, value: float) -> str:
    inside = edges[0] <= value <= edges[-1]
    x = min(max(_x(edges, value), LEFT), RIGHT)
    label = "image" if inside else ("← image" if value < edges[0] else "image →")
    anchor = "start" if x < (LEFT + RIGHT) / 2 else "end"
    shift = 3 if anchor == "start" else -3
    return (
        f'<line class="marker" x1="{x:.2f}" y1="{TOP}" x2="{x:.2f}" y2="{BOTTOM}"/>\n'
        + _text(x + shift, TOP + 10, f"{label} {format_number(value)}", anchor, "mark")
    )


def _text(x: float, y: float, text: str, anchor: str, kind: str = "label") -> str:
    return (
        f'<text class="{kind}" x="{x:.2f}" y="{y}" font-size="{FONT}" '
        f'text-anchor="{anchor}">{escape(text)}</text>'
    )


def _x(edges: np.ndarray, value: float) -> float:
    span = float(edges[-1] - edges[0]) or 1.0
    return LEFT + (float(value) - float(edges[0])) / span * (RIGHT - LEFT)
