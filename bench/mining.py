"""Benchmark: streaming mining against plain batched inference.

MobileNetV2 (random weights, 128x128x3), three layers mined at once over
synthetic images streamed from a .npy file. Throughput of plain inference
of the same multi-output extractor and of `atlas.mine.mine` is measured in
lockstep, batch by batch (the machine may be shared), both compiled first;
peak memory is measured in fresh processes mining the dataset at 1x and 4x
its size. The last line printed is

    mining throughput_ratio=<ours / plain> rss_growth=<peak 4x / peak 1x - 1>

Run: python3 bench/mining.py [--images 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIZE = 128
LAYERS = ("block_3_expand_relu", "block_13_expand_relu", "out_relu")
INPUT_RANGE = (-1.0, 1.0)  # MobileNetV2's preprocess_input range
BATCH = 64
TOP_K = 9
# Images mined, and inferred, before any timing: compiling and warming up.
WARMUP_IMAGES = 2 * BATCH


def main() -> None:
    args = _arguments()
    if args.child:
        _child(Path(args.child), args.images)
        return
    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as folder:
        small = _write_images(Path(folder) / "x1.npy", args.images)
        plain, ours = _throughput(small, args.rounds)
        large = _write_images(Path(folder) / "x4.npy", 4 * args.images)
        rss_1x, rss_4x = _peak_memory(small, large, args.images, args.repeats)
    ratio = statistics.median(o / p for p, o in zip(plain, ours, strict=True))
    print(
        f"plain inference: median {statistics.median(plain):.1f} img/s {_list(plain)}"
    )
    print(f"atlas mining:    median {statistics.median(ours):.1f} img/s {_list(ours)}")
    print(f"peak RSS 1x: {_mib(rss_1x)}  4x: {_mib(rss_4x)}")
    growth = statistics.median(rss_4x) / statistics.median(rss_1x) - 1
    print(f"mining throughput_ratio={ratio:.3f} rss_growth={growth:.3f}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5, help="timed pairs")
    parser.add_argument("--repeats", type=int, default=2, help="RSS runs per size")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args()


def _write_images(path: Path, count: int) -> Path:
    """Smooth random colour images: low-frequency noise, bilinearly upsampled,
    so that units respond to structure rather than to pixel noise."""
    rng = np.random.default_rng(count)
    out = np.lib.format.open_memmap(path, "w+", np.uint8, (count, SIZE, SIZE, 3))
    coarse = 8
    grid = np.linspace(0, coarse - 1, SIZE)
    low, frac = np.floor(grid).astype(int), grid - np.floor(grid)
    high = np.minimum(low + 1, coarse - 1)
    for start in range(0, count, 256):
        n = min(256, count - start)
        seeds = rng.uniform(0, 255, (n, coarse, coarse, 3)).astype(np.float32)
        rows = (
            seeds[:, low] * (1 - frac)[:, None, None]
            + seeds[:, high] * frac[:, None, None]
        )
        image = (
            rows[:, :, low] * (1 - frac)[None, :, None]
            + rows[:, :, high] * (frac[None, :, None])
        )
        out[start : start + n] = np.clip(image, 0, 255).astype(np.uint8)
    out.flush()
    del out
    return path


def _extractor():
    import keras

    from atlas.model import describe_layers, feature_model, select_layers

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(SIZE, SIZE, 3))
    infos = select_layers(describe_layers(model), LAYERS)
    return feature_model(model, infos), infos


def _throughput(path: Path, rounds: int) -> tuple[list[float], list[float]]:
    """Images per second of plain inference and of mining, per round.

    Other processes' load on a shared machine changes from second to second,
    so whole runs one after the other compare unlike conditions. Here the
    two run in lockstep: each time mining asks for its next batch, plain
    inference runs on the same batch from its own, identical data pipeline,
    timed apart; mining's time is its whole run less those plain steps.
    Which of the two goes first in each pair alternates by round. Both are
    compiled and warmed up before any timing.
    """
    from atlas.data import open_dataset
    from atlas.mine import mine

    extractor, infos = _extractor()
    dataset = open_dataset(path, (SIZE, SIZE, 3), INPUT_RANGE)
    infer = _plain_inference(extractor)

    def run(count: int, plain_first: bool) -> tuple[float, float]:
        steps = -(-count // BATCH)
        plain = _Lockstep(infer, dataset.pipeline(BATCH, scaled=False).take(steps))
        ours = dataset.pipeline(BATCH, scaled=False).take(steps)
        started, cpu = time.perf_counter(), time.process_time()
        mine(
            extractor,
            infos,
            plain.feed(ours, plain_first),
            k=TOP_K,
            input_range=INPUT_RANGE,
        )
        total, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"  CPU seconds: plain {plain.cpu:.2f}, mining {cpu - plain.cpu:.2f}",
            flush=True,
        )
        return count / plain.seconds, count / (total - plain.seconds)

    run(WARMUP_IMAGES, True)
    plain_rates, our_rates = [], []
    for number in range(rounds):
        plain_rate, our_rate = run(len(dataset), plain_first=number % 2 == 0)
        plain_rates.append(plain_rate)
        our_rates.append(our_rate)
        print(
            f"round {number + 1}: plain {plain_rate:.1f} img/s, "
            f"mining {our_rate:.1f} img/s",
            flush=True,
        )
    return plain_rates, our_rates


def _plain_inference(extractor):
    """The extractor on uint8 batches, scaled in the graph as mining does."""
    import tensorflow as tf

    from atlas.data import scale_pixels

    spec = tf.TensorSpec((None, SIZE, SIZE, 3), tf.uint8)

    @tf.function(input_signature=[spec])
    def infer(batch):
        return extractor(scale_pixels(batch, INPUT_RANGE), training=False)

    return infer


class _Lockstep:
    """Plain inference one batch at a time, between mining's batches."""

    def __init__(self, infer, batches) -> None:
        self.infer = infer
        self.batches = iter(batches)
        self.seconds = self.cpu = 0.0

    def feed(self, ours, plain_first: bool):
        """Mining's batches, with a timed plain step before (or after) each."""
        for batch in ours:
            if plain_first:
                self._step()
            yield batch
            if not plain_first:
                self._step()

    def _step(self) -> None:
        started, cpu = time.perf_counter(), time.process_time()
        outputs = self.infer(next(self.batches))
        outputs[-1][:1].numpy()  # the step is done once a result can be read
        self.seconds += time.perf_counter() - started
        self.cpu += time.process_time() - cpu


