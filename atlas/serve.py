"""`atlas serve`: a local preview of a built site, on 127.0.0.1 only."""

from __future__ import annotations

import functools
import logging
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from atlas.errors import BuildError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves files from the site folder; logs requests at DEBUG only."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        logger.debug("%s %s", self.address_string(), format % args)


def serve(folder: Path, port: int = 8000) -> None:
    """Serve `folder` until interrupted."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise BuildError(
            f"no built site in '{folder}'; run `atlas build` first or pass "
            f"--output with the folder of a built atlas."
        )
    handler = functools.partial(_QuietHandler, directory=str(folder))
    try:
        server = ThreadingHTTPServer((LOOPBACK, port), handler)
    except OSError as exc:
        raise BuildError(
            f"cannot listen on {LOOPBACK}:{port}: {exc}; try --port with "
            f"another number."
        ) from exc
    print(f"serving {folder} at http://{LOOPBACK}:{port}/index.html (Ctrl-C stops)")
    with server:
        server.serve_forever()
