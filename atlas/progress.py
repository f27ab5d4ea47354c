"""Progress bars for long work, quiet when output is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress_bar(total: int, description: str) -> Iterator[tqdm]:
    """A tqdm bar on stderr, disabled unless stderr is a terminal."""
    bar = tqdm(
        total=total,
        desc=description,
        unit="unit" if "image" not in description else "img",
        disable=not sys.stderr.isatty(),
        leave=False,
        mininterval=0.5,
    )
    try:
        yield bar
    finally:
        bar.close()
