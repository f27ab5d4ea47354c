"""The exception tree: every failure a user can meet is an `AtlasError`."""

from __future__ import annotations


class AtlasError(Exception):
    """A failure with a message meant for the user: what, expected, got, fix."""


class ConfigError(AtlasError):
    """`site_config.toml` is missing, malformed or holds bad values."""


class ModelError(AtlasError):
    """The model cannot be loaded or a configured layer cannot be used."""


class DataError(AtlasError):
    """The mining dataset cannot be read or does not fit the model."""


class BuildError(AtlasError):
    """The build cannot write its output or finish a stage."""
