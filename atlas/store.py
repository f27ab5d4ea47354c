"""The build cache: computed arrays keyed by a hash of everything that made
them, written atomically, so a stopped build resumes where it was."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from atlas.errors import BuildError

logger = logging.getLogger(__name__)

CACHE_DIR = ".atlas-cache"
# Bumped whenever what an entry holds changes, so old entries are not read.
ENTRY_FORMAT = 2


def cache_key(**parts: Any) -> str:
    """A stable hex key for a JSON-able description of a result."""
    described = {"entry_format": ENTRY_FORMAT, **parts}
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Store:
    """A folder of `.npz` entries; an entry present is never recomputed.

    Entries are written only where the folder really is under `within`
    (by default the store's own parent): a symbolic link planted in the
    output cannot send them elsewhere.
    """

    def __init__(self, root: Path, within: Path | None = None) -> None:
        self.root = Path(root)
        self.within = Path(within if within is not None else self.root.parent)

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.npz"

    def load(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        path = self.path(kind, key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as entry:
                return {name: entry[name] for name in entry.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            logger.warning("ignoring unreadable cache entry %s: %s", path, exc)
            return None

    def folder(self, kind: str) -> Path:
        """The folder of `kind` entries, created once it is known to lie
        within the store's bounds (checked first, so that nothing, not even
        a folder, is made through a link)."""
        folder = self.root / kind
        if not folder.resolve().is_relative_to(self.within.resolve()):
            raise BuildError(
                f"refusing to write the build cache into '{folder}': it "
                f"resolves outside '{self.within}' (a symbolic link); remove "
                "the link and build again"
            )
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def save(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        path = self.folder(kind) / f"{key}.npz"
        handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **arrays)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
