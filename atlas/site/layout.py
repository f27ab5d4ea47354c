"""Where every file of the site goes, decided before anything is written.

Paths are relative to the output root with "/" separators. A unit's page
is `units/<layer>/<index>.html`, in numbered folders of `PAGE_SHARD` when
a layer is large, so that no folder holds over `MAX_ENTRIES` (C17) and a
unit's URL depends only on its layer and index: citable across rebuilds.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from atlas.errors import BuildError
from atlas.records import AtlasRecord, LayerRecord, TopKExample, UnitRecord
from atlas.site import images
from atlas.site.context import ContextPlan, has_context, plan_context
from atlas.site.sheets import GRID_CELL, SheetGeometry, cell_size, plan_sheet
from atlas.site.slug import unique_slugs

# Static hosts and file browsers slow down or refuse past this many entries.
MAX_ENTRIES = 1000
# Unit pages per folder of a sharded layer; fixed, so unit URLs stay stable.
PAGE_SHARD = 500
# Units per image folder, the largest that keeps the folder under the cap.
IMAGE_SHARDS = (500, 250, 200, 100, 50, 25, 20, 10, 5, 2, 1)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitFiles:
    """Every file of one unit; a kind the unit lacks is None or absent."""

    page: str
    views: Mapping[str, str]  # view key -> full-size image
    thumbs: Mapping[str, str]  # view key -> grid thumbnail, large views only
    top: str | None  # the top-k crops, best first
    bottom: str | None  # the bottom-k crops, weakest first
    grid: str | None  # the best few crops, small, for large crops only
    top_heat: Mapping[str, str] = field(default_factory=dict)  # method ->
    bottom_heat: Mapping[str, str] = field(default_factory=dict)
    context: str | None = None  # the top-k's whole images, box outlined

    def images(self) -> list[str]:
        """Every image path, in a fixed order."""
        sheets = [self.top, self.bottom, self.grid, self.context]
        return [
            *self.views.values(),
            *self.thumbs.values(),
            *(path for path in sheets if path is not None),
            *self.top_heat.values(),
            *self.bottom_heat.values(),
        ]


@dataclass(frozen=True)
class LayerLayout:
    """The file names of one layer's pages, data and images."""

    slug: str
    views: Mapping[str, str]  # view key -> slug, for every view of the atlas
    methods: Mapping[str, str]  # attribution method -> slug
    page_shard: int | None  # units per page folder; None when flat
    image_shard: int | None  # units per image folder; None when flat
    sheet: SheetGeometry  # cells of the top-k, bottom-k and heatmap sheets
    grid: SheetGeometry | None  # cells of the grid sheet, if it has its own
    context: ContextPlan | None = None  # the "in context" strip; conv only

    @property
    def page(self) -> str:
        return f"layers/{self.slug}.html"

    @property
    def data(self) -> str:
        return f"data/{self.slug}.json"

    def unit_page(self, index: int) -> str:
        folder = _folder(f"units/{self.slug}", index, self.page_shard)
        return f"{folder}/{index:04d}.html"

    def files(self, unit: UnitRecord) -> UnitFiles:
        """Where each of `unit`'s images goes."""
        index = unit.index
        sheet_ext = images.extension(self.sheet.smooth)
        big = [
            key for key, array in unit.images.items() if images.needs_thumbnail(array)
        ]
        return UnitFiles(
            page=self.unit_page(index),
            views={
                key: self._image(index, f"v-{self.views[key]}", "png")
                for key in unit.images
            },
            thumbs={
                key: self._image(index, f"t-{self.views[key]}", "webp") for key in big
            },
            top=self._image(index, "top", sheet_ext) if unit.top_k else None,
            bottom=(self._image(index, "bottom", sheet_ext) if unit.bottom_k else None),
            grid=(
                self._image(index, "grid", "webp")
                if unit.top_k and self.grid is not None
                else None
            ),
            top_heat=self._heat(index, "top", unit.top_k, sheet_ext),
            bottom_heat=self._heat(index, "bottom", unit.bottom_k, sheet_ext),
            context=self._context(index, unit),
        )

    def _context(self, index: int, unit: UnitRecord) -> str | None:
        if self.context is None or not has_context(unit.top_k):
            return None
        ext = images.extension(self.context.sheet.smooth)
        return self._image(index, "context", ext)

    def _heat(
        self, index: int, kind: str, examples: list[TopKExample], ext: str
    ) -> dict[str, str]:
        return {
            method: self._image(index, f"heat-{kind}-{self.methods[method]}", ext)
            for method in heat_methods(examples)
        }

    def _image(self, index: int, name: str, ext: str) -> str:
        # Names cannot meet: views are "v-<slug>", thumbnails "t-<slug>",
        # heatmaps "heat-<kind>-<slug>", sheets "top", "bottom", "grid",
        # "context".
        folder = _folder(f"img/{self.slug}", index, self.image_shard)
        return f"{folder}/{index:04d}-{name}.{ext}"


