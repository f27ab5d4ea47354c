"""Shared setup of the live-probe tests (no tests here): a tiny project
built once per test run, its probe, and frames as the probe page sends them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from atlas.cli import main
from atlas.config import VisualizeSettings, load_settings
from atlas.live.app import Live, create_app
from atlas.live.guard import allowed_hosts
from atlas.live.protocol import FrameRequest, encode_request
from atlas.live.server import open_live
from tests.helpers import digits_like_model, random_digits

BASE_URL = "http://127.0.0.1:8000"
STEPS = "4"
LAYERS = ["c1", "c2", "fc", "probs"]
# The one built project and probe of a test run, shared by the live tests.
_SHARED: dict[str, object] = {}


def shared_project(tmp_path_factory) -> Path:
    """The config of the tiny project, built on the first call of a run."""
    if "config" not in _SHARED:
        with pytest.MonkeyPatch.context() as patch:
            root = tmp_path_factory.mktemp("live")
            _SHARED["config"] = build_project(root, patch)
    return _SHARED["config"]


def shared_live(tmp_path_factory) -> Live:
    """The probe of the shared project, opened (and warmed) once a run."""
    if "live" not in _SHARED:
        _SHARED["live"] = open_project(shared_project(tmp_path_factory))
    return _SHARED["live"]


def build_project(root: Path, monkeypatch) -> Path:
    """A tiny model, dataset and built atlas under `root`; the config path."""
    digits_like_model().save(root / "tiny.keras")
    np.savez_compressed(root / "data.npz", **random_digits())
    config = root / "site_config.toml"
    config.write_text(
        '[site]\ntitle = "Tiny"\n[model]\npath = "tiny.keras"\n'
        'input_range = [0.0, 1.0]\n[data]\npath = "data.npz"\n'
        f"[layers]\nnames = {LAYERS!r}\n".replace("'", '"')
        + '[visualize]\npreset = "yosinski-3"\nchunk = 8\n'
        + _one_preset()
        + "[mine]\ntop_k = 4\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ATLAS_MAX_STEPS", STEPS)
    code = main(["build", "--config", str(config)])
    if code != 0:
        raise RuntimeError(f"atlas build of the test project exited {code}")
    return config


def open_project(config: Path) -> Live:
    """The live probe of a built test project."""
    settings = load_settings(config)
    return open_live(settings, settings.output.dir)


def test_client(live: Live, extra_hosts=(), max_body: int | None = None):
    """A TestClient of the live app, as a browser on 127.0.0.1 would talk."""
    from starlette.testclient import TestClient

    options = {} if max_body is None else {"max_body": max_body}
    app = create_app(live, allowed_hosts(extra_hosts), **options)
    return TestClient(app, base_url=BASE_URL)


test_client.__test__ = False  # a factory, not a test


def gray_rgba(pixels: np.ndarray) -> np.ndarray:
    """(h, w, 1) uint8 gray pixels as the RGBA a browser canvas gives."""
    rgb = np.repeat(pixels, 3, axis=-1)
    alpha = np.full((*pixels.shape[:2], 1), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=-1)


def frame(pixels: np.ndarray, layer: int, seq: int = 1) -> bytes:
    """The bytes the probe page sends for gray `pixels` and layer index `layer`."""
    return encode_request(FrameRequest(seq, layer, gray_rgba(pixels)))


def _one_preset() -> str:
    """Only the main preset, where the config can say so: the live tests
    need a site, not the progression of presets."""
    fields = VisualizeSettings.__dataclass_fields__
    return "progression = []\n" if "progression" in fields else ""
