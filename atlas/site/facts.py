"""Numbers and facts as readers see them: three significant digits, named
quantities, and the label/value pairs that pages list about a model, layer
or unit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from atlas.records import AtlasRecord, ClassWeight, LayerInfo, UnitRecord

# Digits a reader can compare at a glance; more are noise for activations.
SIGNIFICANT = 3
# Powers of ten written out in full; outside them, "1.23e-4" reads better.
PLAIN_EXPONENTS = range(-3, 6)
MISSING = "—"
DEAD_NOTE = "never active on the dataset"

QUALITY_LABELS = {
    "preset": "Preset",
    "start": "Objective of the start image",
    "final": "Objective of the final image",
    "peak": "Largest activation on the final image",
    "dataset_max": "Best activation on the dataset",
    "ratio": "Largest activation: final image / best on the dataset",
    "layer_max": "Most active unit of the layer on its image",
    "dataset_min": "Lowest activation on the dataset",
    "dead": "Dead (never active)",
    "no_structure": "No structure (a flat or noise image)",
    "structure": "Structure: spread around the start image (0-255 levels)",
    "view": "View",
    "low": "Low quality (under half the dataset best)",
}
STATS_LABELS = {
    "mean": "Mean of per-image maxima",
    "max": "Largest per-image maximum",
    "min": "Smallest per-image maximum",
    "active_fraction": "Images where it is active (above 0)",
    "images": "Images seen",
}
# Captions of views other than presets; a view "diversity-N" is numbered.
VIEW_CAPTIONS = {
    "negative": "Negative: the image that drives it lowest",
    "neuron": "Neuron objective: the centre position only",
    "channel": "Channel objective: every position",
}
_PERCENT_KEYS = frozenset({"ratio", "active_fraction"})
_COUNT_KEYS = frozenset({"images"})

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fact:
    """A labelled value, already formatted for reading."""

    label: str
    value: str


def format_number(value: object) -> str:
    """A number for reading: three significant digits, thousands grouped.

    Integers stay exact ("12,345"); floats round to three significant
    digits without trailing zeros ("0.0123", "1,230", "1.5e-4"); None is a
    dash and booleans are "yes" or "no". Other values come back as text.
    """
    if value is None:
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if not isinstance(value, float | np.floating):
        return str(value)
    return _format_float(float(value))


def percent(fraction: object) -> str:
    """A fraction as a percentage with three significant digits: "66.7%"."""
    if fraction is None:
        return MISSING
    return f"{format_number(float(fraction) * 100)}%"


def shape_text(shape: Sequence[int | None]) -> str:
    """A Keras shape with its unknown sizes named: "(batch, 12, 12, 4)".

    Keras writes them None; pages name them, and no page says "None" (C16).
    """
    sizes = [
        str(size) if size is not None else ("batch" if axis == 0 else "any")
        for axis, size in enumerate(shape)
    ]
    return "(" + ", ".join(sizes) + ")"


def index_facts(atlas: AtlasRecord) -> tuple[Fact, ...]:
    """What was visualized, on which data, how and when."""
    model, data, settings = atlas.model, atlas.data, atlas.settings
    return _present(
        ("Model", _model_text(model)),
        ("Weights digest", _short(model.get("digest"))),
        ("Input shape", _dims(model.get("input_shape"))),
        ("Input range", _range(model.get("input_range"))),
        ("Model input", model.get("input_text")),
        ("Parameters", _number(model.get("parameters"))),
        ("Dataset", _data_text(data)),
        ("Preset", settings.get("preset")),
        ("Steps", _steps_text(settings)),
        ("Canvas", _dims(settings.get("canvas"))),
        ("Objective", settings.get("objective")),
        ("Top-k examples per unit", _number(settings.get("top_k"))),
        ("Seed", _number(settings.get("seed"))),
        ("Built", atlas.summary.get("built")),
    )


def version_facts(versions: Mapping[str, str]) -> tuple[Fact, ...]:
    """The software that built the atlas, one fact per package."""
    return tuple(Fact(name, str(version)) for name, version in versions.items())


def layer_facts(info: LayerInfo) -> tuple[Fact, ...]:
    """The class, output shape, unit count and activation of a layer."""
    return (
        Fact("Class", info.class_name),
        Fact("Output shape", shape_text(info.output_shape)),
        Fact("Units", format_number(info.units)),
        Fact("Activation", info.activation),
    )


def layer_settings_facts(
    settings: Mapping[str, object], overrides: Mapping[str, object]
) -> tuple[Fact, ...]:
    """How a layer was built: its presets, steps and top-k, and the keys of
    [layers.override] that it sets."""
    return _present(
        ("Preset", settings.get("preset")),
        ("Presets shown", _names(settings.get("progression"))),
        ("Steps", _steps_text(settings)),
        ("Top-k examples per unit", _number(settings.get("top_k"))),
        ("Overrides", _overrides_text(overrides)),
    )


def quality_facts(quality: Mapping[str, object]) -> tuple[Fact, ...]:
    """How well the synthesized image drives its unit, labelled."""
    return _labelled(quality, QUALITY_LABELS)


def stats_facts(stats: Mapping[str, object]) -> tuple[Fact, ...]:
    """The unit's statistics over the dataset, labelled."""
    return _labelled(stats, STATS_LABELS)


def view_caption(key: str, presets: Sequence[str]) -> str:
    """What a view of a unit is, for its caption."""
    if key in presets:
        return f"Preset {key}"
    if key in VIEW_CAPTIONS:
        return VIEW_CAPTIONS[key]
    stem, _, number = key.rpartition("-")
    if stem == "diversity" and number.isdigit():
        return f"Diversity, image {int(number)}: another way to drive it"
    return key


