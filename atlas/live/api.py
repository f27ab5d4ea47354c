"""The probe's HTTP API under /live/api/: what the model offers, inputs
(uploads, dataset images), activations, packed frames and unit maps.

Every model call goes through the runner's one model thread; decoding and
encoding images run in the thread pool, so the event loop stays free.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass, field

import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from atlas.data import Dataset
from atlas.errors import ModelError
from atlas.live.attribution import METHODS, UnitMaps
from atlas.live.engine import Probe
from atlas.live.inputs import InputError, decode_upload, png_bytes, rgba_to_pixels
from atlas.live.protocol import decode_request, encode_reply
from atlas.live.runner import Runner
from atlas.live.sitefiles import SiteFiles

# Sent with every answer: no type sniffing, nothing cached.
PLAIN = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
BINARY = "application/octet-stream"

logger = logging.getLogger(__name__)


@dataclass
class Live:
    """Everything the routes share: the warm probe, the site, the inputs."""

    probe: Probe
    site: SiteFiles
    dataset: Dataset | None = None
    resize: str = "resize"
    title: str = "Neuron Atlas"
    _dataset_lock: threading.Lock = field(
        init=False, repr=False, default_factory=threading.Lock
    )

    def dataset_pixels(self, index: int) -> np.ndarray:
        """Dataset image `index` as uint8 pixels of the model's input."""
        if self.dataset is None:
            raise InputError(
                "the probe has no dataset: data.path could not be opened at "
                "start-up (see the server log); use the webcam or an upload."
            )
        if not 0 <= index < len(self.dataset):
            raise InputError(
                f"dataset image {index} does not exist; the dataset has "
                f"images 0 to {len(self.dataset) - 1}."
            )
        with self._dataset_lock:
            images = self.dataset.get([index])
        return self.dataset.to_uint8(images)[0]


def add_api_routes(app: FastAPI, live: Live, runner: Runner) -> None:
    """The /live/api/ routes of `live`, answered through `runner`."""
    _add_description(app, live)
    _add_inputs(app, live)
    _add_model_calls(app, live, runner)


def _add_description(app: FastAPI, live: Live) -> None:
    @app.get("/live/api/info")
    async def info() -> JSONResponse:
        return JSONResponse(describe(live), headers=PLAIN)

    @app.get("/live/api/units")
    async def units(layer: str) -> JSONResponse:
        live.probe.index_of(layer)
        listed = live.site.units.get(layer, [])
        body = {"layer": layer, "units": [vars(unit) for unit in listed]}
        return JSONResponse(body, headers=PLAIN)


def _add_inputs(app: FastAPI, live: Live) -> None:
    @app.get("/live/api/dataset/{index}")
    async def dataset_image(index: int) -> Response:
        pixels = await run_in_threadpool(live.dataset_pixels, index)
        label = live.dataset.labels[index] if live.dataset else None
        headers = {**PLAIN, "X-Atlas-Label": _ascii(label)}
        return Response(png_bytes(pixels), media_type="image/png", headers=headers)

    @app.post("/live/api/upload")
    async def upload(request: Request) -> Response:
        data = await request.body()
        shape = live.probe.shape
        pixels = await run_in_threadpool(decode_upload, data, shape, live.resize)
        return Response(png_bytes(pixels), media_type="image/png", headers=PLAIN)


def _add_model_calls(app: FastAPI, live: Live, runner: Runner) -> None:
    probe = live.probe
    maps = UnitMaps(probe.model)

    @app.post("/live/api/activations")
    async def activations(request: Request, layer: str) -> Response:
        index = probe.index_of(layer)
        data = await request.body()
        pixels = await run_in_threadpool(decode_upload, data, probe.shape, "resize")
        values = await runner.call(lambda: probe.activations(index, pixels[None])[0])
        buffer = io.BytesIO()
        np.save(buffer, values.astype("<f4"))
        return Response(buffer.getvalue(), media_type=BINARY, headers=PLAIN)

    @app.post("/live/api/frame")
    async def frame(request: Request) -> Response:
        asked = decode_request(await request.body(), probe.shape[:2])
        probe.layer(asked.layer)
        pixels = rgba_to_pixels(asked.rgba, probe.shape[2])
        result = await runner.frame(asked.layer, pixels)
        body = encode_reply(asked.seq, asked.layer, result)
        return Response(body, media_type=BINARY, headers=PLAIN)

    @app.post("/live/api/attribution")
    async def attribution(
        request: Request, unit: int, method: str = METHODS[0]
    ) -> Response:
        asked = decode_request(await request.body(), probe.shape[:2])
        pixels = rgba_to_pixels(asked.rgba, probe.shape[2])
        work = _attribution(probe, maps, asked.layer, unit, method, pixels)
        picture, position = await runner.call(work)
        headers = {**PLAIN, "X-Atlas-Position": position}
        return Response(png_bytes(picture), media_type="image/png", headers=headers)


def _attribution(probe: Probe, maps: UnitMaps, layer: int, unit: int, method, pixels):
    """The model-thread work of one unit map: find where the unit is
    strongest on the input, then trace it back to the pixels."""
    info = probe.layer(layer).info
    if not 0 <= unit < info.units:
        raise ModelError(
            f"unit {unit} does not exist; layer {info.name!r} has units 0 to "
            f"{info.units - 1}."
        )

    def work() -> tuple[np.ndarray, str]:
        values = probe.activations(layer, pixels[None])[0]
        position = None
        if values.ndim == 3:
            flat = int(np.argmax(values[..., unit]))
            row, col = np.unravel_index(flat, values.shape[:2])
            position = (int(row), int(col))
        picture = maps.map(info, unit, position, probe.scale(pixels), method)
        shown = "" if position is None else f"{position[0]},{position[1]}"
        return picture, shown

    return work


def describe(live: Live) -> dict[str, object]:
    """What /live/api/info answers: the model, its layers, head and inputs."""
    probe, head = live.probe, live.probe.head
    pages = {name: page for page, (name, u) in live.site.pages.items() if u is None}
    return {
        "title": live.title,
        "model": probe.model.name,
        "input": {"shape": list(probe.shape), "range": list(probe.input_range)},
        "layers": [
            {
                "index": layer.index,
                "name": layer.info.name,
                "class_name": layer.info.class_name,
                "kind": layer.info.kind,
                "units": layer.info.units,
                "grid": list(layer.grid),
                "uses_logits": layer.info.uses_logits,
                "in_atlas": layer.in_atlas,
                "page": pages.get(layer.info.name),
            }
            for layer in probe.layers
        ],
        "head": None
        if head is None
        else {"classes": head.classes, "kind": head.kind, "names": head.names},
        "dataset": None if live.dataset is None else {"count": len(live.dataset)},
        "site": live.site.root is not None,
        "methods": list(METHODS),
    }


def _ascii(text: str | None) -> str:
    return "" if text is None else text.encode("ascii", "replace").decode()
