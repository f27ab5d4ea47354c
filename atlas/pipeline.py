"""The build pipeline, `atlas.build(settings)`: load, compute into
the store, assemble plain records, render the site, report."""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import markdown
import numpy as np

from atlas.assemble import Evidence, layer_record, quality
from atlas.compute import (
    Context,
    layer_context,
    mine_layers,
    pixel_statistics_of,
    synthesize_layer,
)
from atlas.config import Settings
from atlas.data import open_dataset
from atlas.errors import ConfigError
from atlas.explain import layer_heatmaps, layer_influence
from atlas.labels import dataset_classes
from atlas.loading import (
    infer_input_range,
    input_text,
    open_model,
    pixel_convention,
)
from atlas.model import (
    describe_layers,
    feature_model,
    input_spec,
    select_layers,
    weights_digest,
)
from atlas.output import claim_output, site_size
from atlas.receptive import receptive_field
from atlas.records import AtlasRecord, LayerInfo, LayerRecord
from atlas.site import render_site
from atlas.store import CACHE_DIR, Store
from atlas.visualize.canvas import check_canvas

logger = logging.getLogger(__name__)

# Tests and quick previews cap every preset's steps with this variable.
MAX_STEPS_ENV = "ATLAS_MAX_STEPS"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True)
class BuildReport:
    """What a build made, where, and how long it took."""

    output: Path
    layers: int
    units: int
    pages: int
    files: int
    bytes: int
    seconds: float
    logits_accuracy: float | None
    low_quality: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def build(settings: Settings) -> BuildReport:
    """Build the atlas that `settings` describes into its output folder."""
    started = time.perf_counter()
    max_steps = _max_steps()
    model = open_model(settings.model, settings.root)
    settings = _with_input_range(settings, model)
    shape = input_spec(model, settings.model.input_shape)
    all_layers = describe_layers(model)
    infos = select_layers(all_layers, settings.layers.names)
    canvas = _canvas(settings, shape)
    if settings.visualize.size:
        names = ", ".join(repr(info.name) for info in infos)
        check_canvas(feature_model(model, infos), canvas, f"layers {names}")
    # Opening the data writes nothing, so a bad dataset leaves the output
    # untouched; a compressed one is decompressed into the store on the
    # first read, after the output is claimed.
    store = Store(Path(settings.output.dir) / CACHE_DIR)
    dataset = open_dataset(
        settings.data.path,
        shape,
        settings.model.input_range,
        settings.data.limit,
        settings.data.resize,
        cache=store,
    )
    output = claim_output(settings.output.dir)
    ctx = Context(
        model=model,
        digest=weights_digest(model),
        settings=settings,
        dataset=dataset,
        store=store,
        canvas=canvas,
        pixel_mean=dataset.channel_mean(),
        max_steps=max_steps,
    )
    layers = _compute(ctx, infos)
    accuracy = _logits_accuracy(ctx, layers)
    atlas = _atlas_record(ctx, layers, all_layers, accuracy)
    templates = settings.site.templates or TEMPLATES
    summary = render_site(atlas, output, templates, base_url=settings.site.base_url)
    files, size = site_size(output, skip=(CACHE_DIR,))
    return BuildReport(
        output=output,
        layers=len(layers),
        units=sum(len(layer.units) for layer in layers),
        pages=summary.pages,
        files=files,
        bytes=size,
        seconds=time.perf_counter() - started,
        logits_accuracy=accuracy,
        low_quality=_low_quality(layers),
        skipped=[f"{s.path}: {s.reason}" for s in dataset.skipped],
    )


def _compute(ctx: Context, infos: list[LayerInfo]) -> list[LayerRecord]:
    minings = mine_layers(ctx, infos)
    statistics = pixel_statistics_of(ctx)
    records = []
    for info in infos:
        own = layer_context(ctx, info.name)
        vis = own.settings.visualize
        presets = ", ".join(vis.views)
        logger.info("layer %s: %d units, presets %s", info.name, info.units, presets)
        views = synthesize_layer(ctx, info, statistics)
        field = None
        if info.kind == "conv":
            field = receptive_field(ctx.model, info.name, ctx.dataset.shape[:2])
        syntheses = list(views.values())
        mining = minings[info.name]
        evidence = Evidence(
            heatmaps=layer_heatmaps(ctx, info, mining, field),
            influence=layer_influence(ctx, info),
        )
        record = layer_record(
            info, mining, syntheses, field, ctx.dataset, vis.preset, evidence
        )
        records.append(
            replace(
                record,
                settings=_public_settings(own),
                overrides=_overrides(own.settings, info.name),
            )
        )
    return records


def _logits_accuracy(ctx: Context, layers: list[LayerRecord]) -> float | None:
    """Share of output-layer units whose image the model assigns to them."""
    head = _output_layer(ctx, layers)
    if head is None:
        return None
    preset = ctx.settings.for_layer(head.info.name).visualize.preset
    low, high = ctx.settings.model.input_range
    images = np.stack([u.images[preset] for u in head.units]).astype(np.float32)
    images = low + images / 255.0 * (high - low)
    predicted = np.argmax(ctx.model.predict(images, verbose=0), axis=-1)
    hits = predicted == np.arange(len(head.units))
    return float(np.mean(hits))


