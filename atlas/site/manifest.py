"""The site's files: where each goes, how it is written, the manifest of them.

Paths are relative to the output root with "/" separators. Large layers are
sharded into numbered folders so that no folder holds over `MAX_ENTRIES`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np

from atlas.errors import BuildError
from atlas.records import AtlasRecord, LayerRecord, UnitRecord
from atlas.site.slug import unique_slugs

SCHEMA = 1
# Static hosts and file browsers slow down or refuse past this many entries.
MAX_ENTRIES = 1000
# Unit pages per folder of a sharded layer; fixed, so unit URLs stay stable.
PAGE_SHARD = 500
# Units per image folder, the largest that keeps the folder under the cap.
IMAGE_SHARDS = (500, 250, 200, 100, 50, 25, 20, 10, 5, 2, 1)
SHEET_NAME = "topk"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerLayout:
    """The file names of one layer's pages and images."""

    slug: str
    presets: Mapping[str, str]  # preset name -> slug
    page_shard: int | None  # units per page folder; None when flat
    image_shard: int | None  # units per image folder; None when flat

    @property
    def page(self) -> str:
        return f"layers/{self.slug}.html"

    def unit_page(self, index: int) -> str:
        folder = _folder(f"units/{self.slug}", index, self.page_shard)
        return f"{folder}/{index:04d}.html"

    def unit_image(self, index: int, preset: str) -> str:
        return self._image(index, self.presets[preset])

    def unit_sheet(self, index: int) -> str:
        return self._image(index, SHEET_NAME)

    def _image(self, index: int, kind: str) -> str:
        folder = _folder(f"img/{self.slug}", index, self.image_shard)
        return f"{folder}/{index:04d}-{kind}.png"


@dataclass(frozen=True)
class SiteSummary:
    """What a render wrote: counts of pages, images, all files and bytes."""

    output: Path
    pages: int
    images: int
    files: int
    bytes: int


@dataclass(frozen=True)
class SiteLayout:
    """Slugs for every layer name, and the layout of each atlas layer."""

    slugs: Mapping[str, str]  # layer name -> slug, for every known layer
    layers: tuple[LayerLayout, ...]  # aligned with `AtlasRecord.layers`


class SiteWriter:
    """Writes files atomically under one root and counts what it wrote."""

    def __init__(self, root: Path) -> None:
        if not Path(root).is_dir():
            raise BuildError(
                f"the output folder {str(root)!r} does not exist; expected a "
                "folder created by the caller; create it first"
            )
        self.root = Path(root).resolve()
        self.pages = 0
        self.images = 0
        self.files = 0
        self.bytes = 0
        self._folders: set[Path] = set()

    def write_page(self, relative: str, data: bytes) -> None:
        self.write(relative, data)
        self.pages += 1

    def write_image(self, relative: str, data: bytes) -> None:
        self.write(relative, data)
        self.images += 1

    def write(self, relative: str, data: bytes) -> None:
        """Write `data` to a temporary file beside the target, then rename."""
        path = self.root.joinpath(*relative.split("/"))
        self._ensure_folder(path.parent)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self.files += 1
        self.bytes += len(data)
        logger.debug("wrote %s (%d bytes)", relative, len(data))

    def _ensure_folder(self, folder: Path) -> None:
        if folder in self._folders:
            return
        # A symlinked folder inside the output could point anywhere.
        if not folder.resolve().is_relative_to(self.root):
            raise BuildError(
                f"refusing to write into {str(folder)!r}: it resolves outside "
                f"the output folder {str(self.root)!r}; remove the link"
            )
        folder.mkdir(parents=True, exist_ok=True)
        self._folders.add(folder)

    def summary(self) -> SiteSummary:
        """The counts so far, as a frozen record for the caller."""
        return SiteSummary(
            output=self.root,
            pages=self.pages,
            images=self.images,
            files=self.files,
            bytes=self.bytes,
        )


