"""The expensive stages of a build, each result kept in the store: one mining
pass for all layers (one per distinct top-k and bins), then synthesis per
layer in chunks of units, each layer with its own settings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import keras
import numpy as np

from atlas.config import Settings
from atlas.data import MEAN_SAMPLE, Dataset
from atlas.mine import mine
from atlas.model import ascent_model, feature_model
from atlas.progress import progress_bar
from atlas.records import LayerInfo, Mining, Synthesis
from atlas.store import Store, cache_key
from atlas.visualize import PRESETS, ViewSet, chunk_size
from atlas.visualize import synthesize_views as synthesize
from atlas.visualize.statistics import PixelStatistics, pixel_statistics

logger = logging.getLogger(__name__)

_MINING_FIELDS = (
    "values",
    "images",
    "positions",
    "mean",
    "max",
    "active_fraction",
    "bottom_values",
    "bottom_images",
    "bottom_positions",
    "hist_counts",
    "hist_edges",
)
# Bumped when what a mining entry holds changes, so old entries are not read.
_MINING_FORMAT = "mining-2"
# What the store keeps of one view of a chunk of units.
_VIEW = ("units", "images", "start", "final", "layer_max", "peak", "structure")
# Images read at once while taking the data's pixel statistics.
_STATISTICS_BATCH = 256


@dataclass(frozen=True)
class Context:
    """What every stage needs: the model, its digest, the data and the store."""

    model: keras.Model
    digest: str
    settings: Settings
    dataset: Dataset
    store: Store
    canvas: tuple[int, int, int]
    pixel_mean: np.ndarray
    max_steps: int | None = None


def layer_context(ctx: Context, name: str) -> Context:
    """The context layer `name` is computed in: its own settings, with its
    [layers.override] keys in place of the global ones."""
    settings = ctx.settings.for_layer(name)
    return ctx if settings is ctx.settings else replace(ctx, settings=settings)


def mine_layers(ctx: Context, infos: Sequence[LayerInfo]) -> dict[str, Mining]:
    """Top-k for every layer, from the store or from one pass over the data
    per distinct (top-k, bins) among the layers that are not stored."""
    settings = {info.name: layer_context(ctx, info.name) for info in infos}
    keys = {info.name: _mining_key(settings[info.name], info) for info in infos}
    cached = {name: ctx.store.load("mining", key) for name, key in keys.items()}
    groups: dict[tuple[int, int], list[LayerInfo]] = {}
    for info in infos:
        if cached[info.name] is None:
            mine_settings = settings[info.name].settings.mine
            group = (mine_settings.top_k, mine_settings.bins)
            groups.setdefault(group, []).append(info)
    for (k, bins), todo in groups.items():
        fresh = _mine_pass(ctx, todo, k, bins)
        for info in todo:
            arrays = _mining_arrays(fresh[info.name])
            ctx.store.save("mining", keys[info.name], arrays)
            cached[info.name] = arrays
    return {name: _mining_record(arrays) for name, arrays in cached.items()}


def _mine_pass(
    ctx: Context, todo: list[LayerInfo], k: int, bins: int
) -> dict[str, Mining]:
    """One pass over the data for layers that share top-k and bins."""
    names = [info.name for info in todo]
    logger.info("mining %d images for %s (top-k %d)", len(ctx.dataset), names, k)
    extractor = feature_model(ctx.model, todo)
    size = ctx.settings.data.batch_size
    with progress_bar(len(ctx.dataset), "mining images") as bar:
        return mine(
            extractor,
            todo,
            ctx.dataset.pipeline(size, scaled=False),
            k=k,
            progress=bar.update,
            bins=bins,
            input_range=ctx.dataset.input_range,
        )


def pixel_statistics_of(ctx: Context) -> PixelStatistics:
    """The data's mean image and colour covariance, through the store.

    From at most MEAN_SAMPLE evenly spaced images, so a large folder is
    read once and cheaply; ascent optimizes around the mean image.
    """
    low, high = ctx.settings.model.input_range
    key = cache_key(
        data=ctx.dataset.fingerprint(), canvas=ctx.canvas, input_range=[low, high]
    )
    entry = ctx.store.load("statistics", key)
    if entry is None:
        count = min(len(ctx.dataset), MEAN_SAMPLE)
        picks = np.linspace(0, len(ctx.dataset) - 1, count).round().astype(int)
        batches = (
            ctx.dataset.get(picks[i : i + _STATISTICS_BATCH].tolist())
            for i in range(0, count, _STATISTICS_BATCH)
        )
        found = pixel_statistics(batches, (low, high), ctx.canvas)
        entry = {"mean_image": found.mean_image, "covariance": found.covariance}
        ctx.store.save("statistics", key, entry)
    return PixelStatistics(entry["mean_image"], entry["covariance"])


def synthesize_layer(
    ctx: Context, info: LayerInfo, statistics: PixelStatistics
) -> dict[str, Synthesis]:
    """Every view of every unit of a layer, by view key in page order: the
    presets of the progression, then the main preset's negative and
    diversity views, all with the layer's own settings."""
    ctx = layer_context(ctx, info.name)
    vis = ctx.settings.visualize
    layer_model = ascent_model(ctx.model, info)
    extra = ViewSet(negative=vis.negative, diversity=vis.diversity)
    views: dict[str, Synthesis] = {}
    fresh: dict[str, int] = {}
    for name in vis.views:
        wanted = extra if name == vis.preset else ViewSet()
        found, fresh[name] = _preset_views(
            ctx, layer_model, info, name, wanted, statistics
        )
        views.update(found)
    _log_freshness(info, fresh)
    order = [*vis.views, *extra.names(vis.preset)[1:]]
    return {key: views[key] for key in order}


