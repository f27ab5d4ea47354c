"""The live probe's API on a tiny built project: activations, frames,
inputs, unit files, attribution and the links only the live server adds."""

from __future__ import annotations

import asyncio
import io
import json
import re

import keras
import numpy as np
import pytest
from PIL import Image

from atlas.attribute import Attributor, heatmap
from atlas.data_folder import fit_image
from atlas.live.app import TEMPLATES
from atlas.live.engine import Probe, find_head
from atlas.live.inputs import rgba_to_pixels
from atlas.live.protocol import decode_reply
from atlas.live.runner import Busy, Runner
from atlas.model import describe_layers
from atlas.records import Box
from tests.test_live_helpers import (
    frame,
    shared_live,
    shared_project,
    test_client,
)

WS_URL = "ws://127.0.0.1:8000/live/ws"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return shared_project(tmp_path_factory)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    return shared_live(tmp_path_factory)


@pytest.fixture(scope="module")
def client(live):
    with test_client(live) as client:
        yield client


@pytest.fixture(scope="module")
def images(project):
    return np.load(project.parent / "data.npz")["x"]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.squeeze(pixels)).save(buffer, "PNG")
    return buffer.getvalue()


def own_activations(live, name: str, pixels: np.ndarray) -> np.ndarray:
    model = live.probe.model
    reader = keras.Model(model.inputs[0], model.get_layer(name).output)
    scaled = pixels.astype(np.float32)[None] / 255.0
    return np.asarray(reader(scaled))[0]


@pytest.mark.parametrize("name", ["c1", "c2", "fc"])
def test_activations_equal_the_models_own(client, live, images, name):
    response = client.post(
        f"/live/api/activations?layer={name}", content=png(images[5])
    )

    assert response.status_code == 200
    values = np.load(io.BytesIO(response.content))
    expected = own_activations(live, name, images[5])
    assert values.shape == expected.shape
    np.testing.assert_allclose(values, expected, atol=1e-5)


def test_websocket_frame_matches_the_model(client, live, images):
    index = live.probe.index_of("c1")
    with client.websocket_connect(WS_URL) as socket:
        socket.send_bytes(frame(images[3], index, seq=7))
        seq, layer, reply = decode_reply(socket.receive_bytes())

    maps = own_activations(live, "c1", images[3])  # (12, 12, 4)
    assert (seq, layer) == (7, index)
    np.testing.assert_allclose(reply.unit_max, maps.max(axis=(0, 1)), atol=1e-5)
    low, high = min(0.0, maps.min()), maps.max()
    assert (reply.low, reply.high) == pytest.approx((low, high), abs=1e-5)
    levels = np.round((maps - low) / (high - low) * 255)
    rows, cols = 2, 2
    for unit in range(4):
        r, c = divmod(unit, cols)
        cell = reply.tile[r * 12 : (r + 1) * 12, c * 12 : (c + 1) * 12]
        assert np.abs(cell.astype(int) - levels[..., unit]).max() <= 1
    assert reply.tile.shape == (rows * 12, cols * 12)


def test_frame_lists_the_models_top_classes(client, live, images):
    index = live.probe.index_of("fc")
    response = client.post("/live/api/frame", content=frame(images[9], index))

    _, _, reply = decode_reply(response.content)
    probabilities = live.probe.model(images[9][None].astype(np.float32) / 255.0)
    probabilities = np.asarray(probabilities)[0]
    order = np.argsort(-probabilities)
    assert reply.classes.tolist() == order.tolist()
    np.testing.assert_allclose(reply.probabilities, probabilities[order], atol=1e-6)
    assert live.probe.head.kind == "softmax"
    assert live.probe.head.names == ("zero", "one", "two")


def test_upload_is_fitted_to_the_model_input(client):
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)

    response = client.post("/live/api/upload", content=png(photo))

    assert response.status_code == 200
    shown = np.asarray(Image.open(io.BytesIO(response.content)))
    expected = fit_image(Image.fromarray(photo).convert("L"), (12, 12, 1), "resize")
    np.testing.assert_array_equal(shown, expected[..., 0])


