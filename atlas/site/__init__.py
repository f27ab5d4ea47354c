"""The static site: `render_site` turns an `AtlasRecord` into HTML and PNGs.

Nothing in this package imports TensorFlow or Keras; it reads only the
plain records in `atlas.records`.
"""

from __future__ import annotations

from atlas.site.manifest import SiteSummary
from atlas.site.render import render_site

__all__ = ["SiteSummary", "render_site"]
