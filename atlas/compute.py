"""The expensive stages of a build, each result kept in the store: one mining
pass for all layers, then synthesis per layer in chunks of units."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import keras
import numpy as np

from atlas.config import Settings
from atlas.data import Dataset
from atlas.mine import mine
from atlas.model import ascent_model, feature_model
from atlas.progress import progress_bar
from atlas.records import LayerInfo, Mining, Synthesis
from atlas.store import Store, cache_key
from atlas.visualize import PRESETS, synthesize

logger = logging.getLogger(__name__)

_MINING_FIELDS = ("values", "images", "positions", "mean", "max", "active_fraction")


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


def mine_layers(ctx: Context, infos: Sequence[LayerInfo]) -> dict[str, Mining]:
    """Top-k for every layer, from the store or from one pass over the data."""
    keys = {info.name: _mining_key(ctx, info) for info in infos}
    cached = {name: ctx.store.load("mining", key) for name, key in keys.items()}
    todo = [info for info in infos if cached[info.name] is None]
    if todo:
        logger.info("mining %d images for %s", len(ctx.dataset), [i.name for i in todo])
        extractor = feature_model(ctx.model, todo)
        size = ctx.settings.data.batch_size
        with progress_bar(len(ctx.dataset), "mining images") as bar:
            fresh = mine(
                extractor,
                todo,
                ctx.dataset.batches(size),
                k=ctx.settings.mine.top_k,
                progress=bar.update,
            )
        for info in todo:
            arrays = _mining_arrays(fresh[info.name])
            ctx.store.save("mining", keys[info.name], arrays)
            cached[info.name] = arrays
    return {name: _mining_record(arrays) for name, arrays in cached.items()}


def synthesize_layer(ctx: Context, info: LayerInfo, preset_name: str) -> Synthesis:
    """Every unit's image under one preset, chunk by chunk through the store."""
    vis = ctx.settings.visualize
    preset = PRESETS[preset_name]
    steps = _steps(preset.steps, vis.steps, ctx.max_steps)
    layer_model = ascent_model(ctx.model, info)
    parts = []
    with progress_bar(info.units, f"{info.name} {preset_name}") as bar:
        for start in range(0, info.units, vis.chunk):
            units = list(range(start, min(start + vis.chunk, info.units)))
            parts.append(_chunk(ctx, layer_model, info, preset_name, units, steps))
            bar.update(len(units))
    return _concat(preset_name, parts)


def _chunk(ctx, layer_model, info, preset_name, units, steps) -> dict:
    vis = ctx.settings.visualize
    key = cache_key(
        model=ctx.digest,
        layer=info.name,
        units=[units[0], units[-1]],
        preset=asdict(PRESETS[preset_name]),
        steps=steps,
        mean=ctx.pixel_mean.round(6).tolist(),
        seed=vis.seed,
        objective=vis.objective,
        canvas=ctx.canvas,
        input_range=ctx.settings.model.input_range,
    )
    entry = ctx.store.load("synthesis", key)
    if entry is not None:
        logger.debug("%s units %d-%d from cache", info.name, units[0], units[-1])
        return entry
    result = synthesize(
        layer_model,
        info,
        units,
        PRESETS[preset_name],
        canvas=ctx.canvas,
        input_range=ctx.settings.model.input_range,
        mean=ctx.pixel_mean,
        seed=vis.seed,
        steps=steps,
        chunk=vis.chunk,
        objective=vis.objective,
        eager=vis.eager,
    )
    entry = {
        "units": np.asarray(result.units),
        "images": result.images,
        "start": result.start,
        "final": result.final,
        "layer_max": result.layer_max,
        "peak": result.peak,
    }
    ctx.store.save("synthesis", key, entry)
    return entry


def _steps(preset_steps: int, configured: int, cap: int | None) -> int:
    steps = configured or preset_steps
    return min(steps, cap) if cap else steps


def _concat(preset: str, parts: list[dict]) -> Synthesis:
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
    )


def _mining_key(ctx: Context, info: LayerInfo) -> str:
    return cache_key(
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
