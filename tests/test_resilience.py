"""Builds that are safe to repeat, interrupt and publish: determinism,
resuming after SIGKILL, hostile names, and failures that touch nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import atlas.compute as compute
from atlas.cli import main
from tests.helpers import broken_links, digits_like_model, random_digits

CACHE = ".atlas-cache"
# Keras refuses "/" in layer names; everything else here is allowed.
HOSTILE_LAYER = "<img src=x onerror=alert(1)> \"q\" & 'x' ..up ß"


def _project(root: Path, layers: str, steps_chunk: int = 4) -> Path:
    digits_like_model().save(root / "tiny.keras")
    np.savez_compressed(root / "data.npz", **random_digits())
    config = root / "site_config.toml"
    config.write_text(
        '[model]\npath = "tiny.keras"\n'
        '[data]\npath = "data.npz"\nbatch_size = 16\n'
        f"[layers]\nnames = {layers}\n"
        f'[visualize]\npreset = "yosinski-3"\nchunk = {steps_chunk}\n'
        "progression = []\n"
        "[mine]\ntop_k = 3\n",
        encoding="utf-8",
    )
    return config


def _tree(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every published file."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(
            path.read_bytes()
        ).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and CACHE not in path.parts
    }


def test_two_builds_with_one_seed_are_byte_identical(tmp_path, monkeypatch):
    config = _project(tmp_path, '["c1", "fc"]')
    monkeypatch.setenv("ATLAS_MAX_STEPS", "8")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert (
        main(["build", "--config", str(config), "--output", str(tmp_path / "a")]) == 0
    )
    assert (
        main(["build", "--config", str(config), "--output", str(tmp_path / "b")]) == 0
    )
    first, second = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert first == second and len(first) > 10
    index = (tmp_path / "a" / "index.html").read_text(encoding="utf-8")
    assert "2023-11-14" in index  # SOURCE_DATE_EPOCH, not today


def test_top_k_does_not_depend_on_the_seed_but_the_images_do(tmp_path, monkeypatch):
    """C14: builds with visualize.seed 0 and 1 mine the same top-k lists
    (values, images, boxes) and synthesize different images."""
    import json

    from tests.site_records import site_units

    config = _project(tmp_path, '["c1", "fc"]')
    monkeypatch.setenv("ATLAS_MAX_STEPS", "8")
    sites = {}
    for seed in (0, 1):
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("chunk = 4\n", f"chunk = 4\nseed = {seed}\n"))
        out = tmp_path / f"seed{seed}"
        assert main(["build", "--config", str(config), "--output", str(out)]) == 0
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["settings"]["seed"] == seed
        sites[seed] = (out, site_units(out))
        config.write_text(text, encoding="utf-8")
    (first, units0), (second, units1) = sites[0], sites[1]
    assert len(units0) == len(units1) == 9
    for (_, unit0), (_, unit1) in zip(units0, units1, strict=True):
        assert unit0["top_k"] == unit1["top_k"] and len(unit0["top_k"]) == 3
        image0 = np.asarray(Image.open(first / unit0["images"]["yosinski-3"]))
        image1 = np.asarray(Image.open(second / unit1["images"]["yosinski-3"]))
        assert not np.array_equal(image0, image1)


def test_killed_build_resumes_recomputing_at_most_the_chunk_in_flight(
    tmp_path, monkeypatch
):
    config = _project(tmp_path, '["c1", "c2", "fc", "probs"]', steps_chunk=2)
    env = {**os.environ, "ATLAS_MAX_STEPS": "400", "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "-m", "atlas", "build", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    entries = tmp_path / "output" / CACHE / "synthesis"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if entries.is_dir() and len(list(entries.glob("*.npz"))) >= 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(list(entries.glob("*.npz")))
    assert 2 <= done < 10, "the build should be killed in the middle"

    calls = []
    real = compute.synthesize

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(compute, "synthesize", counting)
    monkeypatch.setenv("ATLAS_MAX_STEPS", "400")
    assert main(["build", "--config", str(config)]) == 0
    assert len(calls) == 10 - done  # 2 + 3 + 3 + 2 chunks in all
    assert broken_links(tmp_path / "output") == []


def test_a_failed_build_leaves_the_published_site_untouched(tmp_path, monkeypatch):
    config = _project(tmp_path, '["c1"]')
    monkeypatch.setenv("ATLAS_MAX_STEPS", "4")
    assert main(["build", "--config", str(config)]) == 0
    before = _tree(tmp_path / "output")
    text = config.read_text(encoding="utf-8")
    for bad in (
        text.replace('names = ["c1"]', 'names = ["c9"]'),
        text.replace('"data.npz"', '"missing.npz"'),
        text.replace('"tiny.keras"', '"data.npz"'),
    ):
        config.write_text(bad, encoding="utf-8")
        assert main(["build", "--config", str(config)]) == 2
        assert _tree(tmp_path / "output") == before


def _hostile_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(3, 3, activation="relu", name=HOSTILE_LAYER)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(x))


def test_hostile_layer_and_class_names_stay_inside_and_escaped(tmp_path, monkeypatch):
    _hostile_model().save(tmp_path / "m.keras")
    classes = ["<b>bold</b>", 'it\'s "q"', "..evil"]
    rng = np.random.default_rng(0)
    for i, name in enumerate(classes * 3):
        folder = tmp_path / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    config = tmp_path / "site_config.toml"
    config.write_text(
        '[model]\npath = "m.keras"\n[data]\npath = "data"\n'
        f'[layers]\nnames = [{_toml_string(HOSTILE_LAYER)}, "out"]\n'
        "[visualize]\nprogression = []\n"
        "[mine]\ntop_k = 3\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ATLAS_MAX_STEPS", "4")
    assert main(["build", "--config", str(config)]) == 0
    output = (tmp_path / "output").resolve()
    for path in output.rglob("*"):
        assert path.resolve().is_relative_to(output)
        assert ".." not in path.relative_to(output).parts
    pages = list(output.rglob("*.html"))
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "<img src=x" not in html and "<b>bold" not in html
    text = "".join(p.read_text(encoding="utf-8") for p in pages)
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text
    assert broken_links(output) == []


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@pytest.fixture(autouse=True)
def _quiet_tf(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")


def test_links_planted_in_the_output_lead_nowhere_outside(tmp_path, monkeypatch):
    """A symbolic link in the output (the marker, the cache, a page folder)
    never makes the build write or delete outside it."""
    config = _project(tmp_path, '["c1"]')
    monkeypatch.setenv("ATLAS_MAX_STEPS", "4")
    assert main(["build", "--config", str(config)]) == 0
    output = tmp_path / "output"
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("keep", encoding="utf-8")

    marker = output / ".neuron-atlas"
    marker.unlink()
    marker.symlink_to(victim)
    assert main(["build", "--config", str(config)]) == 0
    assert victim.read_text(encoding="utf-8") == "keep"
    assert marker.is_file() and not marker.is_symlink()

    folders = [p for p in sorted(output.iterdir()) if p.is_dir()]
    folder = next(p for p in folders if not p.name.startswith("."))
    copy = outside / folder.name
    folder.rename(copy)
    folder.symlink_to(copy, target_is_directory=True)
    before = _tree(outside)
    assert main(["build", "--config", str(config)]) == 2
    assert _tree(outside) == before
    folder.unlink()
    copy.rename(folder)

    cache = output / CACHE
    cache.rename(outside / "cache")
    cache.symlink_to(outside / "elsewhere", target_is_directory=True)
    (outside / "elsewhere").mkdir()
    assert main(["build", "--config", str(config)]) == 2
    assert list((outside / "elsewhere").rglob("*")) == []


def test_a_template_change_re_renders_without_recomputing(tmp_path, monkeypatch):
    import shutil

    from atlas.pipeline import TEMPLATES

    config = _project(tmp_path, '["c1", "fc"]')
    monkeypatch.setenv("ATLAS_MAX_STEPS", "4")
    assert main(["build", "--config", str(config)]) == 0
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    unit = templates / "unit.html"
    unit.write_text(
        unit.read_text(encoding="utf-8").replace(
            "{% block main %}", "{% block main %}<p>Edited template</p>", 1
        ),
        encoding="utf-8",
    )
    config.write_text(
        '[site]\ntemplates = "templates"\n' + config.read_text(encoding="utf-8"),
        encoding="utf-8",
    )

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a cached result")

    for stage in ("synthesize", "mine", "pixel_statistics"):
        monkeypatch.setattr(compute, stage, fail)
    assert main(["build", "--config", str(config)]) == 0
    pages = sorted((tmp_path / "output").rglob("*.html"))
    edited = [p for p in pages if "<p>Edited template</p>" in p.read_text("utf-8")]
    assert len(edited) == 4 + 5  # every unit page of c1 and fc, and only those
