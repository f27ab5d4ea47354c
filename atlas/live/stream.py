"""The probe's WebSocket: input frames in, packed activation frames out.

Each connection keeps at most one frame in flight and one waiting; a
newer frame replaces the waiting one, which is answered "skipped". A
client that sends faster than the model runs gets the newest input,
never a growing backlog; one that reads slowly blocks only itself.
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from atlas.errors import AtlasError
from atlas.live.engine import Probe
from atlas.live.inputs import rgba_to_pixels
from atlas.live.protocol import FrameRequest, decode_request, encode_reply
from atlas.live.runner import Runner

# The largest frame a client may send: 1024x1024 RGBA and the header.
MAX_MESSAGE = 1024 * 1024 * 4 + 64

logger = logging.getLogger(__name__)


class _Connection:
    """One client's latest waiting frame and its serialized sends."""

    def __init__(self, websocket: WebSocket, probe: Probe, runner: Runner) -> None:
        self.websocket = websocket
        self.probe = probe
        self.runner = runner
        self.waiting: FrameRequest | None = None
        self.ready = asyncio.Event()
        self.lock = asyncio.Lock()

    async def receive(self) -> None:
        """Read frames until the client leaves; malformed ones get an error."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                request = self._parse(message)
            except AtlasError as exc:
                await self.send_text({"error": str(exc)})
                continue
            if self.waiting is not None:
                await self.send_text({"skipped": self.waiting.seq})
            self.waiting = request
            self.ready.set()

    async def answer(self) -> None:
        """Run the waiting frame whenever there is one, and send its reply."""
        while True:
            await self.ready.wait()
            self.ready.clear()
            request, self.waiting = self.waiting, None
            if request is not None:
                await self._answer(request)

    async def send_text(self, document: dict) -> None:
        async with self.lock:
            await self.websocket.send_text(json.dumps(document))

    def _parse(self, message: dict) -> FrameRequest:
        data = message.get("bytes")
        if data is None:
            raise AtlasError(
                "text message ignored; send binary frames (see protocol.py)."
            )
        if len(data) > MAX_MESSAGE:
            raise AtlasError(
                f"frame of {len(data):,} bytes is over the limit of "
                f"{MAX_MESSAGE:,}; send the image at the model's input size."
            )
        request = decode_request(data, self.probe.shape[:2])
        self.probe.layer(request.layer)
        return request

    async def _answer(self, request: FrameRequest) -> None:
        try:
            pixels = rgba_to_pixels(request.rgba, self.probe.shape[2])
            frame = await self.runner.frame(request.layer, pixels)
        except AtlasError as exc:
            await self.send_text({"seq": request.seq, "error": str(exc)})
            return
        except Exception as exc:  # a bug of ours: tell the client, keep going
            logger.exception("live probe: frame %d failed", request.seq)
            await self.send_text({"seq": request.seq, "error": f"internal: {exc}"})
            return
        reply = encode_reply(request.seq, request.layer, frame)
        async with self.lock:
            await self.websocket.send_bytes(reply)


async def stream(websocket: WebSocket, probe: Probe, runner: Runner) -> None:
    """Serve one probe connection until the client closes it."""
    await websocket.accept()
    connection = _Connection(websocket, probe, runner)
    answering = asyncio.create_task(connection.answer())
    try:
        await connection.receive()
    except WebSocketDisconnect:
        pass
    finally:
        answering.cancel()
        await asyncio.gather(answering, return_exceptions=True)
