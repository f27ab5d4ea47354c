"""Starting the live server: the model loaded once from the config, the
dataset and the built site opened, uvicorn bound to loopback (another
address only when asked, with a warning)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn

from atlas.config import Settings
from atlas.data import Dataset, open_dataset
from atlas.errors import AtlasError, BuildError
from atlas.live.app import Live, create_app
from atlas.live.engine import Probe, find_head
from atlas.live.guard import allowed_hosts
from atlas.live.inputs import check_channels
from atlas.live.sitefiles import open_site
from atlas.live.stream import MAX_MESSAGE
from atlas.loading import infer_input_range, open_model
from atlas.model import describe_layers, input_spec, select_layers
from atlas.output import MARKER
from atlas.store import CACHE_DIR, Store

LOOPBACK = "127.0.0.1"
# Seconds a server started in a thread may take to listen.
START_TIMEOUT = 60.0

logger = logging.getLogger(__name__)


def open_live(settings: Settings, folder: Path | None) -> Live:
    """The model, dataset and site of `settings`, ready to serve."""
    model = open_model(settings.model, settings.root)
    input_range = settings.model.input_range or infer_input_range(model)
    shape = input_spec(model, settings.model.input_shape)
    check_channels(shape[2])
    infos = describe_layers(model)
    select_layers(infos, settings.layers.names)
    dataset = _dataset(settings, shape, input_range, _build_cache(folder))
    names = dataset.class_names if dataset is not None else None
    probe = Probe(
        model,
        infos,
        shape,
        input_range,
        atlas_layers=settings.layers.names,
        head=find_head(model, infos, names),
        eager=settings.visualize.eager,
    )
    return Live(
        probe,
        open_site(_site_folder(folder)),
        dataset=dataset,
        resize=settings.data.resize,
        title=settings.site.title,
    )


def serve_live(live: Live, port: int = 8000, host: str | None = None) -> None:
    """Serve `live` on `host` (loopback unless given) until interrupted."""
    bind = host or LOOPBACK
    if not _is_loopback(bind):
        logger.warning(
            "the live probe listens on %s: anyone who can reach this address "
            "can use it. The camera only works at http://127.0.0.1 or "
            "http://localhost, or over HTTPS.",
            bind,
        )
    sock = bind_socket(bind, port)
    shown = f"[{bind}]" if ":" in bind else bind
    address = f"http://{shown}:{sock.getsockname()[1]}/live/probe.html"
    server = uvicorn.Server(_config(live, host))
    logger.info("live probe at %s (Ctrl-C stops)", address)
    server.run(sockets=[sock])


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BuildError(
            f"cannot listen on {host}:{port}: {exc}; try --port with another "
            "number, or --host with an address of this machine."
        ) from exc
    sock.listen(128)
    return sock


@contextlib.contextmanager
def running(
    live: Live, host: str = LOOPBACK, extra: Sequence[str] = ()
) -> Iterator[str]:
    """Serve `live` in a thread on a free port; yields its base URL.

    For tests and the benchmark, which need the real HTTP and WebSocket
    path; `extra` names more Host values to accept, as --host does.
    """
    sock = bind_socket(host, 0)
    server = uvicorn.Server(_config(live, None, extra))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    _wait_started(server, thread)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()


def _config(live: Live, host: str | None, extra: Sequence[str] = ()) -> uvicorn.Config:
    hosts = allowed_hosts([*extra, *([host] if host else [])])
    return uvicorn.Config(
        create_app(live, hosts),
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        ws=_websocket_protocol(),
        ws_max_size=MAX_MESSAGE,
        ws_per_message_deflate=False,
        limit_concurrency=128,
        timeout_keep_alive=5,
        lifespan="on",
    )


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise BuildError("the live server did not start; run with -v for why.")
        time.sleep(0.02)


def _build_cache(folder: Path | None) -> Store | None:
    """The cache of the atlas built in `folder`, if one was: a compressed
    dataset is then read from the copy the build made, not unpacked again
    into a temporary folder."""
    if folder is None or not (Path(folder) / MARKER).is_file():
        return None
    return Store(Path(folder) / CACHE_DIR)


def _dataset(settings: Settings, shape, input_range, cache) -> Dataset | None:
    try:
        return open_dataset(
            settings.data.path,
            shape,
            input_range,
            settings.data.limit,
            settings.data.resize,
            cache=cache,
        )
    except AtlasError as exc:
        logger.warning("the probe runs without dataset images: %s", exc)
        return None


def _websocket_protocol() -> str:
    """The websockets library's current protocol in uvicorn, where it has it."""
    from uvicorn.config import WS_PROTOCOLS

    return "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"


def _site_folder(folder: Path | None) -> Path | None:
    if folder is None:
        return None
    if (Path(folder) / "index.html").is_file():
        return Path(folder)
    logger.warning(
        "no built site in '%s': the probe runs without links to unit pages; "
        "run `atlas build` first to have them.",
        folder,
    )
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
