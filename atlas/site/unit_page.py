"""What the unit template receives: a unit's views, its top-k and bottom-k
examples with heatmaps, its histogram, figures, label and downstream
classes, and the links around it.

Every part a record may lack (bottom-k, heatmaps, histogram, labels,
class weights) is None or empty here, and the template says why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from atlas.records import LayerRecord, TopKExample, UnitRecord
from atlas.site import pictures
from atlas.site.facts import (
    Fact,
    format_number,
    label_facts,
    label_line,
    no_weights_note,
    quality_facts,
    stats_facts,
    view_caption,
    view_quality,
    weight_facts,
)
from atlas.site.histogram import histogram_svg
from atlas.site.layout import LayerLayout, UnitFiles, main_view, ordered_units
from atlas.site.pages import (
    Frame,
    Link,
    Site,
    anchor,
    frame,
    is_dead,
    is_inactive,
    logits_note,
)
from atlas.site.paths import INDEX, relative
from atlas.site.pictures import Picture
from atlas.site.publish import absolute_url

METHOD_NAMES = {
    "deconvnet": "Deconvnet (Zeiler and Fergus 2014)",
    "guided": "Guided backpropagation (Springenberg et al. 2015)",
    "saliency": "Saliency: the plain gradient (Simonyan et al. 2014)",
}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class View:
    """One synthesized image of the unit, with what it is and how it does."""

    key: str
    caption: str
    quality: str | None
    picture: Picture
    main: bool  # the view the quality figures and the grid refer to


@dataclass(frozen=True)
class Example:
    """One dataset example as text: rank, value, label, where it came from."""

    rank: int
    value: str
    label: str
    source: str
    image: int


@dataclass(frozen=True)
class HeatSheet:
    """The heatmaps of one attribution method over a row of crops."""

    method: str
    picture: Picture


@dataclass(frozen=True)
class Examples:
    """The top-k or bottom-k examples: a sheet, its heatmaps, a table."""

    kind: str  # "top" or "bottom"
    count: int
    sheet: Picture | None
    heatmaps: tuple[HeatSheet, ...]
    rows: tuple[Example, ...]
    context: Picture | None = None  # whole images, box outlined; top only


@dataclass(frozen=True)
class UnitPage:
    """A unit: what it wants, what in the data excites it, how sure we are."""

    frame: Frame
    layer: str
    index: int
    label: str | None
    label_line: str
    label_counts: tuple[Fact, ...]
    logits_note: str | None
    value_name: str  # "activation", or "logit" when read before a softmax
    dead: bool  # never active, and its image cannot make it fire
    inactive: bool  # never active on the dataset: top-k examples are ties
    main: View | None  # shown large, first
    views: tuple[View, ...]  # every view, small, in the record's order
    top: Examples
    bottom: Examples
    histogram: Markup | None
    quality: tuple[Fact, ...]
    stats: tuple[Fact, ...]
    promotes: tuple[Fact, ...]
    suppresses: tuple[Fact, ...]
    no_promotes: str  # said when `promotes` is empty
    no_suppresses: str
    previous: Link | None
    next: Link | None
    up: Link
    home: Link
    address: str  # the public URL with base_url, else the site path


def unit_pages(site: Site, position: int) -> Iterator[tuple[UnitRecord, UnitPage]]:
    """Every unit page of the atlas's `position`-th layer, in unit order."""
    units = ordered_units(site.atlas.layers[position])
    weighed = has_class_weights(site.atlas.layers[position])
    for number, unit in enumerate(units):
        before = units[number - 1] if number > 0 else None
        after = units[number + 1] if number + 1 < len(units) else None
        yield unit, unit_page(site, position, unit, (before, after), weighed)


def has_class_weights(layer: LayerRecord) -> bool:
    """Whether the build computed the layer's influence on the classes: it
    does so for every unit of a layer or none, and a unit shows a class
    weight unless all of its weights are zero."""
    return any(unit.promotes or unit.suppresses for unit in layer.units)


def unit_page(
    site: Site,
    position: int,
    unit: UnitRecord,
    neighbours: tuple[UnitRecord | None, UnitRecord | None],
    weighed: bool | None = None,
) -> UnitPage:
    """A unit's page; `neighbours` are the units before and after it;
    `weighed`, whether its layer has class weights (found when None)."""
    layer = site.atlas.layers[position]
    if weighed is None:
        weighed = has_class_weights(layer)
    lay = site.layout.layers[position]
    name, index = layer.info.name, unit.index
    files = lay.files(unit)
    here = files.page
    up = relative(lay.page, here) + "#" + anchor(index)
    crumbs = (Link(name, up), Link(f"Unit {index}", None))
    value_name = "logit" if layer.info.uses_logits else "activation"
    return UnitPage(
        frame=frame(site, here, f"Layer {name}, unit {index}", crumbs),
        layer=name,
        index=index,
        label=unit.label,
        label_line=label_line(unit),
        label_counts=label_facts(unit.label_counts),
        logits_note=logits_note(layer),
        value_name=value_name,
        dead=is_dead(unit),
        inactive=is_inactive(unit),
        main=_main_view(_presets(site, layer), name, unit, files),
        views=_views(_presets(site, layer), name, unit, files),
        top=_examples("top", name, unit, unit.top_k, lay, files),
        bottom=_examples("bottom", name, unit, unit.bottom_k, lay, files),
        histogram=_histogram(unit, value_name),
        quality=quality_facts(unit.quality),
        stats=stats_facts(unit.stats),
        promotes=weight_facts(unit.promotes),
        suppresses=weight_facts(unit.suppresses),
        no_promotes=no_weights_note("promote", weighed),
        no_suppresses=no_weights_note("suppress", weighed),
        previous=_neighbour(lay, neighbours[0], here),
        next=_neighbour(lay, neighbours[1], here),
        up=Link(f"Layer {name}", up),
        home=Link(site.atlas.title, relative(INDEX, here)),
        address=here if site.base_url is None else absolute_url(site.base_url, here),
    )


