"""What each page template receives: frozen dataclasses built from records.

Builders compute every link relative to the page's own file, format every
number for reading, and leave templates nothing to decide but layout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import Markup

from atlas.records import AtlasRecord, LayerRecord, TopKExample, UnitRecord
from atlas.site.facts import (
    DEAD_NOTE,
    Fact,
    format_number,
    index_facts,
    layer_facts,
    percent,
    quality_facts,
    shape_text,
    stats_facts,
    version_facts,
)
from atlas.site.manifest import LayerLayout, SiteLayout, ordered_units
from atlas.site.paths import INDEX, MANIFEST, STYLESHEET, relative, root_of
from atlas.site.pictures import Picture, grid_sheet, page_sheet, synthesized

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Link:
    """A labelled link; `href` is None for the page the reader is on."""

    label: str
    href: str | None


@dataclass(frozen=True)
class Frame:
    """What every page shares: its title, way back to the root, navigation."""

    title: str
    site_title: str
    root: str  # the folder path from this page to the site root: ".", "../.."
    stylesheet: str
    home: str
    manifest: str
    nav: tuple[Link, ...]  # breadcrumbs from the index; the last is this page


@dataclass(frozen=True)
class LayerRow:
    """One model layer in the index table; `href` only if it is in the atlas."""

    name: str
    class_name: str
    shape: str
    units: str
    href: str | None


@dataclass(frozen=True)
class IndexPage:
    """The front page: about text, model facts, every layer of the model."""

    frame: Frame
    title: str
    about: Markup
    facts: tuple[Fact, ...]
    versions: tuple[Fact, ...]
    accuracy: str | None  # percent of logits units classified as their own
    layers: tuple[LayerRow, ...]
    atlas_layers: int
    atlas_units: int


@dataclass(frozen=True)
class UnitCell:
    """One unit on the layer grid: its image, its top-k sheet, one note."""

    index: int
    anchor: str
    href: str
    image: Picture | None
    sheet: Picture | None
    note: str
    dead: bool
    low: bool


@dataclass(frozen=True)
class LayerPage:
    """A layer: its facts and a grid of all its units."""

    frame: Frame
    name: str
    facts: tuple[Fact, ...]
    logits_note: str | None
    cells: tuple[UnitCell, ...]


@dataclass(frozen=True)
class Synthesized:
    """A unit's synthesized image under one preset."""

    preset: str
    picture: Picture


@dataclass(frozen=True)
class Example:
    """One top-k example as text: rank, value, label, where it came from."""

    rank: int
    value: str
    label: str
    source: str
    image: int


@dataclass(frozen=True)
class UnitPage:
    """A unit: what it wants, what in the data excites it, how sure we are."""

    frame: Frame
    layer: str
    index: int
    logits_note: str | None
    value_name: str  # "activation", or "logit" when read before a softmax
    dead: bool
    images: tuple[Synthesized, ...]
    sheet: Picture | None
    examples: tuple[Example, ...]
    quality: tuple[Fact, ...]
    stats: tuple[Fact, ...]
    previous: Link | None
    next: Link | None
    up: Link
    home: Link


Page = IndexPage | LayerPage | UnitPage


def index_page(atlas: AtlasRecord, layout: SiteLayout) -> IndexPage:
    """The front page, with a row for every layer of the model."""
    pages = {
        layer.info.name: lay.page
        for layer, lay in zip(atlas.layers, layout.layers, strict=True)
    }
    rows = tuple(
        LayerRow(
            name=info.name,
            class_name=info.class_name,
            shape=shape_text(info.output_shape),
            units=format_number(info.units),
            href=relative(pages[info.name], INDEX) if info.name in pages else None,
        )
        for info in atlas.all_layers
    )
    accuracy = atlas.summary.get("logits_accuracy")
    return IndexPage(
        frame=_frame(atlas, INDEX, atlas.title, ()),
        title=atlas.title,
        # The one trusted string: Markdown rendered with raw HTML escaped.
        about=Markup(atlas.about_html),
        facts=index_facts(atlas),
        versions=version_facts(atlas.versions),
        accuracy=None if accuracy is None else percent(accuracy),
        layers=rows,
        atlas_layers=len(atlas.layers),
        atlas_units=sum(len(layer.units) for layer in atlas.layers),
    )


def layer_page(
    atlas: AtlasRecord,
    layer: LayerRecord,
    lay: LayerLayout,
    cell: tuple[int, int],
) -> LayerPage:
    """A layer's grid: one cell per unit, in unit order."""
    name = layer.info.name
    here = lay.page
    cells = tuple(
        _unit_cell(atlas, layer, lay, unit, cell) for unit in ordered_units(layer)
    )
    return LayerPage(
        frame=_frame(atlas, here, f"Layer {name}", (Link(name, None),)),
        name=name,
        facts=layer_facts(layer.info),
        logits_note=_logits_note(layer),
        cells=cells,
    )


