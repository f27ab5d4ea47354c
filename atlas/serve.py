"""`atlas serve`: a local preview of a built site, on 127.0.0.1 only.

It serves the site as a static host would: files only, a folder's
`index.html` for the folder, no folder listings, and nothing whose path
has a part starting with "." (the build cache, the output marker). A
request whose Host header is not this machine gets 403, so that a page
elsewhere cannot read the preview through DNS rebinding (C23).
"""

from __future__ import annotations

import functools
import logging
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from atlas.errors import BuildError

LOOPBACK = "127.0.0.1"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
# Types the site uses, fixed here rather than read from the system's table.
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".xml": "application/xml",
    ".png": "image/png",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}

logger = logging.getLogger(__name__)


class SiteHandler(SimpleHTTPRequestHandler):
    """Serves the files of one site folder; logs requests at DEBUG only."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def send_head(self):
        if not _local_host(self.headers.get("Host")):
            self.send_error(403, "Only this machine may use the preview")
            return None
        if _hidden(self.path):
            self.send_error(404, "Not part of the published site")
            return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(404, "No folder listings; open index.html")
        return None

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        logger.debug("%s %s", self.address_string(), format % args)


def make_server(folder: Path, port: int = 8000) -> ThreadingHTTPServer:
    """A server for `folder` on 127.0.0.1:`port` (0 picks a free port)."""
    handler = functools.partial(SiteHandler, directory=str(folder))
    try:
        return ThreadingHTTPServer((LOOPBACK, port), handler)
    except OSError as exc:
        raise BuildError(
            f"cannot listen on {LOOPBACK}:{port}: {exc}; try --port with "
            f"another number."
        ) from exc


def serve(folder: Path, port: int = 8000) -> None:
    """Serve the built site in `folder` until interrupted."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise BuildError(
            f"no built site in '{folder}'; run `atlas build` first or pass "
            f"--output with the folder of a built atlas."
        )
    server = make_server(folder, port)
    address = f"http://{LOOPBACK}:{server.server_address[1]}/index.html"
    logger.info("serving %s at %s (Ctrl-C stops)", folder, address)
    with server:
        server.serve_forever()


def _local_host(header: str | None) -> bool:
    """True when the Host header names this machine, with any port."""
    if not header:
        return False
    host = header.strip().lower()
    if host.startswith("["):
        host = host[: host.find("]") + 1]
    else:
        host = host.rsplit(":", 1)[0]
    return host in LOCAL_HOSTS


def _hidden(path: str) -> bool:
    """True when a part of the request path starts with "."."""
    parts = unquote(urlsplit(path).path).replace("\\", "/").split("/")
    return any(part.startswith(".") for part in parts)
