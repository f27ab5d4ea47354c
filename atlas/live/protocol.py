"""The binary messages of the live probe: an input frame (RGBA pixels at
the model's input size) and the packed reply (one uint8 tile image of
every unit's map, per-unit maxima, the top classes).

All numbers are little-endian. templates/static/probe-frames.js reads and
writes the same layout; change both together and bump the magic.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from atlas.errors import DataError

REQUEST_MAGIC = b"ALQ1"
REPLY_MAGIC = b"ALR1"
# magic, sequence number, layer index, width, height.
REQUEST_HEADER = struct.Struct("<4sIHHH")
# magic, sequence, layer, units, map height, map width, tile rows, tile
# columns, classes shown, activation low and high of the frame.
REPLY_HEADER = struct.Struct("<4sIHHHHHHHff")
RGBA = 4

__all__ = ["FrameRequest", "ProbeFrame", "decode_request", "encode_reply"]


@dataclass(frozen=True)
class FrameRequest:
    """An input frame: RGBA pixels for one layer."""

    seq: int
    layer: int
    rgba: np.ndarray  # (height, width, 4) uint8


@dataclass(frozen=True)
class ProbeFrame:
    """Every unit's map of a layer on one input, packed for display.

    The tile holds unit u's map at tile row u // cols, column u % cols;
    a value v stands for low + v / 255 * (high - low).
    """

    tile: np.ndarray  # (rows * map_h, cols * map_w) uint8
    low: float
    high: float
    unit_max: np.ndarray  # (units,) float32, each unit's largest value
    classes: np.ndarray  # (k,) int class indices, most probable first
    probabilities: np.ndarray  # (k,) float32

    @property
    def units(self) -> int:
        return len(self.unit_max)


def encode_request(request: FrameRequest) -> bytes:
    """The bytes a client sends for `request` (the bench and tests use it)."""
    height, width = request.rgba.shape[:2]
    header = REQUEST_HEADER.pack(
        REQUEST_MAGIC, request.seq, request.layer, width, height
    )
    return header + np.ascontiguousarray(request.rgba, np.uint8).tobytes()


def decode_request(data: bytes, size: tuple[int, int]) -> FrameRequest:
    """Parse an input frame; `size` is the model's (height, width)."""
    if len(data) < REQUEST_HEADER.size:
        raise DataError(
            f"frame of {len(data)} bytes is shorter than its "
            f"{REQUEST_HEADER.size}-byte header; send the header that "
            "probe.js writes, then RGBA pixels."
        )
    magic, seq, layer, width, height = REQUEST_HEADER.unpack_from(data)
    if magic != REQUEST_MAGIC:
        raise DataError(
            f"frame starts with {magic!r}, expected {REQUEST_MAGIC!r}; "
            "reload the probe page so that its script matches the server."
        )
    if (height, width) != tuple(size):
        raise DataError(
            f"frame is {width}x{height} pixels but the model takes "
            f"{size[1]}x{size[0]}; resize the input to the model's size."
        )
    expected = REQUEST_HEADER.size + width * height * RGBA
    if len(data) != expected:
        raise DataError(
            f"frame has {len(data)} bytes, expected {expected} (header and "
            f"{width}x{height} RGBA pixels)."
        )
    pixels = np.frombuffer(data, np.uint8, offset=REQUEST_HEADER.size)
    return FrameRequest(seq, layer, pixels.reshape(height, width, RGBA))


def encode_reply(seq: int, layer: int, frame: ProbeFrame) -> bytes:
    """The packed reply: header, unit maxima, classes, probabilities, tile."""
    rows, cols, map_h, map_w = _tile_shape(frame)
    header = REPLY_HEADER.pack(
        REPLY_MAGIC,
        seq,
        layer,
        frame.units,
        map_h,
        map_w,
        rows,
        cols,
        len(frame.classes),
        frame.low,
        frame.high,
    )
    return b"".join(
        (
            header,
            np.asarray(frame.unit_max, "<f4").tobytes(),
            np.asarray(frame.classes, "<u2").tobytes(),
            np.asarray(frame.probabilities, "<f4").tobytes(),
            np.ascontiguousarray(frame.tile, np.uint8).tobytes(),
        )
    )


def decode_reply(data: bytes) -> tuple[int, int, ProbeFrame]:
    """(seq, layer, frame) from a reply: for the bench, tests and tools."""
    fields = REPLY_HEADER.unpack_from(data)
    if fields[0] != REPLY_MAGIC:
        raise DataError(f"reply starts with {fields[0]!r}, not {REPLY_MAGIC!r}")
    _, seq, layer, units, map_h, map_w, rows, cols, k, low, high = fields
    offset = REPLY_HEADER.size
    unit_max = np.frombuffer(data, "<f4", units, offset)
    offset += 4 * units
    classes = np.frombuffer(data, "<u2", k, offset)
    offset += 2 * k
    probabilities = np.frombuffer(data, "<f4", k, offset)
    offset += 4 * k
    tile = np.frombuffer(data, np.uint8, rows * map_h * cols * map_w, offset)
    tile = tile.reshape(rows * map_h, cols * map_w)
    frame = ProbeFrame(tile, low, high, unit_max, classes, probabilities)
    return seq, layer, _with_shape(frame, rows, cols)


def _tile_shape(frame: ProbeFrame) -> tuple[int, int, int, int]:
    rows, cols = frame_grid(frame.units)
    height, width = frame.tile.shape
    return rows, cols, height // rows, width // cols


def _with_shape(frame: ProbeFrame, rows: int, cols: int) -> ProbeFrame:
    expected = frame_grid(frame.units)
    if expected != (rows, cols):
        raise DataError(f"reply grid {rows}x{cols} is not {expected}")
    return frame


def frame_grid(units: int) -> tuple[int, int]:
    """(rows, columns) of the tile for `units` maps: as square as it gets."""
    cols = max(1, int(np.ceil(np.sqrt(units))))
    rows = max(1, -(-units // cols))
    return rows, cols
