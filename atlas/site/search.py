"""The search index: every layer and unit, with its label and the classes it
promotes, as a classic script that sets `window.ATLAS_SEARCH`.

A page opened from disk cannot `fetch` a JSON file, but it can load a
script (C15). Pages load the index only when the reader starts a search.
Labels and class names are listed once, in `strings`, and units refer to
them by position; a unit's page is not listed either: the script derives
it from the layer's `folder` and `shard`, as `LayerLayout.unit_page` does.
This keeps the index near 20 bytes a unit.
"""

from __future__ import annotations

import json
import logging

from atlas.records import AtlasRecord, UnitRecord
from atlas.site.layout import SiteLayout, ordered_units

# The script checks this before reading the index; bump it with the shape.
SEARCH_SCHEMA = 1
GLOBAL = "ATLAS_SEARCH"
# Classes per unit listed in the index: enough to find a unit by the class
# it promotes most, without growing the index with long tails.
PROMOTED = 3

logger = logging.getLogger(__name__)


def search_index(atlas: AtlasRecord, layout: SiteLayout) -> bytes:
    """The index script's bytes: one assignment of a JSON object."""
    strings: dict[str, int] = {}
    layers = [
        {
            "name": layer.info.name,
            "page": lay.page,
            "folder": f"units/{lay.slug}",
            "shard": lay.page_shard or 0,
            "units": [_unit(unit, strings) for unit in ordered_units(layer)],
        }
        for layer, lay in zip(atlas.layers, layout.layers, strict=True)
    ]
    document = {
        "schema": SEARCH_SCHEMA,
        "title": atlas.title,
        "strings": list(strings),
        "layers": layers,
    }
    # ASCII-only JSON is valid JavaScript in every engine (no raw U+2028).
    text = json.dumps(document, ensure_ascii=True, separators=(",", ":"))
    return f"window.{GLOBAL} = {text};\n".encode("ascii")


def _unit(unit: UnitRecord, strings: dict[str, int]) -> list[object]:
    """[index, label, promoted classes], the texts as positions in
    `strings` (-1 for no label); empty parts are left off the end."""
    label = -1 if unit.label is None else _position(unit.label, strings)
    promoted = [_position(w.label, strings) for w in unit.promotes[:PROMOTED]]
    entry: list[object] = [unit.index, label, promoted]
    if not promoted:
        entry.pop()
        if label < 0:
            entry.pop()
    return entry


def _position(text: str, strings: dict[str, int]) -> int:
    return strings.setdefault(text, len(strings))