@dataclass(frozen=True)
class SiteLayout:
    """Slugs for every layer name, and the layout of each atlas layer."""

    slugs: Mapping[str, str]  # layer name -> slug, for every known layer
    layers: tuple[LayerLayout, ...]  # aligned with `AtlasRecord.layers`


def plan_layout(atlas: AtlasRecord) -> SiteLayout:
    """Decide every path before anything is written."""
    _check_distinct([layer.info.name for layer in atlas.layers], "layer names")
    if len(atlas.layers) > MAX_ENTRIES:
        raise BuildError(
            f"the atlas has {len(atlas.layers)} layers; the layers/ folder may "
            f"hold at most {MAX_ENTRIES}; build the layers in several atlases"
        )
    names = [info.name for info in atlas.all_layers]
    names += [layer.info.name for layer in atlas.layers]
    slugs = unique_slugs(list(dict.fromkeys(names)))
    units = [unit for layer in atlas.layers for unit in layer.units]
    views = unique_slugs(sorted({key for unit in units for key in unit.images}))
    methods = unique_slugs(sorted(_all_methods(units)))
    layouts = tuple(
        _layer_layout(layer, slugs[layer.info.name], views, methods)
        for layer in atlas.layers
    )
    return SiteLayout(slugs=slugs, layers=layouts)


def ordered_units(layer: LayerRecord) -> list[UnitRecord]:
    """Units by index: the order of pages, links and data entries."""
    return sorted(layer.units, key=lambda unit: unit.index)


def heat_methods(examples: Iterable[TopKExample]) -> list[str]:
    """The attribution methods of some examples, in order of appearance."""
    seen: dict[str, None] = {}
    for example in examples:
        seen.update(dict.fromkeys(example.heatmaps))
    return list(seen)


def layer_crops(layer: LayerRecord) -> list:
    """Every top-k and bottom-k crop of a layer."""
    return [ex.crop for unit in layer.units for ex in [*unit.top_k, *unit.bottom_k]]


def main_view(unit: UnitRecord) -> str | None:
    """The view the grid shows: the quality figures' preset, else the first."""
    preset = unit.quality.get("preset")
    if isinstance(preset, str) and preset in unit.images:
        return preset
    return next(iter(unit.images), None)


def _layer_layout(
    layer: LayerRecord,
    slug: str,
    views: Mapping[str, str],
    methods: Mapping[str, str],
) -> LayerLayout:
    indices = [unit.index for unit in layer.units]
    _check_distinct(indices, f"unit indices of layer {layer.info.name!r}")
    if any(index < 0 for index in indices):
        raise BuildError(
            f"layer {layer.info.name!r} has a negative unit index; expected "
            f"indices from 0, got {min(indices)}"
        )
    crop = cell_size(layer_crops(layer))
    sheet = plan_sheet(crop)
    grid = plan_sheet(crop, GRID_CELL) if max(sheet.cell) > GRID_CELL else None
    context = plan_context(layer)
    per_unit = max(
        (_image_count(u, grid is not None, context) for u in layer.units),
        default=1,
    )
    return LayerLayout(
        slug=slug,
        views=views,
        methods=methods,
        page_shard=PAGE_SHARD if len(indices) > PAGE_SHARD else None,
        image_shard=_image_shard(len(indices), per_unit),
        sheet=sheet,
        grid=grid,
        context=context,
    )


def _image_count(unit: UnitRecord, grid: bool, context: ContextPlan | None) -> int:
    thumbs = sum(images.needs_thumbnail(array) for array in unit.images.values())
    sheets = bool(unit.top_k) * (1 + grid) + bool(unit.bottom_k)
    sheets += context is not None and has_context(unit.top_k)
    heat = len(heat_methods(unit.top_k)) + len(heat_methods(unit.bottom_k))
    return max(1, len(unit.images) + thumbs + sheets + heat)


def _all_methods(units: Iterable[UnitRecord]) -> set[str]:
    return {
        method
        for unit in units
        for example in [*unit.top_k, *unit.bottom_k]
        for method in example.heatmaps
    }


def _image_shard(units: int, files_per_unit: int) -> int | None:
    if units * files_per_unit <= MAX_ENTRIES:
        return None
    for shard in IMAGE_SHARDS:
        if shard * files_per_unit <= MAX_ENTRIES:
            return shard
    raise BuildError(
        f"a unit of this layer has {files_per_unit} images, more than one "
        f"folder may hold ({MAX_ENTRIES}); expected fewer views and heatmap "
        "methods per unit"
    )


def _folder(base: str, index: int, shard: int | None) -> str:
    return base if shard is None else f"{base}/{index // shard:03d}"


def _check_distinct(items: list, what: str) -> None:
    repeated = sorted(item for item, n in Counter(items).items() if n > 1)
    if repeated:
        raise BuildError(
            f"the atlas repeats {what}: {repeated!r}; expected each once, so "
            "that every page has its own file"
        )
