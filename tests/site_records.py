"""Hand-built atlas records and a page reader for the site tests (no TF)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from atlas.records import (
    AtlasRecord,
    Box,
    LayerInfo,
    LayerRecord,
    TopKExample,
    UnitRecord,
)

PRESETS = ("lucid", "yosinski-3")


def make_unit(
    index: int,
    *,
    k: int = 3,
    dead: bool = False,
    label: str | None = "cat",
    size: int = 6,
    presets: tuple[str, ...] = PRESETS,
) -> UnitRecord:
    """A unit with random uint8 images and k examples of falling value."""
    rng = np.random.default_rng(index)
    values = [0.0] * k if dead else [1.2345 * (k - r) + index for r in range(k)]
    best = values[0] if values else 0.0
    examples = [
        TopKExample(
            image=100 + 10 * index + rank,
            value=values[rank],
            label=label,
            source=f"../../evil-{index}-{rank}.png",
            box=Box(0, 0, 3, 3),
            crop=rng.integers(0, 256, (3, 3, 3), dtype=np.uint8),
        )
        for rank in range(k)
    ]
    final = 0.0 if dead else 2.0 + index
    return UnitRecord(
        index=index,
        images={
            p: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for p in presets
        },
        top_k=examples,
        quality={
            "preset": presets[0],
            "start": 0.125,
            "final": final,
            "dataset_max": best,
            "ratio": final / best if best > 0 else None,
            "layer_max": index == 0,
            "dead": dead,
            "low": dead,
        },
        stats={
            "mean": 0.5,
            "max": best,
            "active_fraction": 0.0 if dead else 0.25,
            "images": 40.0,
        },
    )


def make_info(
    name: str, units: int, *, kind: str = "conv", uses_logits: bool = False
) -> LayerInfo:
    """A conv layer (6 x 6 maps) or a dense one, with `units` units."""
    shape = (None, 6, 6, units) if kind == "conv" else (None, units)
    return LayerInfo(
        name=name,
        class_name="Conv2D" if kind == "conv" else "Dense",
        output_shape=shape,
        units=units,
        kind=kind,
        activation="softmax" if uses_logits else "relu",
        uses_logits=uses_logits,
    )


def make_layer(info: LayerInfo, indices, **unit_options) -> LayerRecord:
    """A layer holding `make_unit(i)` for each index."""
    return LayerRecord(info=info, units=[make_unit(i, **unit_options) for i in indices])


def make_atlas(
    layers: list[LayerRecord],
    *,
    title: str = "Tiny atlas",
    accuracy: float | None = None,
    extra: tuple[LayerInfo, ...] = (),
) -> AtlasRecord:
    """An atlas of `layers`; `extra` model layers are listed but not shown."""
    return AtlasRecord(
        title=title,
        about_html="<p>A <em>tiny</em> model. &lt;b&gt;raw&lt;/b&gt;</p>",
        model={
            "name": "tiny",
            "file": "tiny.keras",
            "digest": "0123456789abcdef" * 4,
            "input_shape": [6, 6, 3],
            "input_range": [0.0, 1.0],
            "parameters": 12345,
        },
        settings={"preset": PRESETS[0], "steps": None, "seed": 0, "top_k": 3},
        versions={"neuron-atlas": "0.1.0", "numpy": np.__version__},
        data={"file": "data.npz", "kind": "npz", "images": 40, "skipped": 0},
        layers=layers,
        all_layers=[*extra, *(layer.info for layer in layers)],
        presets=list(PRESETS),
        summary={"built": "2024-05-01", "logits_accuracy": accuracy},
    )


class PageTags(HTMLParser):
    """Start tags with their attributes, and the text of table rows."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(page: Path) -> PageTags:
    """The tags and table rows of one HTML page."""
    parser = PageTags()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def rel_link(page: Path, rel: str) -> Path | None:
    """The file an `<a rel=...>` on `page` points at, if there is one."""
    for tag, attrs in parse(page).tags:
        if tag == "a" and attrs.get("rel") == rel:
            return (page.parent / attrs["href"].split("#")[0]).resolve()
    return None
