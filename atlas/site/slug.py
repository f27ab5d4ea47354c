"""Safe, unique, deterministic file-name components for user-supplied names.

A name that is already a safe slug is kept as it is; any other name is
cleaned and given a short hash of the original, so no two names can meet.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence

from atlas.errors import BuildError

MAX_LENGTH = 60
# Hex digits of SHA-256 tried in turn when two hashed slugs still meet.
HASH_LENGTHS = (8, 12, 16, 24, 32)
# What a cleaned name falls back to when nothing ASCII is left of it.
FALLBACK = "name"

SAFE = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_UNSAFE_RUN = re.compile(r"[^a-z0-9_]+")
# Device names that Windows refuses as file names, with or without extension.
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(1, 10)}
    | {f"lpt{i}" for i in range(1, 10)}
)

logger = logging.getLogger(__name__)


def slugify(name: str) -> str:
    """Map any string to a lowercase ASCII file-name component.

    The result matches `[a-z0-9][a-z0-9_-]*`, holds at most `MAX_LENGTH`
    characters, and ends in an 8-digit hash of `name` unless `name` itself
    was already such a component.
    """
    if _is_lossless(name):
        return name
    return _hashed(name, HASH_LENGTHS[0])


def unique_slugs(
    names: Sequence[str], reserved: Collection[str] = ()
) -> dict[str, str]:
    """Give every distinct name its own slug, none of them in `reserved`.

    A name's slug depends only on the set of names, not on their order, so
    the same model gives the same file names on every build.
    """
    slugs = {name: slugify(name) for name in sorted(set(names))}
    for length in HASH_LENGTHS[1:]:
        clashing = _clashing(slugs, reserved)
        if not clashing:
            return {name: slugs[name] for name in names}
        for name in clashing:
            slugs[name] = _hashed(name, length)
        logger.debug("lengthened the hash of %d clashing slugs", len(clashing))
    clashing = _clashing(slugs, reserved)
    if clashing:
        raise BuildError(
            f"cannot give distinct file names to {sorted(clashing)!r}: their "
            f"slugs still meet after {HASH_LENGTHS[-1]} hash digits; rename "
            "one of them"
        )
    return {name: slugs[name] for name in names}


def _is_lossless(name: str) -> bool:
    return (
        len(name) <= MAX_LENGTH
        and SAFE.match(name) is not None
        and name not in _WINDOWS_RESERVED
    )


def _clean(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name)
    ascii_only = folded.encode("ascii", "ignore").decode("ascii").lower()
    return _UNSAFE_RUN.sub("-", ascii_only).strip("-_")


def _hashed(name: str, length: int) -> str:
    data = name.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(data).hexdigest()[:length]
    stem = _clean(name)[: MAX_LENGTH - length - 1].rstrip("-_")
    return f"{stem or FALLBACK}-{digest}"


def _clashing(slugs: dict[str, str], reserved: Collection[str]) -> set[str]:
    """Names whose slug is shared or reserved; a kept name is never moved."""
    owners: dict[str, list[str]] = {}
    for name, slug in slugs.items():
        owners.setdefault(slug, []).append(name)
    taken = set(reserved)
    return {
        name
        for slug, group in owners.items()
        if len(group) > 1 or slug in taken
        for name in _movable(group, slug, taken)
    }


def _movable(group: Iterable[str], slug: str, taken: set[str]) -> list[str]:
    # A name that is its own slug stays put unless the slug is reserved:
    # two distinct names cannot both be their own slug.
    return [name for name in group if name != slug or slug in taken]
