"""The output folder: created and claimed by the build, never another's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from atlas.errors import BuildError

MARKER = ".neuron-atlas"
_MARKER_TEXT = "This folder is written by `atlas build`; it may overwrite files here.\n"


def claim_output(folder: Path) -> Path:
    """Create `folder`, or reuse it if an earlier build made it; else refuse."""
    folder = check_output(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_marker(folder)
    except OSError as exc:
        raise BuildError(f"cannot create output.dir '{folder}': {exc}") from exc
    return folder


def _write_marker(folder: Path) -> None:
    # Replacing (not writing through) the marker: were it a link to a file
    # elsewhere, that file stays untouched.
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(_MARKER_TEXT)
        os.replace(temporary, folder / MARKER)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_output(folder: Path) -> Path:
    """Raise unless the build may write into `folder`; change nothing."""
    folder = Path(folder)
    if folder.is_symlink():
        raise BuildError(
            f"output.dir '{folder}' is a symbolic link; the build writes only "
            f"into a real folder it owns. Point output.dir at a new folder."
        )
    if folder.exists() and not folder.is_dir():
        raise BuildError(f"output.dir '{folder}' is a file; choose a folder name.")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).is_file():
        raise BuildError(
            f"output.dir '{folder}' holds files the atlas did not write; "
            f"refusing to write there. Choose an empty or new folder "
            f"(--output DIR or output.dir in the config)."
        )
    return folder


def site_size(folder: Path, skip: tuple[str, ...] = ()) -> tuple[int, int]:
    """(files, bytes) of the published site, leaving out `skip` folders."""
    files = size = 0
    for path in Path(folder).rglob("*"):
        relative = path.relative_to(folder).parts
        if relative[0] in skip or relative[0] == MARKER or not path.is_file():
            continue
        files += 1
        size += path.stat().st_size
    return files, size