def unit_page(
    atlas: AtlasRecord,
    layer: LayerRecord,
    lay: LayerLayout,
    unit: UnitRecord,
    neighbours: tuple[UnitRecord | None, UnitRecord | None],
    cell: tuple[int, int],
) -> UnitPage:
    """A unit's page; `neighbours` are the units before and after it."""
    name = layer.info.name
    here = lay.unit_page(unit.index)
    up = relative(lay.page, here) + "#" + _anchor(unit.index)
    crumbs = (Link(name, up), Link(f"Unit {unit.index}", None))
    before, after = neighbours
    return UnitPage(
        frame=_frame(atlas, here, f"Layer {name}, unit {unit.index}", crumbs),
        layer=name,
        index=unit.index,
        logits_note=_logits_note(layer),
        value_name="logit" if layer.info.uses_logits else "activation",
        dead=_is_dead(unit),
        images=tuple(
            Synthesized(preset, synthesized(name, lay, unit, preset, here, large=True))
            for preset in _presets(atlas, unit)
        ),
        sheet=page_sheet(name, lay, unit, cell, here),
        examples=tuple(_example(rank, ex) for rank, ex in enumerate(unit.top_k, 1)),
        quality=quality_facts(unit.quality),
        stats=stats_facts(unit.stats),
        previous=_neighbour(lay, before, here),
        next=_neighbour(lay, after, here),
        up=Link(f"Layer {name}", up),
        home=Link(atlas.title, relative(INDEX, here)),
    )


def _frame(
    atlas: AtlasRecord, here: str, title: str, crumbs: tuple[Link, ...]
) -> Frame:
    home = relative(INDEX, here)
    first = Link(atlas.title, home if crumbs else None)
    return Frame(
        title=f"{title} · {atlas.title}" if crumbs else atlas.title,
        site_title=atlas.title,
        root=root_of(here),
        stylesheet=relative(STYLESHEET, here),
        home=home,
        manifest=relative(MANIFEST, here),
        nav=(first, *crumbs),
    )


def _unit_cell(
    atlas: AtlasRecord,
    layer: LayerRecord,
    lay: LayerLayout,
    unit: UnitRecord,
    cell: tuple[int, int],
) -> UnitCell:
    name, here = layer.info.name, lay.page
    presets = _presets(atlas, unit)
    dead = _is_dead(unit)
    return UnitCell(
        index=unit.index,
        anchor=_anchor(unit.index),
        href=relative(lay.unit_page(unit.index), here),
        image=synthesized(name, lay, unit, presets[0], here) if presets else None,
        sheet=None if dead else grid_sheet(name, lay, unit, cell, here),
        note=_quality_line(unit.quality),
        dead=dead,
        low=bool(unit.quality.get("low")),
    )


def _presets(atlas: AtlasRecord, unit: UnitRecord) -> list[str]:
    """The unit's presets: the atlas's order first, then any others."""
    known = [preset for preset in atlas.presets if preset in unit.images]
    return known + [preset for preset in unit.images if preset not in known]


def _example(rank: int, example: TopKExample) -> Example:
    return Example(
        rank=rank,
        value=format_number(example.value),
        label="—" if example.label is None else example.label,
        source=example.source,
        image=int(example.image),
    )


def _neighbour(lay: LayerLayout, unit: UnitRecord | None, here: str) -> Link | None:
    if unit is None:
        return None
    return Link(f"Unit {unit.index}", relative(lay.unit_page(unit.index), here))


def _anchor(index: int) -> str:
    return f"u{index:04d}"


def _is_dead(unit: UnitRecord) -> bool:
    return bool(unit.quality.get("dead"))


def _quality_line(quality: Mapping[str, object]) -> str:
    """One short line for the grid: how close the image gets to the data."""
    if quality.get("dead"):
        return DEAD_NOTE
    ratio = quality.get("ratio")
    if ratio is None:
        reached = format_number(quality.get("final"))
        return f"{DEAD_NOTE}; the image reaches {reached}"
    line = f"{percent(ratio)} of the dataset maximum"
    return f"{line} (low)" if quality.get("low") else line


def _logits_note(layer: LayerRecord) -> str | None:
    info = layer.info
    if not info.uses_logits:
        return None
    return (
        f"This layer ends in a fused {info.activation}: the objective and "
        f"every value shown are its pre-activation logits, not the "
        f"{info.activation} outputs."
    )
