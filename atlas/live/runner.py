"""The probe's one model worker: requests wait in a bounded queue, and the
worker takes every request waiting when it comes free, running the frames
of one layer as one batch. A client that is slow to read its replies
holds only its own connection, never the worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from atlas.errors import AtlasError
from atlas.live.engine import Probe
from atlas.live.protocol import ProbeFrame

# Frames run together at most: more clients than this at once is not the
# probe's use, and a larger batch would only add to every client's latency.
MAX_BATCH = 16
# Requests waiting at most; past this the server answers "busy".
MAX_QUEUE = 64

logger = logging.getLogger(__name__)


class Busy(AtlasError):
    """The probe's queue is full; the client should retry shortly."""


@dataclass
class _Job:
    future: asyncio.Future
    layer: int = -1
    pixels: np.ndarray | None = None  # (H, W, C) uint8, for a frame
    call: Callable[[], Any] | None = None  # any other work on the model


class Runner:
    """Runs all model work in one thread; frames of a layer are batched."""

    def __init__(
        self, probe: Probe, max_batch: int = MAX_BATCH, max_queue: int = MAX_QUEUE
    ) -> None:
        self.probe = probe
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Start taking requests; call from the server's event loop."""
        self._executor = ThreadPoolExecutor(1, "atlas-live-model")
        self._queue = asyncio.Queue(self.max_queue)
        self._task = asyncio.create_task(self._serve(), name="atlas-live-runner")

    async def stop(self) -> None:
        """Stop the worker; requests still waiting are cancelled."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._queue is not None and not self._queue.empty():
            self._queue.get_nowait().future.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._queue = self._task = self._executor = None

    async def frame(self, layer: int, pixels: np.ndarray) -> ProbeFrame:
        """Layer `layer`'s packed frame for one uint8 (H, W, C) image."""
        return await self._submit(_Job(self._future(), layer, pixels))

    async def call(self, work: Callable[[], Any]) -> Any:
        """Run `work` on the model thread, in turn with the frames."""
        return await self._submit(_Job(self._future(), call=work))

    async def run_now(self, work: Callable[[], Any]) -> Any:
        """Run `work` on the model thread at once (start-up warming)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, work)

    def _future(self) -> asyncio.Future:
        return asyncio.get_running_loop().create_future()

    async def _submit(self, job: _Job) -> Any:
        if self._queue is None:
            raise Busy("the probe is not started yet; retry in a moment.")
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise Busy(
                f"the probe has {self.max_queue} requests waiting; send the "
                "next frame after the last reply arrives."
            ) from None
        return await job.future

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            while len(jobs) < self.max_batch and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            jobs = [job for job in jobs if not job.future.done()]
            outcomes = await loop.run_in_executor(self._executor, _work, self, jobs)
            for job, (ok, value) in zip(jobs, outcomes, strict=True):
                _settle(job.future, ok, value)


def _work(runner: Runner, jobs: list[_Job]) -> list[tuple[bool, Any]]:
    """Run `jobs` on the model thread: each layer's frames as one batch."""
    outcomes: dict[int, tuple[bool, Any]] = {}
    for layer in sorted({job.layer for job in jobs if job.call is None}):
        group = [
            i for i, job in enumerate(jobs) if job.call is None and job.layer == layer
        ]
        for i, outcome in zip(
            group, _batch(runner.probe, layer, jobs, group), strict=True
        ):
            outcomes[i] = outcome
    for i, job in enumerate(jobs):
        if job.call is not None:
            outcomes[i] = _guarded(job.call)
    return [outcomes[i] for i in range(len(jobs))]


def _batch(probe: Probe, layer: int, jobs: list[_Job], group: list[int]):
    pixels = np.stack([jobs[i].pixels for i in group])
    ok, value = _guarded(lambda: probe.frames(layer, pixels))
    return [(True, frame) for frame in value] if ok else [(False, value)] * len(group)


def _guarded(work: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, work()
    except Exception as exc:  # handed to the request that asked for it
        if not isinstance(exc, AtlasError):
            logger.exception("live probe: model work failed")
        return False, exc


def _settle(future: asyncio.Future, ok: bool, value: Any) -> None:
    if future.done():
        return  # the client went away
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