def _log_freshness(info: LayerInfo, fresh: dict[str, int]) -> None:
    """Say which presets were synthesized now and which came from the store."""
    made = [f"{name} ({count} units)" for name, count in fresh.items() if count]
    kept = [name for name, count in fresh.items() if not count]
    parts = []
    if made:
        parts.append("synthesized " + ", ".join(made))
    if kept:
        parts.append("from the cache: " + ", ".join(kept))
    logger.info("layer %s: %s", info.name, "; ".join(parts))


def _preset_views(ctx, layer_model, info, name, views, statistics) -> tuple:
    """One preset's views of every unit, chunk by chunk through the store,
    and how many units were synthesized (not found in the store)."""
    vis = ctx.settings.visualize
    steps = _steps(PRESETS[name].steps, vis.steps, ctx.max_steps)
    size = chunk_size(layer_model, ctx.canvas, views.per_unit, vis.memory_mb, vis.chunk)
    parts, fresh = [], 0
    with progress_bar(info.units, f"{info.name} {name}") as bar:
        for start in range(0, info.units, size):
            units = list(range(start, min(start + size, info.units)))
            job = (info, PRESETS[name], views, units, steps)
            entries, computed = _chunk(ctx, layer_model, job, statistics)
            parts.append(entries)
            fresh += len(units) if computed else 0
            bar.update(len(units))
    keys = views.names(name)
    joined = {key: _concat(name, key, [part[key] for part in parts]) for key in keys}
    return joined, fresh


def _chunk(ctx, layer_model, job, statistics) -> tuple[dict[str, dict], bool]:
    """One chunk's views, by view key: from the store, or computed together
    and stored each under its own key; and whether they were computed."""
    info, preset, views, units, steps = job
    keys = {
        view: _view_key(ctx, job, view, statistics) for view in views.names(preset.name)
    }
    entries = {view: ctx.store.load("synthesis", key) for view, key in keys.items()}
    if all(entry is not None for entry in entries.values()):
        logger.debug("%s units %d-%d from cache", info.name, units[0], units[-1])
        return entries, False
    vis = ctx.settings.visualize
    results = synthesize(
        layer_model,
        info,
        units,
        preset,
        canvas=ctx.canvas,
        input_range=ctx.settings.model.input_range,
        mean=statistics.mean_image,
        covariance=statistics.covariance,
        views=views,
        seed=vis.seed,
        steps=steps,
        chunk=len(units),
        objective=vis.objective,
        eager=vis.eager,
    )
    for view, result in results.items():
        entries[view] = {name: np.asarray(getattr(result, name)) for name in _VIEW}
        ctx.store.save("synthesis", keys[view], entries[view])
    return entries, True


def _view_key(ctx, job, view: str, statistics: PixelStatistics) -> str:
    info, preset, views, units, steps = job
    vis = ctx.settings.visualize
    return cache_key(
        model=ctx.digest,
        layer=info.name,
        units=[units[0], units[-1]],
        preset=asdict(preset),
        view=view,
        group=views.diversity if view.startswith("diversity") else 0,
        steps=steps,
        statistics=statistics.digest,
        seed=vis.seed,
        objective=vis.objective,
        canvas=ctx.canvas,
        input_range=ctx.settings.model.input_range,
    )


def _steps(preset_steps: int, configured: int, cap: int | None) -> int:
    steps = configured or preset_steps
    return min(steps, cap) if cap else steps


def _concat(preset: str, view: str, parts: list[dict]) -> Synthesis:
    def join(name):
        return np.concatenate([p[name] for p in parts])

    return Synthesis(
        preset=preset,
        units=join("units"),
        images=join("images"),
        start=join("start"),
        final=join("final"),
        layer_max=join("layer_max").astype(bool),
        peak=join("peak"),
        structure=join("structure"),
        view="" if view == preset else view,
    )


def _mining_key(ctx: Context, info: LayerInfo) -> str:
    return cache_key(
        format=_MINING_FORMAT,
        bins=ctx.settings.mine.bins,
        model=ctx.digest,
        layer=info.name,
        logits=info.uses_logits,
        k=ctx.settings.mine.top_k,
        data=ctx.dataset.fingerprint(),
    )


def _mining_arrays(result: Mining) -> dict[str, np.ndarray]:
    arrays = {name: np.asarray(getattr(result, name)) for name in _MINING_FIELDS}
    arrays["count"] = np.asarray(result.count)
    return arrays


def _mining_record(arrays: dict[str, np.ndarray]) -> Mining:
    fields = {name: arrays[name] for name in _MINING_FIELDS}
    return Mining(**fields, count=int(arrays["count"]))
