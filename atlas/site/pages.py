"""What the index and layer templates receive: frozen dataclasses built from
records, and the frame every page shares.

Builders compute every link relative to the page's own file, format every
number for reading, and leave templates nothing to decide but layout.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from markupsafe import Markup

from atlas.records import AtlasRecord, LayerRecord, UnitRecord
from atlas.site import pictures
from atlas.site.facts import (
    DEAD_NOTE,
    Fact,
    format_number,
    index_facts,
    layer_facts,
    layer_settings_facts,
    percent,
    shape_text,
    version_facts,
)
from atlas.site.layout import LayerLayout, SiteLayout, main_view, ordered_units
from atlas.site.paths import (
    ICON,
    INDEX,
    MANIFEST,
    SCRIPT,
    STYLESHEET,
    relative,
    root_of,
)
from atlas.site.pictures import Picture
from atlas.site.publish import absolute_url

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Site:
    """What every page builder needs: the atlas, its layout, its address."""

    atlas: AtlasRecord
    layout: SiteLayout
    base_url: str | None  # normalized, ending in "/"; None when unpublished


@dataclass(frozen=True)
class Link:
    """A labelled link; `href` is None for the page the reader is on."""

    label: str
    href: str | None


@dataclass(frozen=True)
class Frame:
    """What every page shares: its title, way back to the root, navigation."""

    title: str
    colophon: str  # the footer's line: what the atlas is of
    root: str  # the folder path from this page to the site root: ".", "../.."
    stylesheet: str
    script: str
    icon: str
    home: str
    manifest: str
    canonical: str | None  # the page's public address, if base_url is set
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
    """One unit on the layer grid: its image, its best crops, one note."""

    index: int
    anchor: str
    href: str
    label: str | None
    image: Picture | None
    sheet: Picture | None
    note: str
    dead: bool
    low: bool
    sort: tuple[tuple[str, str], ...]  # (data attribute, value) sort keys


@dataclass(frozen=True)
class LayerPage:
    """A layer: its facts and a grid of all its units."""

    frame: Frame
    name: str
    facts: tuple[Fact, ...]
    tally: str  # how many units, dead, low quality, labelled
    logits_note: str | None
    cells: tuple[UnitCell, ...]
    # Every synthesized image (or every sheet) of the grid is upscaled by a
    # whole factor: the grid says so once instead of each image.
    pixelated_views: bool
    pixelated_crops: bool
    previous: Link | None  # the layer before, in atlas order
    next: Link | None


def frame(site: Site, here: str, title: str, crumbs: tuple[Link, ...]) -> Frame:
    """The frame of the page at the root-relative path `here`."""
    atlas = site.atlas
    home = relative(INDEX, here)
    first = Link(atlas.title, home if crumbs else None)
    canonical = None if site.base_url is None else absolute_url(site.base_url, here)
    return Frame(
        title=f"{title} · {atlas.title}" if crumbs else atlas.title,
        colophon=colophon(atlas),
        root=root_of(here),
        stylesheet=relative(STYLESHEET, here),
        script=relative(SCRIPT, here),
        icon=relative(ICON, here),
        home=home,
        manifest=relative(MANIFEST, here),
        canonical=canonical,
        nav=(first, *crumbs),
    )


def colophon(atlas: AtlasRecord) -> str:
    """What the atlas is of, by the model's name: the title, which defaults
    to the product's name and often says "atlas" itself, would read
    "A neuron atlas of Neuron Atlas"."""
    name = atlas.model.get("name")
    if not name:
        return "A neuron atlas made with Neuron Atlas."
    return f"A neuron atlas of the model {name}, made with Neuron Atlas."


def index_page(site: Site) -> IndexPage:
    """The front page, with a row for every layer of the model."""
    atlas = site.atlas
    pages = {
        layer.info.name: lay.page
        for layer, lay in zip(atlas.layers, site.layout.layers, strict=True)
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
        frame=frame(site, INDEX, atlas.title, ()),
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


def layer_page(site: Site, position: int) -> LayerPage:
    """The grid of the atlas's `position`-th layer, one cell per unit."""
    layer = site.atlas.layers[position]
    lay = site.layout.layers[position]
    name = layer.info.name
    units = ordered_units(layer)
    cells = tuple(_unit_cell(layer, lay, unit) for unit in units)
    return LayerPage(
        frame=frame(site, lay.page, f"Layer {name}", (Link(name, None),)),
        name=name,
        facts=layer_facts(layer.info)
        + layer_settings_facts(layer.settings, layer.overrides),
        tally=_tally(units),
        logits_note=logits_note(layer),
        cells=cells,
        pixelated_views=_all_pixelated(cell.image for cell in cells),
        pixelated_crops=_all_pixelated(cell.sheet for cell in cells),
        previous=_layer_link(site, position - 1, lay.page),
        next=_layer_link(site, position + 1, lay.page),
    )


