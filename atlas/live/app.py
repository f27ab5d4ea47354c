"""The live server's ASGI app: the probe page and its API under /live/, the
built site everywhere else (with probe links on layer and unit pages), all
behind the Host/Origin/size guard."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from atlas.errors import AtlasError
from atlas.live.api import PLAIN, Live, add_api_routes
from atlas.live.guard import Guard, allowed_hosts
from atlas.live.inputs import InputError
from atlas.live.runner import Busy, Runner
from atlas.live.sitefiles import SiteFiles, with_probe_link
from atlas.live.stream import stream

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# The probe's own files, served from templates/static/ under /live/static/.
PROBE_STATIC = frozenset(
    {
        "probe-frames.js",
        "probe-core.js",
        "probe-input.js",
        "probe-stream.js",
        "probe-view.js",
        "probe-unit.js",
        "probe.js",
        "probe.css",
        "style.css",
        "favicon.svg",
    }
)
# An upload may be a large photo; frames and other bodies are far smaller.
MAX_BODY = 20 * 1024 * 1024
# The probe page's policy: as strict as the site's, plus the camera, the
# images the page makes (blob:) and the probe's own API and WebSocket.
PROBE_POLICY = (
    "default-src 'none'; img-src 'self' blob:; media-src 'self' blob: "
    "mediastream:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".xml": "application/xml",
}

logger = logging.getLogger(__name__)

__all__ = ["Live", "create_app"]


def create_app(
    live: Live, hosts: frozenset[str] | None = None, max_body: int = MAX_BODY
) -> Guard:
    """The ASGI app of `live`, guarded; `hosts` defaults to loopback names."""
    runner = Runner(live.probe)
    app = FastAPI(
        title="Neuron Atlas live probe",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=_lifespan(live, runner),
    )
    _add_errors(app)
    _add_probe_page(app, _probe_page(live))
    add_api_routes(app, live, runner)

    async def socket(websocket: WebSocket) -> None:
        await stream(websocket, live.probe, runner)

    app.add_api_websocket_route("/live/ws", socket)
    _add_site(app, live.site)
    return Guard(app, hosts or allowed_hosts(), max_body)


def _lifespan(live: Live, runner: Runner):
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await runner.start()
        warm = [layer.index for layer in live.probe.layers if layer.in_atlas]
        await runner.run_now(lambda: live.probe.warm(warm))
        logger.info("live probe ready: %d layer(s) compiled", len(warm))
        yield
        await runner.stop()

    return lifespan


def _add_errors(app: FastAPI) -> None:
    async def failed(request: Request, exc: AtlasError) -> JSONResponse:
        status = 400
        if isinstance(exc, Busy):
            status = 503
        elif isinstance(exc, InputError) and request.url.path.endswith("upload"):
            status = 415
        return JSONResponse({"error": str(exc)}, status, headers=PLAIN)

    app.add_exception_handler(AtlasError, failed)


def _add_probe_page(app: FastAPI, page: str) -> None:
    @app.get("/live/probe.html")
    async def probe_page() -> HTMLResponse:
        headers = {**PLAIN, "Content-Security-Policy": PROBE_POLICY}
        return HTMLResponse(page, headers=headers)

    @app.get("/live/static/{name}")
    async def probe_static(name: str) -> Response:
        path = TEMPLATES / "static" / name
        if name not in PROBE_STATIC or not path.is_file():
            return _not_found(f"live/static/{name}")
        return FileResponse(path, media_type=TYPES[path.suffix], headers=PLAIN)


def _add_site(app: FastAPI, site: SiteFiles) -> None:
    @app.api_route("/{path:path}", methods=["GET", "HEAD"])
    async def site_file(path: str) -> Response:
        if path == "" and site.root is None:
            return Response(status_code=307, headers={"Location": "/live/probe.html"})
        file = site.resolve(path)
        if file is None:
            return _not_found(path)
        link = site.probe_link(file.relative_to(site.root).as_posix())
        if link is not None:
            html = with_probe_link(file.read_text(encoding="utf-8"), link)
            return HTMLResponse(html, headers=PLAIN)
        media = TYPES.get(file.suffix, "application/octet-stream")
        return FileResponse(file, media_type=media, headers=PLAIN)


def _probe_page(live: Live) -> str:
    environment = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
    )
    return environment.get_template("probe.html").render(
        title=live.title, has_site=live.site.root is not None
    )


def _not_found(path: str) -> JSONResponse:
    return JSONResponse(
        {"error": f"/{path} is not part of the site or the probe"},
        404,
        headers=PLAIN,
    )
