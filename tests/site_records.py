"""Hand-built atlas records and a page reader for the site tests (no TF)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from atlas.records import (
    AtlasRecord,
    Box,
    ClassWeight,
    Histogram,
    LayerInfo,
    LayerRecord,
    TopKExample,
    UnitRecord,
)

PRESETS = ("lucid", "yosinski-3")
HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_LABEL = '"../x"'
METHODS = ("deconvnet", "guided")
CLASSES = ("cat", "dog", "bird", "fish")


def make_unit(
    index: int,
    *,
    k: int = 3,
    dead: bool = False,
    label: str | None = "cat",
    size: int = 6,
    presets: tuple[str, ...] = PRESETS,
    crop: int = 3,
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
            box=Box(0, 0, crop, crop),
            crop=rng.integers(0, 256, (crop, crop, 3), dtype=np.uint8),
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


def make_full_unit(index: int, *, k: int = 4, size: int = 6) -> UnitRecord:
    """A unit with every optional field: views past the presets with their
    quality, bottom-k, heatmaps, a histogram, labels and class weights."""
    base = make_unit(index, k=k, label=CLASSES[index % len(CLASSES)], size=size)
    rng = np.random.default_rng(1000 + index)
    views = dict(base.images)
    views["negative"] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    views["diversity-1"] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    top = [_with_heatmaps(ex, rng) for ex in base.top_k]
    bottom = [
        TopKExample(
            image=900 + rank,
            value=-0.5 * (k - rank),
            label=CLASSES[(index + rank + 1) % len(CLASSES)],
            source=f"bottom-{index}-{rank}.png",
            box=Box(0, 0, 3, 3),
            crop=rng.integers(0, 256, (3, 3, 3), dtype=np.uint8),
        )
        for rank in range(k)
    ]
    label = CLASSES[index % len(CLASSES)]
    return UnitRecord(
        index=index,
        images=views,
        top_k=top,
        quality={**base.quality, "peak": 3.5 + index},
        stats=base.stats,
        bottom_k=bottom,
        histogram=Histogram(
            edges=np.linspace(-1.0, 4.0, 11),
            counts=np.array([0, 1, 5, 12, 20, 9, 4, 2, 1, 1], dtype=np.int64),
        ),
        image_quality={
            PRESETS[0]: {"ratio": 0.25},
            PRESETS[1]: {"ratio": 0.875},
            "negative": {"final": -2.5},
        },
        label_counts={label: k - 1, CLASSES[(index + 1) % len(CLASSES)]: 1},
        label=label,
        promotes=[ClassWeight(label, 0.75), ClassWeight("whale", 0.125)],
        suppresses=[ClassWeight("tree", -0.5)],
    )


def _with_heatmaps(example: TopKExample, rng) -> TopKExample:
    height, width = example.crop.shape[:2]
    maps = {m: rng.integers(0, 256, (height, width), dtype=np.uint8) for m in METHODS}
    return TopKExample(
        image=example.image,
        value=example.value,
        label=example.label,
        source=example.source,
        box=example.box,
        crop=example.crop,
        heatmaps=maps,
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


def small_atlas() -> AtlasRecord:
    """Three layers: gaps in unit indices, a dead unit, hostile text, logits."""
    conv = make_layer(make_info("c1", 4), [0, 2, 3, 5])
    hostile = LayerRecord(
        info=make_info(HOSTILE_NAME, 2),
        units=[make_unit(0, label=HOSTILE_LABEL), make_unit(1, dead=True)],
    )
    logits = make_layer(
        make_info("probs", 3, kind="dense", uses_logits=True), range(3), label=None
    )
    return make_atlas(
        [conv, hostile, logits],
        title='Tiny "<atlas>"',
        accuracy=2 / 3,
        extra=(make_info("outside", 7),),
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


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def layer_units(site: Path, layer: dict) -> list[dict]:
    """The units of a manifest's layer entry, from its data file."""
    return read_json(site / layer["data"])["units"]


def site_units(site: Path) -> list[tuple[dict, dict]]:
    """(layer entry, unit entry) for every unit of a built site, in order."""
    manifest = read_json(site / "manifest.json")
    return [
        (layer, unit)
        for layer in manifest["layers"]
        for unit in layer_units(site, layer)
    ]
