"""The atlas as data for other tools: `manifest.json` describes the build and
lists the layers; `data/<layer>.json` holds each layer's units.

Both carry `"schema": SCHEMA`; README.md, "The atlas as data", documents
every field. The number changes whenever a field changes meaning or goes.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import PurePath

import numpy as np

from atlas.records import AtlasRecord, LayerRecord, TopKExample, UnitRecord
from atlas.site.layout import LayerLayout, SiteLayout, ordered_units
from atlas.site.paths import MANIFEST, SEARCH_INDEX, SITEMAP
from atlas.site.sheets import SheetGeometry

SCHEMA = 2
GENERATOR = "neuron-atlas"

logger = logging.getLogger(__name__)


def build_manifest(
    atlas: AtlasRecord, layout: SiteLayout, base_url: str | None
) -> dict[str, object]:
    """The manifest document: what was built, how, and where each layer is."""
    document: dict[str, object] = {
        "schema": SCHEMA,
        "generator": GENERATOR,
        "title": atlas.title,
        "model": json_safe(atlas.model),
        "settings": json_safe(atlas.settings),
        "versions": json_safe(atlas.versions),
        "data": json_safe(atlas.data),
        "summary": json_safe(atlas.summary),
        "presets": list(atlas.presets),
        "search_index": SEARCH_INDEX,
        "layers": [
            _layer_entry(layer, lay)
            for layer, lay in zip(atlas.layers, layout.layers, strict=True)
        ],
    }
    if base_url is not None:
        document["base_url"] = base_url
        document["sitemap"] = SITEMAP
    return document


def layer_document(layer: LayerRecord, lay: LayerLayout) -> dict[str, object]:
    """One layer's data file: the layer, then every unit in index order."""
    return {
        "schema": SCHEMA,
        "manifest": MANIFEST,
        "layer": _layer_entry(layer, lay),  # as the manifest lists it
        "units": [_unit_entry(unit, lay) for unit in ordered_units(layer)],
    }


def json_bytes(document: Mapping[str, object]) -> bytes:
    """Deterministic JSON: sorted keys, one-space indent, final newline."""
    text = json.dumps(
        document, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False
    )
    return (text + "\n").encode("utf-8")


def json_safe(value: object) -> object:
    """Plain JSON values: NumPy to builtins, NaN and infinities to null."""
    if isinstance(value, np.generic | np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [json_safe(item) for item in items]
    if isinstance(value, PurePath):
        return value.as_posix()
    return str(value)


def _layer_fields(layer: LayerRecord, lay: LayerLayout) -> dict[str, object]:
    info = layer.info
    return {
        "name": info.name,
        "slug": lay.slug,
        "page": lay.page,
        "data": lay.data,
        "class_name": info.class_name,
        "output_shape": list(info.output_shape),
        "kind": info.kind,
        "activation": info.activation,
        "uses_logits": info.uses_logits,
        "unit_count": len(layer.units),
        "sheet": _geometry(lay.sheet),
        "grid_sheet": None if lay.grid is None else _geometry(lay.grid),
        "context_sheet": (
            None if lay.context is None else _geometry(lay.context.sheet)
        ),
        "settings": json_safe(layer.settings),
        "overrides": json_safe(layer.overrides),
    }


def _geometry(geometry: SheetGeometry) -> dict[str, object]:
    """How to cut a sheet: cell i spans x from i * (width + gap)."""
    return {"cell": list(geometry.cell), "gap": geometry.gap}


def _layer_entry(layer: LayerRecord, lay: LayerLayout) -> dict[str, object]:
    entry = _layer_fields(layer, lay)
    entry["unit_pages"] = {"folder": f"units/{lay.slug}", "shard": lay.page_shard}
    return entry


def _unit_entry(unit: UnitRecord, lay: LayerLayout) -> dict[str, object]:
    files = lay.files(unit)
    return {
        "index": unit.index,
        "page": files.page,
        "label": unit.label,
        "label_counts": json_safe(unit.label_counts),
        # JSON objects have no order; the views' order is the progression.
        "views": list(unit.images),
        "images": dict(files.views),
        "thumbnails": dict(files.thumbs),
        "image_quality": json_safe(unit.image_quality),
        "sheets": {
            "top": files.top,
            "bottom": files.bottom,
            "grid": files.grid,
            "context": files.context,
        },
        "heatmaps": {"top": dict(files.top_heat), "bottom": dict(files.bottom_heat)},
        "top_k": _examples(unit.top_k),
        "bottom_k": _examples(unit.bottom_k),
        "quality": json_safe(unit.quality),
        "stats": json_safe(unit.stats),
        "histogram": _histogram(unit),
        "promotes": _weights(unit.promotes),
        "suppresses": _weights(unit.suppresses),
    }


def _examples(examples: Sequence[TopKExample]) -> list[dict[str, object]]:
    return [
        {
            "image": int(example.image),
            "value": json_safe(float(example.value)),
            "label": example.label,
            "source": example.source,
            "box": [box.top, box.left, box.bottom, box.right],
            "heatmaps": sorted(example.heatmaps),
        }
        for example in examples
        for box in [example.box]
    ]


def _histogram(unit: UnitRecord) -> dict[str, object] | None:
    histogram = unit.histogram
    if histogram is None:
        return None
    return {"edges": json_safe(histogram.edges), "counts": json_safe(histogram.counts)}


def _weights(weights: Sequence) -> list[dict[str, object]]:
    return [
        {"label": weight.label, "weight": json_safe(float(weight.weight))}
        for weight in weights
    ]