def _peak_memory(small: Path, large: Path, images: int, repeats: int):
    """Peak RSS of fresh processes mining 1x and 4x the images, alternating."""
    sizes = {small: [], large: []}
    for _ in range(repeats):
        for path, count in ((small, images), (large, 4 * images)):
            command = [sys.executable, __file__, "--child", str(path)]
            command += ["--images", str(count)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            sizes[path].append(int(done.stdout.split()[-1]))
            print(f"peak RSS mining {count} images: {_mib([sizes[path][-1]])}")
    return sizes[small], sizes[large]


def _child(path: Path, images: int) -> None:
    """Mine every image of `path`; print the peak RSS in bytes, last."""
    from atlas.data import open_dataset
    from atlas.mine import mine

    extractor, infos = _extractor()
    dataset = open_dataset(path, (SIZE, SIZE, 3), INPUT_RANGE)
    if len(dataset) != images:
        raise SystemExit(f"expected {images} images in {path}, got {len(dataset)}")
    batches = dataset.pipeline(BATCH, scaled=False)
    mined = mine(extractor, infos, batches, k=TOP_K, input_range=INPUT_RANGE)
    if mined[LAYERS[0]].count != images:
        raise SystemExit("mining saw the wrong number of images")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB
    print(peak * scale)


def _list(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in values) + "]"


def _mib(values: list[int]) -> str:
    return "/".join(f"{v / 2**20:.0f} MiB" for v in values)


if __name__ == "__main__":
    main()
