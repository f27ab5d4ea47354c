"""The build cache and the output folder's ownership rules."""

from __future__ import annotations

import numpy as np
import pytest

from atlas.errors import BuildError
from atlas.output import MARKER, claim_output, site_size
from atlas.store import Store, cache_key


def test_cache_key_is_stable_and_order_free():
    assert cache_key(a=1, b=[2, 3]) == cache_key(b=[2, 3], a=1)
    assert cache_key(a=1) != cache_key(a=2)


def test_store_round_trips_and_leaves_no_temporary_files(tmp_path):
    store = Store(tmp_path)
    assert store.load("kind", "k") is None
    store.save("kind", "k", {"x": np.arange(3), "y": np.float32(2.5)})
    entry = store.load("kind", "k")
    assert entry["x"].tolist() == [0, 1, 2] and float(entry["y"]) == 2.5
    assert [p.name for p in (tmp_path / "kind").iterdir()] == ["k.npz"]


def test_store_ignores_a_truncated_entry(tmp_path):
    store = Store(tmp_path)
    store.path("kind", "k").parent.mkdir(parents=True)
    store.path("kind", "k").write_bytes(b"PK\x03\x04 truncated")
    assert store.load("kind", "k") is None


def test_claim_output_creates_marks_and_reuses(tmp_path):
    folder = claim_output(tmp_path / "site")
    assert (folder / MARKER).is_file()
    (folder / "index.html").write_text("x")
    assert claim_output(folder) == folder


def test_claim_output_refuses_foreign_folders_and_links(tmp_path):
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("keep")
    with pytest.raises(BuildError, match="did not write"):
        claim_output(foreign)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(BuildError, match="symbolic link"):
        claim_output(link)
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]


def test_site_size_counts_what_os_walk_sees_except_cache(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.html").write_bytes(b"12345")
    (tmp_path / "b.css").write_bytes(b"12")
    (tmp_path / ".atlas-cache").mkdir()
    (tmp_path / ".atlas-cache" / "big.npz").write_bytes(b"0" * 100)
    (tmp_path / MARKER).write_text("m")
    assert site_size(tmp_path, skip=(".atlas-cache",)) == (2, 7)


def test_pruning_follows_no_link_out_of_the_output(tmp_path):
    from atlas.site.writer import SiteWriter

    root, outside = tmp_path / "site", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "old.html").write_text("theirs", encoding="utf-8")
    writer = SiteWriter(root)
    writer.write("pages/old.html", b"ours")
    writer.prune()
    (root / "pages" / "old.html").unlink()
    (root / "pages").rmdir()
    (root / "pages").symlink_to(outside, target_is_directory=True)
    again = SiteWriter(root)
    again.write("index.html", b"new")
    again.prune()
    assert (outside / "old.html").read_text(encoding="utf-8") == "theirs"


def test_the_store_writes_nothing_through_a_link(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / ".atlas-cache").symlink_to(tmp_path / "elsewhere")
    store = Store(tmp_path / "out" / ".atlas-cache")
    with pytest.raises(BuildError, match="symbolic link"):
        store.save("mining", "k", {"a": np.zeros(2)})
    with pytest.raises(BuildError, match="symbolic link"):
        store.folder("arrays")
    assert list((tmp_path / "elsewhere").iterdir()) == []
