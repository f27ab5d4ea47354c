"""Reading `site_config.toml` into typed, validated, frozen settings.

Validation is pydantic's; this module turns its findings into one message
that lists every bad key with the value received and the fix.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from atlas.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CONFIG = "site_config.toml"

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=False)

# Numbers and switches must be written as such: "4" or "yes" is an error,
# not quietly read as 4 or true (an int is still a fine float).
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
PositiveInt = Annotated[int, Strict(), Field(gt=0)]


@dataclass(config=_STRICT)
class SiteSettings:
    """What the site says about itself."""

    title: str = "Neuron Atlas"
    about: Path | None = None
    templates: Path | None = None
    base_url: str | None = None  # the public address; enables the sitemap

    @field_validator("base_url")
    @classmethod
    def _base_url_is_absolute(cls, value: str | None) -> str | None:
        # Ends in exactly one "/": pages are appended to it, never urljoined.
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                "must be an absolute http(s) address, like 'https://example.org/atlas/'"
            )
        if parts.query or parts.fragment:
            raise ValueError("must not hold a query (?) or a fragment (#)")
        return value.strip().rstrip("/") + "/"


@dataclass(config=_STRICT)
class ModelSettings:
    """Where the model is and what input it takes."""

    path: Path | None = None
    application: str | None = None
    weights: str | None = "imagenet"
    custom_module: str | None = None
    safe_mode: Bool = True
    input_range: tuple[Float, Float] | None = None
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt] | None = None
    # The keras.applications pixel convention the model was trained on
    # (atlas.preprocess); "auto" is an application's own, "none" for a file.
    preprocess: Literal["auto", "none", "caffe", "tf", "torch"] = "auto"

    @model_validator(mode="after")
    def _has_a_source(self) -> ModelSettings:
        if self.path is None and not self.application:
            raise ValueError(
                "needs path (a .keras or .h5 file) or application (a "
                "keras.applications name such as 'MobileNetV2')"
            )
        return self

    @field_validator("weights")
    @classmethod
    def _none_means_random(cls, value: str | None) -> str | None:
        return None if value in (None, "none", "None") else value

    @field_validator("input_range")
    @classmethod
    def _range_is_increasing(cls, value: tuple[float, float] | None):
        if value is None:
            return value
        low, high = value
        if not low < high:
            raise ValueError("must be [low, high] with low < high, e.g. [0, 1]")
        return value


@dataclass(config=_STRICT)
class DataSettings:
    """The dataset mined for top-k examples."""

    path: Path
    limit: Annotated[Int, Field(ge=0)] = 0
    batch_size: PositiveInt = 64
    resize: Literal["resize", "crop"] = "resize"


@dataclass(config=_STRICT)
class LayerOverride:
    """One layer's own [visualize] and [mine] keys; atlas.overrides checks
    them against those sections, and `Settings.for_layer` applies them."""

    visualize: dict[str, Any] = Field(default_factory=dict)
    mine: dict[str, Any] = Field(default_factory=dict)


@dataclass(config=_STRICT)
class LayerSettings:
    """Which layers the atlas covers, and the settings some of them override."""

    names: list[str]
    override: dict[str, LayerOverride] = Field(default_factory=dict)

    @field_validator("names")
    @classmethod
    def _names_are_given(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("is empty: name at least one layer")
        duplicates = sorted({n for n in value if value.count(n) > 1})
        if duplicates:
            raise ValueError(f"names a layer twice: {duplicates}")
        return value


@dataclass(config=_STRICT)
class VisualizeSettings:
    """How synthesized images are made."""

    preset: str = "yosinski-3"
    steps: Annotated[Int, Field(ge=0)] = 0
    size: tuple[PositiveInt, PositiveInt] | None = None
    seed: Int = 0
    objective: Literal["channel", "neuron"] = "channel"
    chunk: PositiveInt = 64
    eager: Bool = False
    # The presets every unit page shows side by side, in this order; the
    # main preset joins at the front when it is not among them.
    progression: tuple[str, ...] = ("none", "l2", "yosinski-3-jitter", "fourier")
    negative: Bool = False
    diversity: Annotated[Int, Field(ge=0, le=64)] = 0
    memory_mb: Annotated[Float, Field(gt=0)] = 1024.0

    @field_validator("preset")
    @classmethod
    def _preset_is_known(cls, value: str) -> str:
        from atlas.visualize.presets import PRESETS

        if value not in PRESETS:
            raise ValueError(
                f"is not a preset; choose one of {sorted(PRESETS)}"
                + did_you_mean(value, PRESETS)
            )
        return value

    @field_validator("progression")
    @classmethod
    def _progression_is_known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from atlas.visualize.presets import PRESETS

        for name in value:
            if name not in PRESETS:
                raise ValueError(
                    f"names {name!r}, not a preset; choose from {sorted(PRESETS)}"
                    + did_you_mean(name, PRESETS)
                )
        if len(set(value)) != len(value):
            raise ValueError("names a preset twice")
        return value

    @field_validator("diversity")
    @classmethod
    def _diversity_is_a_group(cls, value: int) -> int:
        if value == 1:
            raise ValueError("must be 0 (off) or at least 2 images to push apart")
        return value

    @property
    def views(self) -> tuple[str, ...]:
        """The presets every unit is synthesized with, in page order."""
        if self.preset in self.progression:
            return self.progression
        return (self.preset, *self.progression)


@dataclass(config=_STRICT)
class MineSettings:
    """How top-k examples are mined."""

    top_k: Annotated[Int, Field(gt=0, le=100)] = 9
    bins: Annotated[Int, Field(ge=2, le=256)] = 32
    heatmaps: tuple[Literal["deconvnet", "guided", "gradient"], ...] = (
        "deconvnet",
        "guided",
    )


@dataclass(config=_STRICT)
class OutputSettings:
    """Where the site is written."""

    dir: Path = Path("output")


@dataclass(config=_STRICT)
class Settings:
    """Every setting of one build; paths are absolute."""

    model: ModelSettings
    data: DataSettings
    layers: LayerSettings
    site: SiteSettings = Field(default_factory=SiteSettings)
    visualize: VisualizeSettings = Field(default_factory=VisualizeSettings)
    mine: MineSettings = Field(default_factory=MineSettings)
    output: OutputSettings = Field(default_factory=OutputSettings)
    root: Path = Path(".")

    def for_layer(self, name: str) -> Settings:
        """The settings layer `name` is built with: its [layers.override]
        keys replace the global [visualize] and [mine] ones."""
        override = self.layers.override.get(name)
        if override is None:
            return self
        return replace(
            self,
            visualize=replace(self.visualize, **override.visualize),
            mine=replace(self.mine, **override.mine),
        )


_SECTIONS: dict[str, type] = {
    "site": SiteSettings,
    "model": ModelSettings,
    "data": DataSettings,
    "layers": LayerSettings,
    "visualize": VisualizeSettings,
    "mine": MineSettings,
    "output": OutputSettings,
}


def load_settings(path: Path | str, output: Path | str | None = None) -> Settings:
    """Read and validate a config file; relative paths are to its folder."""
    path = Path(path)
    raw = _read_toml(path)
    if output is not None:
        raw.setdefault("output", {})["dir"] = str(Path(output).resolve())
    settings = parse_settings(raw, source=str(path))
    return _resolve_paths(settings, path.resolve().parent)


def parse_settings(raw: dict[str, Any], source: str = "config") -> Settings:
    """Validate a parsed TOML mapping, collecting every problem at once."""
    from atlas.overrides import override_problems

    problems = _unknown_keys(raw) + override_problems(raw)
    try:
        settings = TypeAdapter(Settings).validate_python(_without_unknown(raw))
    except ValidationError as exc:
        problems += [_describe(err) for err in exc.errors()]
        settings = None
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{source} has {len(problems)} problem(s):\n{lines}")
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"config file not found: '{path}'. Pass --config with the path "
            f"of a site_config.toml (see README: Configuration)."
        )
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _unknown_keys(raw: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in raw.items():
        if key not in _SECTIONS:
            problems.append(
                f"[{key}]: unknown section{did_you_mean(key, _SECTIONS)}; "
                f"sections are {sorted(_SECTIONS)}"
            )
            continue
        if not isinstance(value, dict):
            problems.append(f"[{key}]: expected a table, got {value!r}")
            continue
        known = _SECTIONS[key].__dataclass_fields__
        for sub in value:
            if sub not in known:
                problems.append(
                    f"{key}.{sub}: unknown key{did_you_mean(sub, known)}; "
                    f"keys of [{key}] are {sorted(known)}"
                )
    return problems


def _without_unknown(raw: dict[str, Any]) -> dict[str, Any]:
    from atlas.overrides import clean_overrides

    clean = {}
    for key, value in raw.items():
        if key in _SECTIONS and isinstance(value, dict):
            known = _SECTIONS[key].__dataclass_fields__
            clean[key] = {k: v for k, v in value.items() if k in known}
    if "override" in clean.get("layers", {}):
        # Checked, with their own keys, by atlas.overrides.
        clean["layers"]["override"] = clean_overrides(clean["layers"]["override"])
    return clean


def _describe(err: dict[str, Any]) -> str:
    loc = [str(part) for part in err["loc"]]
    section = loc[0] if loc else "config"
    if err["type"] == "missing":
        where = ".".join(loc)
        return f"{where}: required; add it under [{section}] (see README)"
    key = dotted_key(loc)
    message = err["msg"].removeprefix("Value error, ")
    return (
        f"{key}: {message}; got {err.get('input')!r}. Fix it under [{section}] "
        "(README: Configuration reference)"
    )


def dotted_key(loc: list[str]) -> str:
    """A dotted key with list positions in brackets: visualize.size[0]."""
    key = ""
    for part in loc:
        if part.isdigit():
            key += f"[{part}]"
        elif not part.startswith(("function-", "tuple[", "list[")):
            key += f".{part}" if key else part
    return key or "config"


def did_you_mean(word: str, choices: Any) -> str:
    """A "did you mean" note naming the choice closest to `word`, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    def absolute(p: Path | None) -> Path | None:
        return None if p is None else (base / p).resolve()

    return replace(
        settings,
        root=base,
        site=replace(
            settings.site,
            about=absolute(settings.site.about),
            templates=absolute(settings.site.templates),
        ),
        model=replace(settings.model, path=absolute(settings.model.path)),
        data=replace(settings.data, path=absolute(settings.data.path)),
        output=replace(settings.output, dir=absolute(settings.output.dir)),
    )
