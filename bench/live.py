"""Benchmark of the live probe: updates per second and end-to-end latency
of a stream of frames through the real WebSocket path (uvicorn on
127.0.0.1), beside the same frames run in-process with no server (the
baseline), for the digits example's largest layer and a mid layer of
MobileNetV2 at 128x128.

    python3 bench/live.py [--frames N] [--clients N]

The client sends each frame when the reply to the last one has arrived,
as probe-stream.js does. The last line is `live fps=<f> p95_ms=<f>` for
MobileNetV2.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlas.config import load_settings  # noqa: E402
from atlas.live.inputs import rgba_to_pixels  # noqa: E402
from atlas.live.protocol import FrameRequest, decode_reply, encode_request  # noqa: E402
from atlas.live.server import open_live, running  # noqa: E402

# Frames sent before timing starts: the first ones build per-size caches.
WARMUP_FRAMES = 20
# The stream stops at this many seconds whatever the frame count.
TIME_CAP_S = 60.0
MOBILENET_CONFIG = """
[model]
application = "MobileNetV2"
weights = "none"
input_shape = [128, 128, 3]
input_range = [-1.0, 1.0]
[data]
path = "images.npz"
[layers]
names = ["block_6_expand_relu"]
"""


@dataclass(frozen=True)
class Result:
    """One stream's speed."""

    fps: float
    median_ms: float
    p95_ms: float
    reply_bytes: int


def main() -> None:
    args = _arguments()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    cases = [
        ("digits", ROOT / "site_config.toml", "conv1"),
        ("mobilenetv2", _mobilenet_project(), "block_6_expand_relu"),
    ]
    last = None
    for name, config, layer in cases:
        last = _bench(name, config, layer, args)
    print(f"live fps={last.fps:.1f} p95_ms={last.p95_ms:.1f}")


def _bench(name: str, config: Path, layer: str, args) -> Result:
    live = open_live(load_settings(config), None)
    index = live.probe.index_of(layer)
    info = live.probe.layer(index).info
    inputs = _inputs(live.probe.shape[:2], 16)
    direct = _direct(live.probe, index, inputs, args.frames)
    with running(live) as url:
        result = _streams(url, index, inputs, args.frames, args.clients)
    shape = "x".join(str(d) for d in info.output_shape[1:])
    print(
        f"{name} {layer} ({info.units} units, {shape}): {result.fps:.1f} "
        f"updates/s over WebSocket ({args.clients} client(s)), latency median "
        f"{result.median_ms:.1f} ms, p95 {result.p95_ms:.1f} ms, "
        f"{result.reply_bytes:,} bytes per update; in-process baseline "
        f"{direct:.1f}/s; ratio {result.fps / direct:.2f}"
    )
    return result


def _inputs(size: tuple[int, int], count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (count, *size, 4), dtype=np.uint8)
    frames[..., 3] = 255
    return list(frames)


def _direct(probe, index: int, inputs: list[np.ndarray], count: int) -> float:
    """Frames per second of the probe itself, one image per call."""
    pixels = [rgba_to_pixels(f, probe.shape[2])[None] for f in inputs]
    for i in range(WARMUP_FRAMES):
        probe.frames(index, pixels[i % len(pixels)])
    started = time.perf_counter()
    for i in range(count):
        probe.frames(index, pixels[i % len(pixels)])
    return count / (time.perf_counter() - started)


def _streams(url: str, index: int, inputs, count: int, clients: int) -> Result:
    results: list[tuple[list[float], float, int]] = [None] * clients
    threads = [
        threading.Thread(target=_client, args=(url, index, inputs, count, results, i))
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = sorted(ms for lat, _, _ in results for ms in lat)
    fps = sum(len(lat) / seconds for lat, seconds, _ in results)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    return Result(fps, statistics.median(latencies), p95, results[0][2])


def _client(url, index, inputs, count, results, slot) -> None:
    from websockets.sync.client import connect

    socket_url = url.replace("http://", "ws://") + "/live/ws"
    with connect(socket_url, origin=url, max_size=2**24) as socket:
        for seq in range(WARMUP_FRAMES):
            _round_trip(socket, index, inputs, seq)
        latencies, size = [], 0
        started = time.perf_counter()
        for seq in range(count):
            sent = time.perf_counter()
            size = _round_trip(socket, index, inputs, seq)
            latencies.append((time.perf_counter() - sent) * 1000)
            if time.perf_counter() - started > TIME_CAP_S:
                break
        results[slot] = (latencies, time.perf_counter() - started, size)


def _round_trip(socket, index: int, inputs, seq: int) -> int:
    request = FrameRequest(seq, index, inputs[seq % len(inputs)])
    socket.send(encode_request(request))
    reply = socket.recv(timeout=TIME_CAP_S)
    got, _, _ = decode_reply(reply)
    if got != seq:
        raise RuntimeError(f"reply to frame {got} while waiting for {seq}")
    return len(reply)


def _mobilenet_project() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="atlas-bench-live-"))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 128, 128, 3), dtype=np.uint8)
    np.savez(folder / "images.npz", x=images)
    config = folder / "site_config.toml"
    config.write_text(MOBILENET_CONFIG, encoding="utf-8")
    return config


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="timed frames")
    parser.add_argument("--clients", type=int, default=1, help="streams at once")
    return parser.parse_args()


if __name__ == "__main__":
    main()
