"""Writing the site's files atomically under one root, and measuring what
the published site holds.

The published site is every file under the output folder whose path has no
part starting with "." — the build cache and the output marker are left
out, and `atlas serve` does not serve them either. A render lists what it
wrote in `RECORD`, in the build cache; the next render removes the files
of that list it did not write again, so a renamed or dropped page does not
linger, and files the build never wrote are never touched.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from atlas.errors import BuildError
from atlas.store import CACHE_DIR

# The list of files the last render wrote, one root-relative path a line,
# kept with the build cache: like it, never published.
RECORD = f"{CACHE_DIR}/site-files.txt"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SiteSummary:
    """What a render wrote, and what the published site holds after it."""

    output: Path
    pages: int  # HTML pages written
    images: int  # image files written
    files: int  # files of the published site, as `published_size` counts
    bytes: int  # their total size


class SiteWriter:
    """Writes files atomically under one root and counts what it wrote."""

    def __init__(self, root: Path) -> None:
        if not Path(root).is_dir():
            raise BuildError(
                f"the output folder {str(root)!r} does not exist; expected a "
                "folder created by the caller; create it first"
            )
        self.root = Path(root).resolve()
        self.pages = 0
        self.images = 0
        self.written: set[str] = set()
        self._folders: set[Path] = set()

    def write_page(self, relative: str, data: bytes) -> None:
        self.write(relative, data)
        self.pages += 1

    def write_image(self, relative: str, data: bytes) -> None:
        self.write(relative, data)
        self.images += 1

    def write(self, relative: str, data: bytes) -> None:
        """Write `data` to a temporary file beside the target, then rename."""
        path = self.root.joinpath(*relative.split("/"))
        self._ensure_folder(path.parent)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self.written.add(relative)
        logger.debug("wrote %s (%d bytes)", relative, len(data))

    def prune(self) -> list[str]:
        """Remove what the last render wrote and this one did not; record
        what this one wrote. Returns the removed paths."""
        stale = sorted(self._previous() - self.written)
        for relative in stale:
            path = self.root.joinpath(*relative.split("/"))
            inside = path.parent.resolve().is_relative_to(self.root)
            if inside and path.is_file() and not path.is_symlink():
                path.unlink()
                _remove_empty_folders(path.parent, self.root)
        if stale:
            logger.info("removed %d file(s) of the previous build", len(stale))
        record = "".join(f"{path}\n" for path in sorted(self.written))
        self.write(RECORD, record.encode("utf-8"))
        self.written.discard(RECORD)
        return stale

    def summary(self) -> SiteSummary:
        """The counts so far, and the published site as it is on disk."""
        files, size = published_size(self.root)
        return SiteSummary(
            output=self.root,
            pages=self.pages,
            images=self.images,
            files=files,
            bytes=size,
        )

    def _ensure_folder(self, folder: Path) -> None:
        if folder in self._folders:
            return
        # A symlinked folder inside the output could point anywhere.
        if not folder.resolve().is_relative_to(self.root):
            raise BuildError(
                f"refusing to write into {str(folder)!r}: it resolves outside "
                f"the output folder {str(self.root)!r}; remove the link"
            )
        folder.mkdir(parents=True, exist_ok=True)
        self._folders.add(folder)

    def _previous(self) -> set[str]:
        path = self.root / RECORD
        if not path.is_file():
            return set()
        lines = path.read_text(encoding="utf-8").splitlines()
        # Only plain root-relative paths: a damaged record cannot reach out.
        return {
            line
            for line in lines
            if line and not line.startswith("/") and ".." not in line.split("/")
        }


def _remove_empty_folders(folder: Path, root: Path) -> None:
    while folder != root and folder.is_relative_to(root) and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def published_size(root: Path) -> tuple[int, int]:
    """(files, bytes) under `root`, leaving out every dot-named entry."""
    files = size = 0
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            if not name.startswith("."):
                files += 1
                size += os.path.getsize(os.path.join(folder, name))
    return files, size
