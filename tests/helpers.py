"""Test helpers: tiny models and datasets built in code, a link checker."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

_LINK_ATTRS = {"href", "src"}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in _LINK_ATTRS and value is not None:
                self.links.append(value)


def page_links(page: Path) -> list[str]:
    """Every href and src on an HTML page."""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.links


def broken_links(root: Path) -> list[str]:
    """Links of every page under `root` that do not resolve to a file in it."""
    broken = []
    for page in sorted(root.rglob("*.html")):
        for link in page_links(page):
            target = link.split("#", 1)[0]
            if not target:
                continue
            if re.match(r"^[a-z]+:|^/", target):
                broken.append(f"{page.relative_to(root)}: absolute {link}")
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_file() or root.resolve() not in resolved.parents:
                broken.append(f"{page.relative_to(root)}: {link}")
    return broken


def digits_like_model(seed: int = 0):
    """A tiny CNN shaped like the example (conv, pool, conv, dense, logits)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 12, 1), name="pixels")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(5, activation="relu", name="fc")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="tiny")


def random_digits(count: int = 40, size: int = 12, seed: int = 0) -> dict:
    """A small labelled uint8 dataset for `digits_like_model`."""
    rng = np.random.default_rng(seed)
    return {
        "x": rng.integers(0, 256, (count, size, size, 1), dtype=np.uint8),
        "y": rng.integers(0, 3, count),
        "class_names": np.array(["zero", "one", "two"]),
    }


def build_small_atlas(
    root: Path,
    model_keys: str,
    layers: list[str],
    *,
    top_k: int = 2,
    heatmaps: bool = True,
    steps: int = 3,
) -> Path:
    """`atlas build` of `layers`, on root/data.npz, with one cheap preset
    and `model_keys` (TOML lines) under [model]; the site's folder."""
    import json
    import os

    from atlas.cli import main

    mine = f"top_k = {top_k}\n" + ("" if heatmaps else "heatmaps = []\n")
    (root / "site_config.toml").write_text(
        f"[model]\n{model_keys}\n"
        '[data]\npath = "data.npz"\n'
        f"[layers]\nnames = {json.dumps(layers)}\n"
        '[visualize]\nprogression = []\npreset = "l2"\n'
        f"[mine]\n{mine}",
        encoding="utf-8",
    )
    before = os.environ.get("ATLAS_MAX_STEPS")
    os.environ["ATLAS_MAX_STEPS"] = str(steps)
    try:
        assert main(["build", "--config", str(root / "site_config.toml")]) == 0
    finally:
        if before is None:
            os.environ.pop("ATLAS_MAX_STEPS", None)
        else:
            os.environ["ATLAS_MAX_STEPS"] = before
    return root / "output"
