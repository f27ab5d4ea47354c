"""End-to-end: a tiny model built in code, through `atlas build`, to a site."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atlas.cli import main
from tests.helpers import broken_links, digits_like_model, random_digits
from tests.site_records import layer_units

STEPS = "12"
# The main preset, then the default progression of presets.
PROGRESSION = ("yosinski-3", "none", "l2", "yosinski-3-jitter", "fourier")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    digits_like_model().save(root / "tiny.keras")
    np.savez_compressed(root / "data.npz", **random_digits())
    (root / "about.md").write_text("A *tiny* model. <script>x()</script>\n")
    (root / "site_config.toml").write_text(
        '[site]\ntitle = "Tiny <atlas>"\nabout = "about.md"\n'
        '[model]\npath = "tiny.keras"\n'
        '[data]\npath = "data.npz"\nbatch_size = 16\n'
        '[layers]\nnames = ["c1", "c2", "fc", "probs"]\n'
        '[visualize]\npreset = "yosinski-3"\nchunk = 4\n'
        "[mine]\ntop_k = 5\n",
        encoding="utf-8",
    )
    return root


@pytest.fixture(scope="module")
def built(project):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATLAS_MAX_STEPS", STEPS)
        code = main(["build", "--config", str(project / "site_config.toml")])
    assert code == 0
    return project / "output"


def test_build_reads_compressed_data_from_one_copy_in_its_cache(project, built):
    (copy,) = (built / ".atlas-cache" / "arrays").iterdir()
    with np.load(project / "data.npz") as data:
        np.testing.assert_array_equal(np.load(copy), data["x"])


def test_build_writes_index_layer_and_unit_pages(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert [layer["name"] for layer in manifest["layers"]] == [
        "c1",
        "c2",
        "fc",
        "probs",
    ]
    counts = [len(layer_units(built, layer)) for layer in manifest["layers"]]
    assert counts == [4, 6, 5, 3]
    assert (built / "index.html").is_file()
    for layer in manifest["layers"]:
        for unit in layer_units(built, layer):
            assert (built / unit["page"]).is_file()
            assert set(unit["images"]) == set(PROGRESSION)
            for path in unit["images"].values():
                assert (built / path).is_file()
            assert len(unit["top_k"]) == 5


def test_build_manifest_records_mining_settings_and_classes(built):
    manifest = json.loads((built / "manifest.json").read_text())
    settings, data = manifest["settings"], manifest["data"]
    assert (settings["top_k"], settings["bins"]) == (5, 32)
    assert settings["heatmaps"] == ["deconvnet", "guided"]
    assert data == {
        "file": "data.npz",
        "kind": "array",
        "images": 40,
        "skipped": 0,
        "class_names": ["zero", "one", "two"],
    }


def test_build_every_link_and_image_resolves(built):
    assert broken_links(built) == []


def test_build_top_k_matches_the_model_on_the_data(built, project):
    import keras

    model = keras.saving.load_model(project / "tiny.keras")
    data = np.load(project / "data.npz")
    images = data["x"].astype(np.float32) / 255.0
    fc = keras.Model(model.inputs[0], model.get_layer("fc").output)
    activations = fc.predict(images, verbose=0)
    manifest = json.loads((built / "manifest.json").read_text())
    layer = next(lay for lay in manifest["layers"] if lay["name"] == "fc")
    for unit in layer_units(built, layer):
        column = activations[:, unit["index"]]
        order = np.lexsort((np.arange(len(column)), -column))[:5]
        assert [t["image"] for t in unit["top_k"]] == order.tolist()
        np.testing.assert_allclose(
            [t["value"] for t in unit["top_k"]], column[order], rtol=1e-5, atol=1e-6
        )
        names = ["zero", "one", "two"]
        assert [t["label"] for t in unit["top_k"]] == [
            names[data["y"][i]] for i in order
        ]


def test_build_escapes_user_text(built):
    index = (built / "index.html").read_text()
    assert "Tiny &lt;atlas&gt;" in index
    assert "<script>x()" not in index
    assert "&lt;script&gt;x()" in index


def test_build_reads_softmax_layer_as_logits(built, project):
    import keras

    model = keras.saving.load_model(project / "tiny.keras")
    images = np.load(project / "data.npz")["x"].astype(np.float32) / 255.0
    fc = keras.Model(model.inputs[0], model.get_layer("fc").output)
    dense = model.get_layer("probs")
    logits = fc.predict(images, verbose=0) @ dense.kernel.numpy() + dense.bias.numpy()
    manifest = json.loads((built / "manifest.json").read_text())
    probs = next(lay for lay in manifest["layers"] if lay["name"] == "probs")
    for unit in layer_units(built, probs):
        best = np.sort(logits[:, unit["index"]])[::-1][:5]
        values = [t["value"] for t in unit["top_k"]]
        np.testing.assert_allclose(values, best, rtol=1e-5, atol=1e-6)


def test_build_rerun_reuses_the_cache(project, built, monkeypatch):
    import atlas.compute as compute

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a cached result")

    monkeypatch.setattr(compute, "synthesize", fail)
    monkeypatch.setattr(compute, "mine", fail)
    monkeypatch.setenv("ATLAS_MAX_STEPS", STEPS)
    assert main(["build", "--config", str(project / "site_config.toml")]) == 0


def test_build_refuses_a_folder_it_did_not_write(project, tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    code = main(
        [
            "build",
            "--config",
            str(project / "site_config.toml"),
            "--output",
            str(foreign),
        ]
    )
    assert code == 2
    assert "did not write" in capsys.readouterr().err
    assert (foreign / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]


def test_build_bad_layer_name_suggests_and_exits_nonzero(project, tmp_path, capsys):
    config = tmp_path / "c.toml"
    text = (project / "site_config.toml").read_text()
    text = text.replace('"c1", "c2", "fc", "probs"', '"fcc"')
    text = text.replace('"tiny.keras"', f'"{project / "tiny.keras"}"')
    text = text.replace('"data.npz"', f'"{project / "data.npz"}"')
    text = text.replace('"about.md"', f'"{project / "about.md"}"')
    config.write_text(text)
    code = main(["build", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "'fcc'" in err and "did you mean 'fc'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "output").exists()


def test_quality_calls_a_negative_logit_alive_and_a_zero_relu_dead():
    from atlas.assemble import quality
    from atlas.records import Mining, Synthesis

    def mining(best, lowest):
        return Mining(
            values=np.array([[best]]),
            images=np.array([[0]]),
            positions=np.zeros((1, 1, 2), np.int64),
            mean=np.array([best]),
            max=np.array([best], np.float32),
            active_fraction=np.array([0.0]),
            count=3,
            bottom_values=np.array([[lowest]]),
        )

    def image(peak):
        one = np.array([peak], np.float32)
        return Synthesis(
            "none",
            np.array([0]),
            np.zeros((1, 2, 2, 1)),
            one,
            one,
            np.array([True]),
            one,
        )

    assert quality(mining(-45.2, -80.0), image(-0.4), 0)["dead"] is False
    assert quality(mining(0.0, 0.0), image(0.0), 0)["dead"] is True
    assert quality(mining(0.0, 0.0), image(0.7), 0)["dead"] is False


def test_build_canvas_too_small_stops_before_mining(tmp_path, capsys):
    """C03: visualize.size too small for conv, pool, conv is one clear
    error naming the key, the value and the smallest size, before the
    data is mined or the output written."""
    import keras

    inputs = keras.Input((None, None, 3))
    hidden = keras.layers.Conv2D(4, 3, name="c")(inputs)
    hidden = keras.layers.MaxPooling2D(2)(hidden)
    keras.Model(inputs, keras.layers.Conv2D(3, 3, name="c2")(hidden)).save(
        tmp_path / "m.keras"
    )
    np.save(tmp_path / "d.npy", np.zeros((4, 12, 12, 3), np.uint8))
    (tmp_path / "site_config.toml").write_text(
        '[model]\npath = "m.keras"\ninput_shape = [12, 12, 3]\n'
        '[data]\npath = "d.npy"\n[layers]\nnames = ["c", "c2"]\n'
        "[visualize]\nsize = [7, 7]\n"
    )
    code = main(["build", "--config", str(tmp_path / "site_config.toml")])
    err = capsys.readouterr().err
    assert code == 2
    assert "visualize.size = [7, 7] is too small for layers 'c', 'c2'" in err
    assert "at least [8, 8]" in err and "Traceback" not in err
    assert not (tmp_path / "output").exists()


def test_build_under_mixed_float16_writes_uint8_pngs_and_keeps_the_policy(
    tmp_path, monkeypatch
):
    """C09: under the mixed_float16 policy a build writes 8-bit PNGs of
    finite images, and the user's policy is the same afterwards, also
    when the run raises."""
    import keras
    from PIL import Image

    import atlas.compute

    monkeypatch.setenv("ATLAS_MAX_STEPS", "6")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = digits_like_model()
        assert model.get_layer("c1").compute_dtype == "float16"
        model.save(tmp_path / "tiny.keras")
        np.savez(tmp_path / "data.npz", **random_digits(count=16))
        config = tmp_path / "site_config.toml"
        config.write_text(
            '[model]\npath = "tiny.keras"\n[data]\npath = "data.npz"\n'
            '[layers]\nnames = ["c2", "fc"]\n'
            '[visualize]\npreset = "fourier"\nprogression = ["none"]\n'
            "[mine]\ntop_k = 2\n"
        )
        assert main(["build", "--config", str(config)]) == 0
        policy_after_build = keras.mixed_precision.global_policy().name

        def broken(*args, **kwargs):
            raise RuntimeError("a failure in the middle of the build")

        monkeypatch.setattr(atlas.compute, "synthesize", broken)
        failed = main(
            ["build", "--config", str(config), "--output", str(tmp_path / "o2")]
        )
        policy_after_failure = keras.mixed_precision.global_policy().name
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert policy_after_build == policy_after_failure == "mixed_float16"
    assert failed == 1

    output = tmp_path / "output"
    manifest = json.loads((output / "manifest.json").read_text())
    units = [
        unit for layer in manifest["layers"] for unit in layer_units(output, layer)
    ]
    assert len(units) == 6 + 5
    for unit in units:
        assert np.isfinite(unit["quality"]["final"])
        for path in [*unit["images"].values(), unit["sheets"]["top"]]:
            with Image.open(output / path) as image:
                pixels = np.asarray(image)
            assert image.format == "PNG" and pixels.dtype == np.uint8
            assert pixels.std() > 0  # not a blank (NaN-cast) image


def test_build_of_a_gray_model_writes_8_bit_grayscale_pngs(built):
    """C05: a 1-channel model's synthesized images, thumbnails and top-k
    sheets (the crops) are 8-bit grayscale, not RGB."""
    from PIL import Image

    manifest = json.loads((built / "manifest.json").read_text())
    files = set()
    for layer in manifest["layers"]:
        for unit in layer_units(built, layer):
            files.update(unit["images"].values())
            files.update(v for v in unit["thumbnails"].values() if v)
            # The context strip is colour by design: its outline is amber.
            sheets = {k: v for k, v in unit["sheets"].items() if k != "context"}
            files.update(v for v in sheets.values() if v)
    assert len(files) > 3 * 18 and any("top" in f for f in files)
    for path in sorted(files):
        with Image.open(built / path) as image:
            assert (path, image.format) == (path, "PNG")
            assert (path, image.mode) in ((path, "L"), (path, "LA"))


def test_build_shows_conv_top_k_in_context(built, project):
    """Conv layers get a context sheet per unit, linked from its page, its
    box's inside equal to the source image grown 8x; dense layers none."""
    from PIL import Image

    manifest = json.loads((built / "manifest.json").read_text())
    kinds = {layer["name"]: layer["kind"] for layer in manifest["layers"]}
    sheets = {layer["name"]: layer["context_sheet"] for layer in manifest["layers"]}
    cell = {"cell": [96, 96], "gap": 5}
    assert sheets == {"c1": cell, "c2": cell, "fc": None, "probs": None}
    with np.load(project / "data.npz") as data:
        x = data["x"]
    for layer in manifest["layers"]:
        for unit in layer_units(built, layer):
            path = unit["sheets"]["context"]
            if kinds[layer["name"]] == "dense":
                assert path is None
                continue
            assert path.endswith("-context.png")
            assert path.rsplit("/", 1)[1] in (built / unit["page"]).read_text()
            with Image.open(built / path) as image:
                pixels = np.asarray(image.convert("RGB"), np.int64)
            best = unit["top_k"][0]
            top, left, bottom, right = (min(max(v, 0), 12) * 8 for v in best["box"])
            grown = np.repeat(np.repeat(x[best["image"], ..., 0], 8, 0), 8, 1)
            inside = pixels[top + 1 : bottom - 1, left + 1 : right - 1, 0]
            np.testing.assert_array_equal(
                inside, grown[top + 1 : bottom - 1, left + 1 : right - 1]
            )
            dimmed = (grown.astype(np.int64) + 129) // 2
            outside = np.ones((96, 96), bool)
            outside[top:bottom, left:right] = False
            np.testing.assert_array_equal(pixels[:96, :96, 0][outside], dimmed[outside])
