"""Checks that need no TensorFlow, run before it loads: a missing file or
a folder the build may not write to is reported in a second, not after
the model is loaded and the data scanned."""

from __future__ import annotations

from atlas.config import Settings
from atlas.errors import ConfigError, DataError, ModelError
from atlas.output import check_output

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def preflight(settings: Settings) -> None:
    """Raise the first problem a build would meet with its inputs' paths."""
    model = settings.model
    if model.path is not None and not model.application:
        if not model.path.exists():
            raise ModelError(
                f"model file not found: '{model.path}'. Set model.path in the "
                "config to a .keras or .h5 file (relative to the config file)."
            )
    if not settings.data.path.exists():
        raise DataError(
            f"data.path not found: '{settings.data.path}'. Fix data.path in "
            "the config (a folder of images or a .npz/.npy file)."
        )
    about = settings.site.about
    if about is not None and not about.is_file():
        raise ConfigError(f"site.about file not found: '{about}'. Fix site.about.")
    check_output(settings.output.dir)
