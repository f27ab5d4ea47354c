"""Shared test setup: quiet TensorFlow, small tiny-model helpers."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
