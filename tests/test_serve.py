"""`atlas serve`: files of the site only, from 127.0.0.1, to this machine."""

from __future__ import annotations

import http.client
import threading
from pathlib import Path

import pytest

from atlas.errors import BuildError
from atlas.serve import make_server, serve
from tests.site_records import make_atlas, make_info, make_layer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from atlas.site import render_site

    site = tmp_path_factory.mktemp("served")
    render_site(
        make_atlas([make_layer(make_info("c1", 2), [0, 1])]), site, ROOT / "templates"
    )
    (site / ".neuron-atlas").write_text("marker")
    (site / ".atlas-cache").mkdir(exist_ok=True)
    (site / ".atlas-cache" / "secret.npz").write_bytes(b"cached")
    running = make_server(site, 0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running.server_address[1]
    running.shutdown()
    running.server_close()
    thread.join()


def get(port: int, path: str, host: str | None = None) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {} if host is None else {"Host": host}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type", ""), body


def test_serve_pages_scripts_and_images_with_their_types(server):
    assert get(server, "/index.html")[:2] == (200, "text/html; charset=utf-8")
    assert get(server, "/static/atlas.js")[1] == "text/javascript; charset=utf-8"
    assert get(server, "/search-index.js")[0] == 200
    assert get(server, "/img/c1/0000-top.png")[1] == "image/png"


def test_serve_root_answers_with_its_index(server):
    status, _, body = get(server, "/")
    assert status == 200 and body.startswith(b"<!DOCTYPE html>")


@pytest.mark.parametrize(
    "path",
    [
        "/.atlas-cache/secret.npz",
        "/%2Eatlas-cache/secret.npz",
        "/.neuron-atlas",
        "/static/../.neuron-atlas",
    ],
)
def test_serve_hides_cache_and_dotfiles(server, path):
    status, _, body = get(server, path)
    assert status == 404 and b"cached" not in body and b"marker" not in body


def test_serve_lists_no_folder(server):
    status, _, body = get(server, "/layers/")
    assert status == 404 and b"c1.html" not in body


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:8000", "[::1]:8000"])
def test_serve_answers_local_host_names(server, host):
    assert get(server, "/index.html", host)[0] == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", ""])
def test_serve_refuses_other_host_names(server, host):
    assert get(server, "/index.html", host)[0] == 403


def test_serve_binds_loopback(tmp_path):
    running = make_server(tmp_path, 0)
    try:
        assert running.server_address[0] == "127.0.0.1"
    finally:
        running.server_close()


def test_serve_without_built_site_names_the_fix(tmp_path):
    with pytest.raises(BuildError, match="run `atlas build` first"):
        serve(tmp_path, 0)
