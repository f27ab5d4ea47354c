"""Slugs of user-supplied names: safe, unique, stable (property-based)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from atlas.site.slug import MAX_LENGTH, slugify, unique_slugs

SAFE = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
HOSTILE = ["../x", "<script>", 'a"b', "con", "ß∂ƒ", " ", "..", "a/b", "A", "a"]

names = st.text(min_size=0, max_size=80) | st.sampled_from(HOSTILE)


@given(names)
def test_slugify_is_a_safe_file_name(name):
    slug = slugify(name)
    assert SAFE.match(slug), slug
    assert len(slug) <= MAX_LENGTH
    assert slug not in {"con", "prn", "aux", "nul"}
    assert slugify(name) == slug


@given(st.lists(names, max_size=12))
def test_unique_slugs_are_distinct_and_order_free(items):
    slugs = unique_slugs(items)
    distinct = set(items)
    assert set(slugs) == distinct
    assert len(set(slugs.values())) == len(distinct)
    assert unique_slugs(list(reversed(items))) == slugs


@given(st.lists(names, max_size=8), st.sets(st.sampled_from(["topk", "index"])))
def test_unique_slugs_avoid_reserved_names(items, reserved):
    assert not set(unique_slugs(items, reserved=reserved).values()) & reserved


def test_safe_names_are_kept_as_they_are():
    assert unique_slugs(["conv1", "block_6_expand_relu"]) == {
        "conv1": "conv1",
        "block_6_expand_relu": "block_6_expand_relu",
    }
