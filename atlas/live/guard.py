"""Who may talk to the live server, and how much they may send (C23).

An ASGI middleware in front of every route: a request whose Host header
is not this machine (or the address given with --host) gets 403, which
defeats DNS rebinding; a WebSocket upgrade or a state-changing request
from a page of another origin gets 403; a body over the limit gets 413.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

logger = logging.getLogger(__name__)

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def allowed_hosts(extra: Iterable[str] = ()) -> frozenset[str]:
    """Loopback names plus `extra` addresses, as a Host header writes them."""
    return LOCAL_HOSTS | {host_name(h) for h in extra if h}


def host_name(value: str) -> str:
    """The host part of a Host header or address, lower case; IPv6 bracketed."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    if value.count(":") > 1:
        return f"[{value}]"  # a bare IPv6 address, as --host may give it
    return value.rsplit(":", 1)[0]


class Guard:
    """ASGI middleware enforcing the Host, Origin and size rules."""

    def __init__(self, app, hosts: frozenset[str], max_body: int) -> None:
        self.app = app
        self.hosts = hosts
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        refusal = self.refusal(scope)
        if refusal is not None:
            logger.warning("refused %s %s: %s", scope["type"], scope["path"], refusal)
            return await _refuse(scope, send, 403, refusal)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            message = f"body of {length} bytes; the limit is {self.max_body:,} bytes"
            return await _refuse(scope, send, 413, message)
        await self._limited(scope, receive, send)

    def refusal(self, scope: Scope) -> str | None:
        """Why `scope` is refused, or None when it may go on."""
        host = _header(scope, b"host")
        if host is None or host_name(host) not in self.hosts:
            return (
                f"Host {host!r} is not this machine; open the probe at "
                "http://127.0.0.1 or http://localhost (or the --host address)"
            )
        # Browsers send Origin with every WebSocket upgrade and cross-origin
        # POST; a request without one comes from a program, not a web page.
        origin = _header(scope, b"origin")
        unsafe = scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS
        if unsafe and origin is not None and not same_origin(origin, host):
            return f"Origin {origin!r} is not this server's origin"
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the whole body first, refusing it once past the limit, so
        that no route ever sees part of an oversized request."""
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            more = message.get("more_body", False)
            if seen > self.max_body:
                reason = f"body over the limit of {self.max_body:,} bytes"
                return await _refuse(scope, send, 413, reason)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def same_origin(origin: str, host: str) -> bool:
    """True when `origin` is http://`host`, the origin of this server's pages."""
    parts = urlsplit(origin.strip().lower())
    return parts.scheme == "http" and parts.netloc == host.strip().lower()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _refuse(scope: Scope, send: Send, status: int, reason: str) -> None:
    if scope["type"] == "websocket":
        # Closing before accepting makes the server answer the upgrade 403.
        await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
        return
    body = json.dumps({"error": reason}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
