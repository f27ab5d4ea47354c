"""The build stages that explain units with the dataset, each kept in the
store: attribution heatmaps of every top-k and bottom-k crop, and each
unit's influence on the class logits."""

from __future__ import annotations

import logging

import numpy as np

from atlas.attribute import Attributor, heatmap
from atlas.compute import Context, layer_context
from atlas.labels import INFLUENCE_IMAGES, feeds_logits, influence, logits_info
from atlas.progress import progress_bar
from atlas.receptive import ReceptiveField
from atlas.records import Box, LayerInfo, Mining
from atlas.store import cache_key

logger = logging.getLogger(__name__)

# Bumped when what these entries hold changes.
_FORMAT = "explain-2"
KINDS = ("top", "bottom")


def heatmap_key(method: str, kind: str) -> str:
    """The name of one method's heatmaps of one kind of example."""
    return f"{method}_{kind}"


def layer_heatmaps(
    ctx: Context, info: LayerInfo, mining: Mining, field: ReceptiveField | None
) -> dict[str, np.ndarray]:
    """Heatmaps of every top-k and bottom-k example of a layer, by
    `heatmap_key`: (units, k, height, width) uint8. Each example's map is
    kept only where its box meets the image (`inside_box`), in the top-left
    corner: a late layer's box may be many times the image, all zero past
    its border. `place_heatmap` puts it back into the whole box. The
    methods and top-k are the layer's own (`layer_context`)."""
    ctx = layer_context(ctx, info.name)
    methods = list(ctx.settings.mine.heatmaps)
    if not methods:
        return {}
    key = cache_key(
        format=_FORMAT,
        model=ctx.digest,
        layer=info.name,
        logits=info.uses_logits,
        k=ctx.settings.mine.top_k,
        data=ctx.dataset.fingerprint(),
        methods=methods,
    )
    entry = ctx.store.load("heatmaps", key)
    if entry is None:
        entry = _compute_heatmaps(ctx, info, mining, field, methods)
        ctx.store.save("heatmaps", key, entry)
    return entry


def layer_influence(ctx: Context, info: LayerInfo) -> np.ndarray | None:
    """(units, classes) influence of a layer that feeds the logits through
    dense layers, or None (see atlas.labels)."""
    logits = logits_info(ctx.model)
    if logits is None or not feeds_logits(ctx.model, info, logits):
        return None
    key = cache_key(
        format=_FORMAT,
        model=ctx.digest,
        layer=info.name,
        logits=logits.name,
        data=ctx.dataset.fingerprint(),
        images=INFLUENCE_IMAGES,
    )
    entry = ctx.store.load("influence", key)
    if entry is None:
        # The output layer is often itself called "logits": name it apart.
        logger.info(
            "influence of layer %r on the classes (output layer %r)",
            info.name,
            logits.name,
        )
        count = min(len(ctx.dataset), INFLUENCE_IMAGES)
        picks = np.linspace(0, len(ctx.dataset) - 1, count).round().astype(int)
        size = ctx.settings.data.batch_size
        batches = (
            ctx.dataset.get(picks[i : i + size].tolist()) for i in range(0, count, size)
        )
        weights = influence(ctx.model, info, logits, batches)
        entry = {"weights": weights}
        ctx.store.save("influence", key, entry)
    return entry["weights"]


def inside_box(box: Box, image_hw: tuple[int, int]) -> Box:
    """The part of `box` that lies on an image of size `image_hw`."""
    height, width = image_hw
    top, left = max(box.top, 0), max(box.left, 0)
    bottom = max(min(box.bottom, height), top)
    return Box(top, left, bottom, max(min(box.right, width), left))


def place_heatmap(
    stored: np.ndarray, box: Box, image_hw: tuple[int, int]
) -> np.ndarray:
    """A stored heatmap back in its whole (box height, box width) crop."""
    part = inside_box(box, image_hw)
    whole = np.zeros((box.height, box.width), np.uint8)
    top, left = part.top - box.top, part.left - box.left
    whole[top : top + part.height, left : left + part.width] = stored[
        : part.height, : part.width
    ]
    return whole


def _compute_heatmaps(ctx, info, mining, field, methods) -> dict[str, np.ndarray]:
    examples = _examples(mining)
    boxes = [_box(ctx, field, row, col) for *_, row, col in examples]
    inside = [inside_box(b, ctx.dataset.shape[:2]) for b in boxes]
    height = max((b.height for b in inside), default=1)
    width = max((b.width for b in inside), default=1)
    k = mining.images.shape[1]
    maps = {
        heatmap_key(m, kind): np.zeros((info.units, k, height, width), np.uint8)
        for m in methods
        for kind in KINDS
    }
    attributors = {m: Attributor(ctx.model, info, m) for m in methods}
    first = next(iter(attributors.values()))
    logger.info(
        "heatmaps of %s (%s): %d ReLU-like site(s) rewritten, %d other "
        "nonlinear layer(s) keep their true gradient",
        info.name,
        ", ".join(methods),
        first.sites,
        first.others,
    )
    size = ctx.settings.data.batch_size
    order = sorted(range(len(examples)), key=lambda i: examples[i][3])
    with progress_bar(len(order), f"{info.name} heatmaps") as bar:
        for start in range(0, len(order), size):
            chosen = [examples[i] + (boxes[i],) for i in order[start : start + size]]
            _fill(ctx, attributors, chosen, maps)
            bar.update(len(chosen))
    return maps


def _fill(ctx, attributors, chosen, maps) -> None:
    """Heatmaps of one batch of examples, written into `maps`."""
    images = ctx.dataset.get([c[3] for c in chosen])
    units = [c[1] for c in chosen]
    positions = np.array([(c[4], c[5]) for c in chosen], np.int32)
    for method, attributor in attributors.items():
        gradients = attributor(images, units, positions)
        for (kind, unit, rank, *_, box), grad in zip(chosen, gradients, strict=True):
            part = inside_box(box, grad.shape[:2])
            cut = heatmap(grad, part)  # past the border the map is 0 anyway
            target = maps[heatmap_key(method, kind)]
            target[unit, rank, : cut.shape[0], : cut.shape[1]] = cut


def _examples(mining: Mining) -> list[tuple[str, int, int, int, int, int]]:
    """(kind, unit, rank, image, row, col) of every filled top-k and bottom-k
    slot."""
    found = []
    for kind, images, positions in (
        ("top", mining.images, mining.positions),
        ("bottom", mining.bottom_images, mining.bottom_positions),
    ):
        if images is None:
            continue
        for unit, rank in zip(*np.nonzero(images >= 0), strict=True):
            row, col = (int(v) for v in positions[unit, rank])
            found.append(
                (kind, int(unit), int(rank), int(images[unit, rank]), row, col)
            )
    return found


def _box(ctx, field: ReceptiveField | None, row: int, col: int) -> Box:
    if field is None:
        return Box(0, 0, *ctx.dataset.shape[:2])
    return field.box(row, col)
