"""Recognizability of synthesized digits, per preset.

On the digits example, every preset synthesizes one image per logits unit
(one per class), and three figures say how recognizable the images are:

- self: the fraction the atlas model itself assigns to the unit's class;
- judge: the fraction a k-nearest-neighbours classifier over the real
  training digits assigns to it (an outside judge of the digit's shape);
- natural: the median distance from each image to its nearest real
  training digit, over the median nearest-neighbour distance from real test
  digits to training digits (1 = as close to real digits as real digits).

The last line names the best preset's judge and natural (best: the lowest
natural among presets with self >= 0.9) and plain ascent's natural.

    python bench/recognizability.py [--presets none,l2,...] [--steps N]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits"
# Neighbours the judge votes with: an odd count, small beside the ~140
# training digits per class (scikit-learn's default is 5).
JUDGE_NEIGHBOURS = 5
# A preset counts as "best" only if the model itself reads this share of
# its images as their own class.
SELF_FLOOR = 0.9
LAYER = "logits"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One preset's figures."""

    preset: str
    self: float
    judge: float
    natural: float
    seconds: float


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))  # run from a clone, installed or not
    digits = _Digits.load()
    names = args.presets.split(",") if args.presets else _all_presets()
    rows = [_measure(digits, name, args.steps, args.seed) for name in names]
    print(_table(rows))
    print(_last_line(rows))
    return 0


def _all_presets() -> list[str]:
    from atlas.visualize import PRESETS

    return list(PRESETS)


class _Digits:
    """The example's model and data, and the judge fitted on its training
    split."""

    def __init__(self, model, train, train_labels, test) -> None:
        from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

        self.model = model
        self.train = train
        self.judge = KNeighborsClassifier(JUDGE_NEIGHBOURS).fit(
            _flat(train), train_labels
        )
        self.nearest = NearestNeighbors(n_neighbors=1).fit(_flat(train))
        self.real_distance = float(np.median(self.distance(test)))
        self.statistics = _statistics(train)

    @classmethod
    def load(cls) -> _Digits:
        import keras

        model = keras.saving.load_model(EXAMPLE / "model.keras", compile=False)
        data = np.load(EXAMPLE / "digits.npz")
        images = data["x"].astype(np.float32) / 255.0
        train = data["split"] == "train"
        return cls(model, images[train], data["y"][train], images[~train])

    def distance(self, images: np.ndarray) -> np.ndarray:
        """Each image's distance to its nearest training digit."""
        return self.nearest.kneighbors(_flat(images))[0][:, 0]


def _measure(digits: _Digits, name: str, steps: int | None, seed: int) -> Row:
    from atlas.model import ascent_model, describe_layers, select_layers
    from atlas.visualize import PRESETS, synthesize

    info = select_layers(describe_layers(digits.model), [LAYER])[0]
    began = time.perf_counter()
    result = synthesize(
        ascent_model(digits.model, info),
        info,
        range(info.units),
        PRESETS[name],
        canvas=digits.train.shape[1:],
        input_range=(0.0, 1.0),
        mean=digits.statistics.mean_image,
        covariance=digits.statistics.covariance,
        seed=seed,
        steps=steps,
    )
    seconds = time.perf_counter() - began
    images = np.round(result.images * 255) / 255  # as the atlas saves them
    classes = np.arange(info.units)
    predicted = np.argmax(digits.model.predict(images, verbose=0), axis=-1)
    natural = np.median(digits.distance(images)) / digits.real_distance
    return Row(
        preset=name,
        self=float(np.mean(predicted == classes)),
        judge=float(np.mean(digits.judge.predict(_flat(images)) == classes)),
        natural=float(natural),
        seconds=seconds,
    )


def _table(rows: list[Row]) -> str:
    lines = [f"{'preset':20} {'self':>6} {'judge':>6} {'natural':>8} {'seconds':>8}"]
    for row in rows:
        lines.append(
            f"{row.preset:20} {row.self:6.2f} {row.judge:6.2f} "
            f"{row.natural:8.2f} {row.seconds:8.1f}"
        )
    return "\n".join(lines)


def _last_line(rows: list[Row]) -> str:
    eligible = [row for row in rows if row.self >= SELF_FLOOR]
    best = min(eligible, key=lambda row: row.natural) if eligible else None
    plain = next((row for row in rows if row.preset == "none"), None)
    best_judge = best.judge if best else float("nan")
    best_natural = best.natural if best else float("nan")
    none_natural = plain.natural if plain else float("nan")
    return (
        f"recognizability best_judge={best_judge:.3f} "
        f"best_natural={best_natural:.3f} none_natural={none_natural:.3f}"
    )


def _statistics(images: np.ndarray):
    """The mean image and colours ascent starts from, as a build takes them."""
    from atlas.visualize.statistics import pixel_statistics

    return pixel_statistics([images], (0.0, 1.0), images.shape[1:])


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", help="comma-separated (default: all)")
    parser.add_argument("--steps", type=int, help="override every preset's steps")
    parser.add_argument("--seed", type=int, default=0)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
