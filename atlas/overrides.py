"""Checking `[layers.override.<name>]`: each layer's own [visualize] and
[mine] keys, validated as those sections are, every problem with its key."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import TypeAdapter, ValidationError

from atlas.config import (
    MineSettings,
    VisualizeSettings,
    did_you_mean,
    dotted_key,
)

# The sections a layer may override, and the settings each is checked as.
SECTIONS: dict[str, type] = {"visualize": VisualizeSettings, "mine": MineSettings}
# Keys no layer may override, and why.
FIXED = {
    ("visualize", "size"): (
        "cannot differ per layer: the data's pixel statistics and the canvas "
        "are made once for the whole build; set it under [visualize]"
    ),
}

logger = logging.getLogger(__name__)


def override_problems(raw: dict[str, Any]) -> list[str]:
    """Every problem of the [layers.override] tables of a parsed config."""
    layers = raw.get("layers")
    if not isinstance(layers, dict) or "override" not in layers:
        return []
    override = layers["override"]
    if not isinstance(override, dict):
        return [
            f"layers.override: expected tables named by layer, like "
            f"[layers.override.conv2], got {override!r}"
        ]
    names = layers.get("names")
    names = names if isinstance(names, list) else None
    problems = []
    for layer, table in override.items():
        problems += _layer_problems(raw, layer, table, names)
    return problems


def clean_overrides(override: Any) -> dict[str, Any]:
    """The overrides with every part `override_problems` reports dropped,
    so that validating the rest does not report it again."""
    if not isinstance(override, dict):
        return {}
    clean = {}
    for layer, table in override.items():
        if isinstance(table, dict):
            clean[layer] = {
                section: values
                for section, values in table.items()
                if section in SECTIONS and isinstance(values, dict)
            }
    return clean


def _layer_problems(
    raw: dict[str, Any], layer: str, table: Any, names: list[str] | None
) -> list[str]:
    where = f"layers.override.{_quoted(layer)}"
    problems = []
    if names is not None and layer not in names:
        problems.append(
            f"{where}: layer {layer!r} is not in layers.names "
            f"{names}{did_you_mean(layer, names)}; override only a layer "
            f"the atlas covers, or add it to layers.names"
        )
    if not isinstance(table, dict):
        return [*problems, f"{where}: expected a table, got {table!r}"]
    for section, values in table.items():
        if section not in SECTIONS:
            problems.append(
                f"{where}.{section}: unknown table"
                f"{did_you_mean(section, SECTIONS)}; a layer overrides "
                f"{sorted(SECTIONS)}"
            )
        elif not isinstance(values, dict):
            problems.append(
                f"{where}.{section}: expected a table such as "
                f"{{ top_k = 16 }}, got {values!r}"
            )
        else:
            problems += _section_problems(raw, f"{where}.{section}", section, values)
    return problems


def _section_problems(
    raw: dict[str, Any], where: str, section: str, values: dict[str, Any]
) -> list[str]:
    """Unknown and fixed keys, then the values, validated over the global
    section so that checks across keys see what the layer is built with."""
    settings = SECTIONS[section]
    known = settings.__dataclass_fields__
    problems, given = [], {}
    for key, value in values.items():
        if key not in known:
            problems.append(
                f"{where}.{key}: unknown key{did_you_mean(key, known)}; "
                f"keys of [{section}] are {sorted(known)}"
            )
        elif (section, key) in FIXED:
            problems.append(f"{where}.{key}: {FIXED[section, key]}")
        else:
            given[key] = value
    base = raw.get(section)
    base = (
        {k: v for k, v in base.items() if k in known} if isinstance(base, dict) else {}
    )
    try:
        TypeAdapter(settings).validate_python({**base, **given})
    except ValidationError as exc:
        problems += [
            _describe(where, err)
            for err in exc.errors()
            if not err["loc"] or err["loc"][0] in given
        ]
    return problems


def _describe(where: str, err: dict[str, Any]) -> str:
    key = dotted_key([where, *(str(part) for part in err["loc"])])
    message = err["msg"].removeprefix("Value error, ")
    return (
        f"{key}: {message}; got {err.get('input')!r}. Fix it under "
        f"[{where.rpartition('.')[0]}] (README: Configuration reference)"
    )


def _quoted(layer: str) -> str:
    """A layer name as a TOML key: bare when it can be, else quoted."""
    bare = layer and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in layer)
    return layer if bare else '"' + layer.replace('"', '\\"') + '"'
