"""Who may reach the live server and what it refuses (C23): Host and
Origin checks, size limits, hidden files, malformed frames; on the test
client and on a real socket."""

from __future__ import annotations

import http.client
import json
import os

import numpy as np
import pytest
from starlette.websockets import WebSocketDisconnect

from atlas.live.protocol import REQUEST_HEADER, decode_reply
from atlas.live.server import running
from atlas.live.stream import MAX_MESSAGE
from tests.test_live_helpers import frame, shared_live, shared_project, test_client

PIXELS = np.arange(144, dtype=np.uint8).reshape(12, 12, 1)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    config = shared_project(tmp_path_factory)
    output = config.parent / "output"
    secret = config.parent / "secret.txt"
    secret.write_text("outside the site")
    link = output / "static" / "linked.txt"
    if not link.is_symlink():
        os.symlink(secret, link)
    return config


@pytest.fixture(scope="module")
def live(project, tmp_path_factory):
    return shared_live(tmp_path_factory)


@pytest.fixture(scope="module")
def client(live):
    with test_client(live, extra_hosts=["192.0.2.7"]) as client:
        yield client


def ws_url(host: str = "127.0.0.1:8000") -> str:
    return f"ws://{host}/live/ws"


@pytest.mark.parametrize("path", ["/index.html", "/live/probe.html", "/live/api/info"])
@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example:8000", ""])
def test_foreign_host_gets_403(client, path, host):
    response = client.get(path, headers={"Host": host})

    assert response.status_code == 403
    assert "not this machine" in response.json()["error"]


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST", "192.0.2.7:80"],
)
def test_loopback_names_and_the_explicit_host_are_served(client, host):
    assert client.get("/index.html", headers={"Host": host}).status_code == 200


def test_websocket_with_a_foreign_host_is_refused(client):
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect(ws_url("evil.example:8000")):
            pass
    assert refused.value.code == 1008


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://127.0.0.1:9999", "null", "https://127.0.0.1:8000"],
)
def test_websocket_from_a_foreign_origin_is_refused(client, origin):
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect(ws_url(), headers={"Origin": origin}):
            pass
    assert refused.value.code == 1008


def test_websocket_from_the_servers_own_origin_is_served(client, live):
    headers = {"Origin": "http://127.0.0.1:8000"}
    with client.websocket_connect(ws_url(), headers=headers) as socket:
        socket.send_bytes(frame(PIXELS, 0, seq=3))
        seq, _, _ = decode_reply(socket.receive_bytes())
    assert seq == 3


def test_upload_from_a_foreign_origin_is_refused(client):
    response = client.post(
        "/live/api/upload", content=b"x", headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/.atlas-cache/",
        "/.neuron-atlas",
        "/%2e%2e/secret.txt",
        "/static/%2e%2e/%2e%2e/secret.txt",
        "/static/linked.txt",
        "/static/..%5c..%5csecret.txt",
        "/live/static/../../pyproject.toml",
        "/live/static/atlas.js",
        "/layers/",
    ],
)
def test_nothing_outside_the_site_or_hidden_is_served(client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert b"outside the site" not in response.content


def test_hidden_files_exist_but_stay_hidden(project):
    output = project.parent / "output"
    assert (output / ".atlas-cache").is_dir()
    assert (output / "static" / "linked.txt").read_text() == "outside the site"


def test_oversized_bodies_get_413(live):
    with test_client(live, max_body=1000) as small:
        declared = small.post("/live/api/upload", content=b"x" * 1001)
        streamed = small.post("/live/api/upload", content=iter([b"x" * 600] * 2))
        fine = small.post("/live/api/frame", content=frame(PIXELS, 0))
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "limit of 1,000 bytes" in streamed.json()["error"]
    assert fine.status_code == 200


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"", "shorter than"),
        (b"XXXX" + bytes(10), "expected b'ALQ1'"),
        (frame(PIXELS, 0)[:-1], "expected 590"),
        (REQUEST_HEADER.pack(b"ALQ1", 1, 0, 13, 12) + bytes(13 * 12 * 4), "13x12"),
        (frame(PIXELS, 99), "layer index 99 is out of range"),
    ],
)
def test_malformed_frames_are_refused_and_the_server_goes_on(client, body, reason):
    bad = client.post("/live/api/frame", content=body)
    good = client.post("/live/api/frame", content=frame(PIXELS, 0))

    assert bad.status_code == 400
    assert reason in bad.json()["error"]
    assert good.status_code == 200


def test_malformed_websocket_messages_get_errors_and_the_socket_stays(client):
    with client.websocket_connect(ws_url()) as socket:
        socket.send_text("hello")
        text = json.loads(socket.receive_text())
        socket.send_bytes(b"ALQ1")
        short = json.loads(socket.receive_text())
        socket.send_bytes(bytes(MAX_MESSAGE + 1))
        huge = json.loads(socket.receive_text())
        socket.send_bytes(frame(PIXELS, 0, seq=11))
        seq, _, _ = decode_reply(socket.receive_bytes())

    assert "send binary frames" in text["error"]
    assert "shorter than" in short["error"]
    assert "over the limit" in huge["error"]
    assert seq == 11


def test_real_socket_refuses_foreign_host_and_origin(live):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with running(live) as url:
        port = int(url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/index.html", headers={"Host": "rebound.example"})
        foreign = connection.getresponse()
        foreign.read()
        connection.request("GET", "/index.html")
        local = connection.getresponse()
        local.read()
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{port}/live/ws", origin="http://evil.example")
        with connect(f"ws://127.0.0.1:{port}/live/ws", origin=url) as socket:
            socket.send(frame(PIXELS, 0, seq=5))
            seq, _, _ = decode_reply(socket.recv(timeout=60))

    assert foreign.status == 403
    assert local.status == 200
    assert refused.value.response.status_code == 403
    assert seq == 5


class Bound:
    """Stands in for a listening socket; records nothing but its address."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port or 8000)

    def getsockname(self):
        return self.address


def serve_live_cli(monkeypatch, project, *options: str) -> list:
    """Run `atlas serve --live` up to the point where it would listen."""
    import uvicorn

    from atlas.cli import main
    from atlas.live import server

    bound = []

    def bind(host, port):
        bound.append((host, port))
        return Bound(host, port)

    monkeypatch.setattr(server, "bind_socket", bind)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: None)
    config = str(project)
    code = main(["serve", "--live", "--config", config, "--port", "8123", *options])
    assert code == 0
    return bound


def test_serve_live_listens_on_loopback_by_default(monkeypatch, project, caplog):
    bound = serve_live_cli(monkeypatch, project)

    assert bound == [("127.0.0.1", 8123)]
    assert "http://127.0.0.1:8123/live/probe.html" in caplog.text
    assert "anyone who can reach" not in caplog.text


def test_serve_live_on_another_address_warns(monkeypatch, project, caplog):
    bound = serve_live_cli(monkeypatch, project, "--host", "192.0.2.7")

    assert bound == [("192.0.2.7", 8123)]
    assert "anyone who can reach this address" in caplog.text


def test_host_without_live_is_refused(capsys, project):
    from atlas.cli import main

    code = main(["serve", "--config", str(project), "--host", "192.0.2.7"])

    assert code == 2
    assert (
        "--host '192.0.2.7' is for the live probe; add --live"
        in capsys.readouterr().err
    )
