"""Uncompressed copies of compressed `.npz` members, made once by streaming
and kept in a cache folder, so that they can be read like a `.npy`."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import weakref
import zipfile
import zlib
from pathlib import Path

from atlas.errors import DataError

logger = logging.getLogger(__name__)

# Bytes decompressed and written at a time: decompressing then peaks near
# 4 MiB (tracemalloc, a 128 MiB member), whatever the size of the array.
CHUNK = 1024 * 1024
_TEMP_PREFIX = ".unpack-"


def unpacked_member(path: Path, info: zipfile.ZipInfo, folder: Path) -> Path:
    """The uncompressed copy of member `info` of the archive `path`, in
    `folder`: reused while the archive is unchanged (its size, modification
    time and the member), else decompressed once."""
    name = _copy_name(path, info)
    target = folder / f"{name}{_version(path, info)}.npy"
    if target.is_file() and target.stat().st_size == info.file_size:
        logger.debug("%s: reusing the decompressed copy %s", path, target)
        return target
    logger.info(
        "%s: decompressing its '%s' array (%.1f MB) once into %s",
        path,
        info.filename,
        info.file_size / 1e6,
        folder,
    )
    _decompress(path, info, target)
    _remove_stale(folder, name, target)
    return target


def scratch_folder(owner: object) -> Path:
    """A private temporary folder, removed when `owner` is collected or the
    process exits: the cache of data opened outside a build."""
    folder = Path(tempfile.mkdtemp(prefix="neuron-atlas-arrays-"))
    weakref.finalize(owner, shutil.rmtree, folder, ignore_errors=True)
    return folder


def _copy_name(path: Path, info: zipfile.ZipInfo) -> str:
    """The name shared by every copy of this member of this archive."""
    where = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    return f"{path.stem}.{where}.{Path(info.filename).stem}."


def _version(path: Path, info: zipfile.ZipInfo) -> str:
    stat = path.stat()
    facts = (stat.st_size, stat.st_mtime_ns, info.filename, info.CRC, info.file_size)
    return hashlib.sha256(repr(facts).encode()).hexdigest()[:12]


def _decompress(path: Path, info: zipfile.ZipInfo, target: Path) -> None:
    """Stream the member into a temporary file, then rename it into place:
    an interrupted copy never appears under the name that reads as done."""
    handle, temp = tempfile.mkstemp(
        dir=target.parent, prefix=_TEMP_PREFIX, suffix=".tmp"
    )
    try:
        with (
            os.fdopen(handle, "wb") as out,
            zipfile.ZipFile(path) as archive,
            archive.open(info) as member,
        ):
            shutil.copyfileobj(member, out, CHUNK)
        _check_size(path, info, Path(temp))
        os.replace(temp, target)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(
            f"cannot decompress '{info.filename}' from '{path}': {exc}. The "
            f"file is damaged; save the images again (np.savez)."
        ) from exc
    except OSError as exc:
        raise DataError(
            f"cannot write the decompressed '{info.filename}' of '{path}' "
            f"into '{target.parent}': {exc}. Free space there, or save the "
            f"images uncompressed (np.savez), which needs no copy."
        ) from exc
    finally:
        Path(temp).unlink(missing_ok=True)


def _check_size(path: Path, info: zipfile.ZipInfo, temp: Path) -> None:
    written = temp.stat().st_size
    if written != info.file_size:
        raise DataError(
            f"'{info.filename}' in '{path}' decompressed to {written} bytes; "
            f"its archive says {info.file_size}. Save the images again."
        )


def _remove_stale(folder: Path, name: str, keep: Path) -> None:
    """Copies of earlier versions of the same archive member, and partial
    copies a killed build left behind (a build owns its cache alone)."""
    for old in folder.iterdir():
        outdated = old.name.startswith(name) and old.suffix == ".npy"
        partial = old.name.startswith(_TEMP_PREFIX) and old.suffix == ".tmp"
        if (outdated or partial) and old != keep:
            logger.debug("removing %s", old)
            old.unlink(missing_ok=True)