def method_name(method: str) -> str:
    """An attribution method as a reader knows it."""
    return METHOD_NAMES.get(method, method)


def _presets(site: Site, layer: LayerRecord) -> Sequence[str]:
    """The presets the layer was built with, else the atlas's."""
    own = layer.settings.get("progression")
    return own if isinstance(own, list | tuple) else site.atlas.presets


def _main_view(
    presets: Sequence[str], layer: str, unit: UnitRecord, files: UnitFiles
) -> View | None:
    key = main_view(unit)
    if key is None:
        return None
    return _view(presets, layer, unit, files, key, pictures.LARGE)


def _views(
    presets: Sequence[str], layer: str, unit: UnitRecord, files: UnitFiles
) -> tuple[View, ...]:
    """Every view, small, when there is more than the main one."""
    if len(unit.images) < 2:
        return ()
    return tuple(
        _view(presets, layer, unit, files, key, pictures.SMALL) for key in unit.images
    )


def _view(
    presets: Sequence[str],
    layer: str,
    unit: UnitRecord,
    files: UnitFiles,
    key: str,
    size: int,
) -> View:
    caption = view_caption(key, presets)
    alt = f"Synthesized image of unit {unit.index} of layer {layer}: {caption}"
    return View(
        key=key,
        caption=caption,
        quality=view_quality(unit.image_quality.get(key, {})),
        picture=pictures.view(unit, files, key, files.page, alt, size),
        main=key == main_view(unit),
    )


def _examples(
    kind: str,
    layer: str,
    unit: UnitRecord,
    examples: list[TopKExample],
    lay: LayerLayout,
    files: UnitFiles,
) -> Examples:
    path = files.top if kind == "top" else files.bottom
    heat = files.top_heat if kind == "top" else files.bottom_heat
    count, here = len(examples), files.page
    what = "most" if kind == "top" else "least"
    order = "best" if kind == "top" else "weakest"
    where = f"unit {unit.index} of layer {layer}"
    alt = f"The {count} dataset crops that excite {where} {what}, {order} first"
    sheet = None
    if path is not None:
        sheet = pictures.page_sheet(path, count, lay.sheet, here, alt)
    heatmaps = tuple(
        HeatSheet(
            method=method_name(method),
            picture=pictures.page_sheet(
                heat_path,
                count,
                lay.sheet,
                here,
                f"{method_name(method)} heatmaps over the same {count} crops",
            ),
        )
        for method, heat_path in heat.items()
    )
    rows = tuple(_example(rank, ex) for rank, ex in enumerate(examples, 1))
    return Examples(
        kind=kind,
        count=count,
        sheet=sheet,
        heatmaps=heatmaps,
        rows=rows,
        context=_context(kind, where, count, lay, files),
    )


def _context(
    kind: str, where: str, count: int, lay: LayerLayout, files: UnitFiles
) -> Picture | None:
    """The top-k's whole source images, where the layer has them."""
    if kind != "top" or files.context is None or lay.context is None:
        return None
    alt = (
        f"The whole source images of the {count} top-k examples of {where}, "
        "best first; the outlined box is the unit's receptive field, "
        "and the image outside it is dimmed halfway toward grey"
    )
    return pictures.context_sheet(files.context, count, lay.context, files.page, alt)


def _example(rank: int, example: TopKExample) -> Example:
    return Example(
        rank=rank,
        value=format_number(example.value),
        label="—" if example.label is None else example.label,
        source=example.source,
        image=int(example.image),
    )


def _histogram(unit: UnitRecord, value_name: str) -> Markup | None:
    if unit.histogram is None:
        return None
    peak = unit.quality.get("peak")
    marker = float(peak) if isinstance(peak, float | int) else None
    return histogram_svg(unit.histogram, value_name, marker)


def _neighbour(lay: LayerLayout, unit: UnitRecord | None, here: str) -> Link | None:
    if unit is None:
        return None
    return Link(f"Unit {unit.index}", relative(lay.unit_page(unit.index), here))