def plan_layout(atlas: AtlasRecord) -> SiteLayout:
    """Decide every path before anything is written."""
    _check_distinct([layer.info.name for layer in atlas.layers], "layer names")
    names = [info.name for info in atlas.all_layers]
    names += [layer.info.name for layer in atlas.layers]
    slugs = unique_slugs(list(dict.fromkeys(names)))
    preset_names = list(atlas.presets)
    for layer in atlas.layers:
        for unit in layer.units:
            preset_names.extend(unit.images)
    presets = unique_slugs(sorted(set(preset_names)), reserved={SHEET_NAME})
    layouts = tuple(
        _layer_layout(layer, slugs[layer.info.name], presets) for layer in atlas.layers
    )
    return SiteLayout(slugs=slugs, layers=layouts)


def build_manifest(atlas: AtlasRecord, layout: SiteLayout) -> dict[str, object]:
    """The manifest document: what was built, and every file per unit."""
    layers = [
        _layer_entry(layer, lay)
        for layer, lay in zip(atlas.layers, layout.layers, strict=True)
    ]
    return {
        "schema": SCHEMA,
        "title": atlas.title,
        "model": json_safe(atlas.model),
        "settings": json_safe(atlas.settings),
        "versions": json_safe(atlas.versions),
        "data": json_safe(atlas.data),
        "summary": json_safe(atlas.summary),
        "presets": list(atlas.presets),
        "layers": layers,
    }


def manifest_bytes(document: Mapping[str, object]) -> bytes:
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


def ordered_units(layer: LayerRecord) -> list[UnitRecord]:
    """Units by index: the order of pages, links and manifest entries."""
    return sorted(layer.units, key=lambda unit: unit.index)


def _layer_layout(
    layer: LayerRecord, slug: str, presets: Mapping[str, str]
) -> LayerLayout:
    indices = [unit.index for unit in layer.units]
    _check_distinct(indices, f"unit indices of layer {layer.info.name!r}")
    if any(index < 0 for index in indices):
        raise BuildError(
            f"layer {layer.info.name!r} has a negative unit index; expected "
            f"indices from 0, got {min(indices)}"
        )
    count = len(indices)
    per_unit = 1 + max((len(unit.images) for unit in layer.units), default=0)
    return LayerLayout(
        slug=slug,
        presets=presets,
        page_shard=PAGE_SHARD if count > PAGE_SHARD else None,
        image_shard=_image_shard(count, per_unit),
    )


def _image_shard(units: int, files_per_unit: int) -> int | None:
    if units * files_per_unit <= MAX_ENTRIES:
        return None
    return next(s for s in IMAGE_SHARDS if s * files_per_unit <= MAX_ENTRIES)


def _folder(base: str, index: int, shard: int | None) -> str:
    return base if shard is None else f"{base}/{index // shard:03d}"


def _check_distinct(items: list, what: str) -> None:
    repeated = sorted(item for item, n in Counter(items).items() if n > 1)
    if repeated:
        raise BuildError(
            f"the atlas repeats {what}: {repeated!r}; expected each once, so "
            "that every page has its own file"
        )


def _layer_entry(layer: LayerRecord, lay: LayerLayout) -> dict[str, object]:
    info = layer.info
    return {
        "name": info.name,
        "slug": lay.slug,
        "page": lay.page,
        "class_name": info.class_name,
        "output_shape": list(info.output_shape),
        "kind": info.kind,
        "activation": info.activation,
        "uses_logits": info.uses_logits,
        "units": [_unit_entry(unit, lay) for unit in ordered_units(layer)],
    }


def _unit_entry(unit: UnitRecord, lay: LayerLayout) -> dict[str, object]:
    index = unit.index
    return {
        "index": index,
        "page": lay.unit_page(index),
        "images": {preset: lay.unit_image(index, preset) for preset in unit.images},
        "sheet": lay.unit_sheet(index) if unit.top_k else None,
        "top_k": [
            {
                "image": int(example.image),
                "value": json_safe(float(example.value)),
                "label": example.label,
                "source": example.source,
                "box": [b.top, b.left, b.bottom, b.right],
            }
            for example in unit.top_k
            for b in [example.box]
        ],
        "quality": json_safe(unit.quality),
        "stats": json_safe(unit.stats),
    }