@pytest.mark.parametrize(
    "body", [b"", b"hello, not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 40]
)
def test_upload_of_a_non_image_is_refused_with_a_reason(client, body):
    response = client.post("/live/api/upload", content=body)

    assert response.status_code == 415
    message = response.json()["error"]
    assert "JPEG, PNG" in message or "cannot be decoded" in message


def test_dataset_image_is_the_datasets_own(client, images):
    response = client.get("/live/api/dataset/3")

    assert response.status_code == 200
    shown = np.asarray(Image.open(io.BytesIO(response.content)))
    np.testing.assert_array_equal(shown, images[3][..., 0])
    assert response.headers["x-atlas-label"] in ("zero", "one", "two")


def test_dataset_index_out_of_range_names_the_range(client, images):
    response = client.get(f"/live/api/dataset/{len(images)}")

    assert response.status_code == 400
    assert f"0 to {len(images) - 1}" in response.json()["error"]


def test_layer_and_unit_pages_link_the_probe_only_when_live(client, project):
    output = project.parent / "output"
    on_disk = (output / "layers" / "c1.html").read_text(encoding="utf-8")

    served = client.get("/layers/c1.html").text
    unit = client.get("/units/c1/0002.html")

    assert "live/probe.html" not in on_disk
    assert 'href="../live/probe.html?layer=c1"' in served
    assert unit.status_code == 200
    assert 'href="../../live/probe.html?layer=c1&amp;unit=2"' in unit.text
    assert not any("live/" in p.read_text() for p in output.rglob("*.html"))
    assert client.get("/live/probe.html").status_code == 200


def test_probe_page_scripts_load_deferred_in_order_and_are_served(client):
    page = client.get("/live/probe.html").text
    scripts = re.findall(r'<script src="static/([^"]+)" defer></script>', page)
    links = re.findall(r'(?:src|href)="(static/[^"]+)"', page)

    assert page.count("<script") == len(scripts)
    assert scripts == [
        "probe-frames.js",
        "probe-core.js",
        "probe-input.js",
        "probe-stream.js",
        "probe-view.js",
        "probe-unit.js",
        "probe.js",
    ]
    for link in links:
        served = client.get("/live/" + link)
        assert served.status_code == 200, link
        assert served.content == (TEMPLATES / link).read_bytes()


def test_unit_files_come_from_the_manifest_and_resolve(client):
    response = client.get("/live/api/units?layer=c2")

    units = response.json()["units"]
    assert [u["index"] for u in units] == list(range(6))
    for unit in units:
        assert client.get("/" + unit["page"]).status_code == 200
        assert unit["images"]
        for path in [*unit["images"].values(), unit["sheet"]]:
            assert client.get("/" + path).headers["content-type"] == "image/png"


def test_info_describes_model_layers_head_and_dataset(client):
    info = client.get("/live/api/info").json()

    names = [layer["name"] for layer in info["layers"]]
    assert names == ["c1", "p1", "c2", "flat", "fc", "probs"]
    in_atlas = [layer["name"] for layer in info["layers"] if layer["in_atlas"]]
    assert in_atlas == ["c1", "c2", "fc", "probs"]
    assert info["input"] == {"shape": [12, 12, 1], "range": [0.0, 1.0]}
    assert info["head"]["classes"] == 3
    assert info["dataset"] == {"count": 40}


@pytest.mark.parametrize("method", ["deconvnet", "guided", "gradient"])
def test_attribution_maps_the_unit_at_its_strongest_position(
    client, live, images, method
):
    info = live.probe.layer(live.probe.index_of("c2")).info
    maps = own_activations(live, "c2", images[4])
    unit = int(np.argmax(maps.max(axis=(0, 1))))  # active: a non-zero map
    strongest = np.unravel_index(np.argmax(maps[..., unit]), maps.shape[:2])
    scaled = images[4][None].astype(np.float32) / 255.0
    attributor = Attributor(live.probe.model, info, method)
    gradients = attributor(scaled, [unit], np.array([strongest]))[0]
    expected = heatmap(gradients, Box(0, 0, 12, 12))

    response = client.post(
        f"/live/api/attribution?unit={unit}&method={method}",
        content=frame(images[4], info_index(live, "c2")),
    )

    assert response.status_code == 200
    assert response.headers["x-atlas-position"] == "{},{}".format(*strongest)
    picture = np.asarray(Image.open(io.BytesIO(response.content)))
    np.testing.assert_array_equal(picture, expected)
    assert picture.max() == 255


def test_attribution_of_a_dense_unit_has_no_position(client, live, images):
    response = client.post(
        "/live/api/attribution?unit=1", content=frame(images[2], info_index(live, "fc"))
    )

    assert response.status_code == 200
    assert response.headers["x-atlas-position"] == ""
    assert np.asarray(Image.open(io.BytesIO(response.content))).shape == (12, 12)


def test_attribution_with_an_unknown_method_names_the_methods(client, live, images):
    response = client.post(
        "/live/api/attribution?unit=1&method=lrp",
        content=frame(images[2], info_index(live, "c1")),
    )

    assert response.status_code == 400
    assert "deconvnet, guided, gradient" in response.json()["error"]


def info_index(live, name: str) -> int:
    return live.probe.index_of(name)


def test_attribution_of_a_unit_out_of_range_is_refused(client, live, images):
    index = live.probe.index_of("fc")
    response = client.post(
        "/live/api/attribution?unit=5", content=frame(images[0], index)
    )

    assert response.status_code == 400
    assert "units 0 to 4" in response.json()["error"]


class CountingProbe:
    """Stands in for the model: records each batch it is given."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int]] = []

    def frames(self, layer: int, pixels: np.ndarray) -> list[int]:
        self.batches.append((layer, len(pixels)))
        return [int(p[0, 0, 0]) for p in pixels]


def run_frames(runner: Runner, requests: list[tuple[int, int]]) -> list:
    async def go():
        await runner.start()
        try:
            pixels = [np.full((2, 2, 1), v, np.uint8) for _, v in requests]
            return await asyncio.gather(
                *(
                    runner.frame(layer, p)
                    for (layer, _), p in zip(requests, pixels, strict=True)
                ),
                return_exceptions=True,
            )
        finally:
            await runner.stop()

    return asyncio.run(go())


def test_runner_batches_waiting_frames_by_layer():
    probe = CountingProbe()
    requests = [(0, 10), (1, 11), (0, 12), (0, 13), (1, 14)]

    results = run_frames(Runner(probe), requests)

    assert results == [10, 11, 12, 13, 14]
    assert sorted(probe.batches) == [(0, 3), (1, 2)]


def test_runner_answers_busy_past_its_queue():
    results = run_frames(
        Runner(CountingProbe(), max_queue=2), [(0, v) for v in range(4)]
    )

    assert results[:2] == [0, 1]
    assert all(isinstance(r, Busy) for r in results[2:])
    assert "2 requests waiting" in str(results[2])


def test_manifest_json_is_served_unchanged(client, project):
    served = client.get("/manifest.json").json()
    on_disk = json.loads((project.parent / "output" / "manifest.json").read_text())
    assert served == on_disk


def test_one_trace_per_layer_whatever_the_batch(live):
    index = live.probe.index_of("c2")
    rng = np.random.default_rng(3)
    for count in (1, 3, 2, 5):
        pixels = rng.integers(0, 256, (count, 12, 12, 1), dtype=np.uint8)
        assert len(live.probe.frames(index, pixels)) == count

    extractor = live.probe._extractors[index]
    assert extractor.experimental_get_tracing_count() == 1


def test_browser_pixels_turn_gray_as_pillow_does():
    rgba = np.random.default_rng(4).integers(0, 256, (16, 16, 4), dtype=np.uint8)

    gray = rgba_to_pixels(rgba, 1)

    expected = np.asarray(Image.fromarray(rgba[..., :3]).convert("L"))
    np.testing.assert_array_equal(gray[..., 0], expected)
    np.testing.assert_array_equal(rgba_to_pixels(rgba, 3), rgba[..., :3])


def test_only_a_dense_output_of_classes_is_a_classifier_head():
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    model = keras.Model(inputs, pooled)
    one_unit = keras.Model(inputs, keras.layers.Dense(1)(pooled))
    logits = keras.Model(inputs, keras.layers.Dense(3)(pooled))

    assert find_head(model, describe_layers(model)) is None
    assert find_head(one_unit, describe_layers(one_unit)) is None
    assert find_head(logits, describe_layers(logits)).kind == "softmax of logits"
    headless = Probe(model, describe_layers(model), (8, 8, 3), (0.0, 1.0))
    frame = headless.frames(0, np.zeros((1, 8, 8, 3), np.uint8))[0]
    assert frame.classes.shape == (0,)


def test_the_probe_reads_a_compressed_dataset_from_the_builds_copy(live, project):
    """No second decompression into a temporary folder that a stopped
    server would leave behind: the build's copy in its cache is read."""
    import tempfile
    from pathlib import Path

    before = set(Path(tempfile.gettempdir()).glob("neuron-atlas-arrays-*"))
    pixels = live.dataset.get([0, 1])
    assert pixels.shape[0] == 2
    assert set(Path(tempfile.gettempdir()).glob("neuron-atlas-arrays-*")) == before
    copies = list((project.parent / "output" / ".atlas-cache" / "arrays").glob("*.npy"))
    assert len(copies) == 1
