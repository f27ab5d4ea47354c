"""The static site: `render_site` turns an `AtlasRecord` into pages, images
and data files.

Nothing in this package imports TensorFlow or Keras; it reads only the
plain records in `atlas.records`.
"""

from __future__ import annotations

from atlas.site.render import render_site
from atlas.site.writer import SiteSummary

__all__ = ["SiteSummary", "render_site"]