def view_quality(quality: Mapping[str, object]) -> str | None:
    """One line on how strongly a view drives its unit, or None."""
    ratio = quality.get("ratio")
    if isinstance(ratio, float | int) and not isinstance(ratio, bool):
        return f"reaches {percent(ratio)} of the dataset's best"
    for key in ("peak", "final"):
        value = quality.get(key)
        if isinstance(value, float | int) and not isinstance(value, bool):
            return f"reaches {format_number(value)}"
    return None


def label_line(unit: UnitRecord) -> str:
    """The unit's label and how many top-k examples carry it, as a sentence."""
    counts = unit.label_counts
    total = sum(counts.values())
    if unit.label is not None:
        share = counts.get(unit.label)
        if share is None or not total:
            return f"Labelled {unit.label}."
        return f"Labelled {unit.label}: {share} of its {total} top-k examples."
    if counts:
        return "No label dominates its top-k examples."
    return "No label: the dataset has no classes, or none was computed."


def label_facts(counts: Mapping[str, int]) -> tuple[Fact, ...]:
    """Labels of the top-k examples, the most frequent first."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(Fact(label, format_number(count)) for label, count in ordered)


def weight_facts(weights: Sequence[ClassWeight]) -> tuple[Fact, ...]:
    """Classes a unit promotes or suppresses, with their weights."""
    return tuple(Fact(w.label, format_number(float(w.weight))) for w in weights)


def no_weights_note(kind: str, computed: bool) -> str:
    """Why a unit lists no class it `kind`s ("promote" or "suppress"):
    the influence was not computed, or no class weight has that sign."""
    done = "promoted" if kind == "promote" else "suppressed"
    if not computed:
        return f"No classes {done}: not computed for this unit."
    sign = "zero or below" if kind == "promote" else "zero or above"
    return f"No classes {done}: every class weight of this unit is {sign}."


def _format_float(number: float) -> str:
    if math.isnan(number):
        return "not a number"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if number == 0:
        return "0"
    mantissa, exponent = f"{number:.{SIGNIFICANT - 1}e}".split("e")
    power = int(exponent)
    if power in PLAIN_EXPONENTS:
        decimals = max(0, SIGNIFICANT - 1 - power)
        return _trim(f"{float(mantissa + 'e' + exponent):,.{decimals}f}")
    return f"{_trim(mantissa)}e{power}"


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _labelled(
    values: Mapping[str, object], labels: Mapping[str, str]
) -> tuple[Fact, ...]:
    """Known keys in their documented order, then any others by name."""
    keys = [key for key in labels if key in values]
    keys += sorted(key for key in values if key not in labels)
    return tuple(
        Fact(labels.get(key, key), _value_text(key, values[key])) for key in keys
    )


def _value_text(key: str, value: object) -> str:
    if key in _PERCENT_KEYS and isinstance(value, float | int | np.number):
        return percent(value)
    if key in _COUNT_KEYS and isinstance(value, float) and value.is_integer():
        return format_number(int(value))
    return format_number(value)


def _present(*pairs: tuple[str, object]) -> tuple[Fact, ...]:
    return tuple(Fact(label, str(value)) for label, value in pairs if value)


def _number(value: object) -> str | None:
    return None if value is None else format_number(value)


def _short(digest: object) -> str | None:
    # Twelve hex digits tell builds apart; the manifest keeps the full digest.
    return str(digest)[:12] if digest else None


def _dims(sizes: object) -> str | None:
    if not isinstance(sizes, Iterable) or isinstance(sizes, str):
        return None
    return " × ".join(str(size) for size in sizes) or None


def _range(bounds: object) -> str | None:
    if not isinstance(bounds, Sequence) or len(bounds) != 2:
        return None
    return f"{format_number(bounds[0])} to {format_number(bounds[1])}"


def _model_text(model: Mapping[str, object]) -> str | None:
    name, file = model.get("name"), model.get("file")
    if name and file:
        return f"{name} ({file})"
    return str(name or file or "") or None


def _data_text(data: Mapping[str, object]) -> str | None:
    parts = [str(data["file"])] if data.get("file") else []
    if data.get("images") is not None:
        parts.append(f"{format_number(data['images'])} images")
    if data.get("skipped"):
        parts.append(f"{format_number(data['skipped'])} skipped")
    return ", ".join(parts) or None


def _steps_text(settings: Mapping[str, object]) -> str | None:
    """The steps, naming the cap (ATLAS_MAX_STEPS) only where it lowers them."""
    steps, cap = settings.get("steps"), settings.get("max_steps")
    if "steps" not in settings and not cap:
        return None
    text = "the preset's own" if steps is None else format_number(steps)
    # LIMITATION: with the presets' own steps the cap is named even where
    # it is above a preset's steps; the renderer does not know the presets.
    if not cap or (isinstance(steps, int | float) and steps <= cap):
        return text
    return f"{text}, capped at {format_number(cap)}"


def _names(names: object) -> str | None:
    if not isinstance(names, Sequence) or isinstance(names, str):
        return None
    return ", ".join(str(name) for name in names) or None


def _overrides_text(overrides: Mapping[str, object]) -> str | None:
    """The overridden keys as one line: mine.top_k = 16; visualize.preset = l2."""
    parts = []
    for key in sorted(overrides):
        value = overrides[key]
        if isinstance(value, list | tuple):
            text = _names(value) or "none"
        else:
            text = format_number(value)
        parts.append(f"{key} = {text}")
    return "; ".join(parts) or None