def _output_layer(ctx: Context, layers: list[LayerRecord]) -> LayerRecord | None:
    if len(ctx.model.outputs) != 1:
        return None
    history = getattr(ctx.model.outputs[0], "_keras_history", None)
    if history is None:
        return None
    name = history[0].name
    for layer in layers:
        if layer.info.name == name and layer.info.kind == "dense":
            return layer
    return None


def _atlas_record(ctx, layers, all_layers, accuracy) -> AtlasRecord:
    settings = ctx.settings
    summary = {
        "built": _build_date(),
        "logits_accuracy": accuracy,
        "images": len(ctx.dataset),
        "skipped": [asdict(s) for s in ctx.dataset.skipped],
    }
    return AtlasRecord(
        title=settings.site.title,
        about_html=_about_html(settings),
        model={
            "name": ctx.model.name,
            "file": _model_source(settings),
            "digest": ctx.digest,
            "input_shape": list(ctx.dataset.shape),
            "input_range": list(settings.model.input_range),
            "preprocess": pixel_convention(ctx.model),
            "input_text": input_text(ctx.model, settings.model.input_range),
            "parameters": int(ctx.model.count_params()),
        },
        settings=_public_settings(ctx),
        versions=_versions(),
        data={
            "file": settings.data.path.name,
            "kind": ctx.dataset.kind,
            "images": len(ctx.dataset),
            "skipped": len(ctx.dataset.skipped),
            "class_names": dataset_classes(ctx.dataset.class_names, ctx.dataset.labels),
        },
        layers=layers,
        all_layers=all_layers,
        presets=list(settings.visualize.views),
        summary=summary,
    )


def _model_source(settings: Settings) -> str:
    """The model file's name, or the keras.applications model and weights."""
    source = settings.model
    if source.path is not None:
        return source.path.name
    return f"keras.applications.{source.application}, weights={source.weights}"


def _public_settings(ctx: Context) -> dict:
    vis = ctx.settings.visualize
    return {
        "preset": vis.preset,
        "progression": list(vis.views),
        "negative": vis.negative,
        "diversity": vis.diversity,
        "steps": vis.steps or None,
        "max_steps": ctx.max_steps,
        "canvas": list(ctx.canvas),
        "seed": vis.seed,
        "objective": vis.objective,
        "top_k": ctx.settings.mine.top_k,
        "bins": ctx.settings.mine.bins,
        "heatmaps": list(ctx.settings.mine.heatmaps),
    }


def _overrides(settings: Settings, name: str) -> dict[str, object]:
    """A layer's overridden keys ("visualize.preset") with the values it is
    built with."""
    override = settings.layers.override.get(name)
    if override is None:
        return {}
    return {
        f"{section}.{key}": getattr(getattr(settings, section), key)
        for section, table in (
            ("visualize", override.visualize),
            ("mine", override.mine),
        )
        for key in table
    }


def _about_html(settings: Settings) -> str:
    path = settings.site.about
    if path is None:
        return ""
    if not path.is_file():
        raise ConfigError(f"site.about file not found: '{path}'. Fix site.about.")
    text = path.read_text(encoding="utf-8")
    # Raw HTML in Markdown passes through; escaping '<' keeps it as text.
    escaped = text.replace("<", "&lt;")
    return markdown.markdown(escaped, extensions=["tables", "fenced_code"])


def _versions() -> dict[str, str]:
    import jinja2
    import keras
    import tensorflow as tf

    from atlas import __version__

    return {
        "neuron-atlas": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "jinja2": jinja2.__version__,
    }


def _build_date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = time.gmtime(int(epoch)) if epoch and epoch.isdigit() else time.gmtime()
    return time.strftime("%Y-%m-%d", stamp)


def _with_input_range(settings: Settings, model) -> Settings:
    """Settings whose model.input_range is set: configured, or inferred."""
    if settings.model.input_range is not None:
        return settings
    model_settings = replace(settings.model, input_range=infer_input_range(model))
    return replace(settings, model=model_settings)


def _canvas(settings: Settings, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    size = settings.visualize.size
    return (size[0], size[1], shape[2]) if size else shape


def _max_steps() -> int | None:
    value = os.environ.get(MAX_STEPS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(
            f"{MAX_STEPS_ENV}={value!r} is not a positive whole number; set it "
            f"to a step cap such as 50, or unset it for the presets' steps."
        )
    return int(value)


def _low_quality(layers: list[LayerRecord]) -> list[str]:
    flagged = []
    for layer in layers:
        for unit in layer.units:
            if unit.quality.get("low"):
                flagged.append(f"{layer.info.name}/{unit.index}")
    return flagged


__all__ = ["BuildReport", "build", "quality"]