def anchor(index: int) -> str:
    """The id of a unit's cell on its layer page."""
    return f"u{index:04d}"


def is_dead(unit: UnitRecord) -> bool:
    """Never active on the dataset, and its image cannot make it fire."""
    return bool(unit.quality.get("dead"))


def is_inactive(unit: UnitRecord) -> bool:
    """Never active on the dataset: its top-k examples are mere ties."""
    best = unit.stats.get("max", unit.quality.get("dataset_max"))
    return is_dead(unit) or (_finite(best) and not best > 0)


def logits_note(layer: LayerRecord) -> str | None:
    """Why values of a softmax layer are logits, or None for other layers."""
    info = layer.info
    if not info.uses_logits:
        return None
    return (
        f"This layer ends in a fused {info.activation}: the objective and "
        f"every value shown are its pre-activation logits, not the "
        f"{info.activation} outputs."
    )


def _unit_cell(layer: LayerRecord, lay: LayerLayout, unit: UnitRecord) -> UnitCell:
    here, index = lay.page, unit.index
    files = lay.files(unit)
    key = main_view(unit)
    dead = is_dead(unit)
    image = None
    if key is not None:
        alt = f"Unit {index}: synthesized image"
        image = pictures.view(unit, files, key, here, alt, pictures.THUMB)
    alt = f"Unit {index}: top dataset crops"
    sheet = None
    if not is_inactive(unit):
        sheet = pictures.grid_sheet(lay, files, len(unit.top_k), here, alt)
    return UnitCell(
        index=index,
        anchor=anchor(index),
        href=relative(files.page, here),
        label=unit.label,
        image=image,
        sheet=sheet,
        note=_quality_line(unit.quality),
        dead=dead,
        low=bool(unit.quality.get("low")),
        sort=_sort_keys(unit),
    )


def _sort_keys(unit: UnitRecord) -> tuple[tuple[str, str], ...]:
    """Values the layer page sorts by, besides the unit and its label:
    activation, active share, quality; a missing or non-finite value is
    left out and sorts last. Three digits order units as the page shows
    them; ties fall back to the unit number."""
    keys = {
        "a": unit.stats.get("max"),
        "s": unit.stats.get("active_fraction"),
        "q": unit.quality.get("ratio"),
    }
    return tuple(
        (name, f"{value:.3g}") for name, value in keys.items() if _finite(value)
    )


def _finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, float | int):
        return False
    return value == value and abs(value) != float("inf")


def _all_pixelated(shown: Iterable[Picture | None]) -> bool:
    present = [picture for picture in shown if picture is not None]
    return bool(present) and all(picture.pixelated for picture in present)


def _tally(units: list[UnitRecord]) -> str:
    dead = sum(is_dead(unit) for unit in units)
    low = sum(bool(unit.quality.get("low")) and not is_dead(unit) for unit in units)
    labelled = sum(unit.label is not None for unit in units)
    parts = [f"{format_number(len(units))} units", f"{dead} dead", f"{low} low quality"]
    if labelled:
        parts.append(f"{format_number(labelled)} labelled")
    return ", ".join(parts)


def _layer_link(site: Site, position: int, here: str) -> Link | None:
    if not 0 <= position < len(site.atlas.layers):
        return None
    name = site.atlas.layers[position].info.name
    return Link(f"Layer {name}", relative(site.layout.layers[position].page, here))


def _quality_line(quality: Mapping[str, object]) -> str:
    """One short line for the grid: how close the image gets to the data."""
    if not quality:
        return "no synthesized image"
    if quality.get("dead"):
        return DEAD_NOTE
    ratio = quality.get("ratio")
    if ratio is None:
        reached = format_number(quality.get("final"))
        return f"{DEAD_NOTE}; its image reaches {reached}"
    line = f"{percent(ratio)} of dataset max"
    return f"{line} (low)" if quality.get("low") else line
