"""Group commit for the room log: rows queued by many connections are written in one transaction.

SQLite serialises writers, and a transaction per chat message caps a busy room at the
database's commit rate. :class:`Persister` drains its queue into one transaction per round;
``submit`` returns a future that completes once the rows are committed. When a batch fails,
its items are retried one by one so a single bad row fails only its own future.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from live.db import Base, Database

log = logging.getLogger("vitrine.room.persist")

MAX_BATCH = 500
BACKLOG = 2000  # above this many queued items, callers wait for their rows to be written


class Persister:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._items: list[tuple[Sequence[Base], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="room-persister")

    @property
    def backlog(self) -> int:
        return len(self._items)

    def submit(self, rows: Sequence[Base]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._items.append((rows, fut))
        self._wake.set()
        return fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._items:
                batch, self._items = self._items[:MAX_BATCH], self._items[MAX_BATCH:]
                await self._write(batch)

    async def _write(self, batch: list[tuple[Sequence[Base], asyncio.Future[None]]]) -> None:
        try:
            async with self.db.write() as s:
                for rows, _ in batch:
                    s.add_all(rows)
        except Exception as exc:
            if len(batch) == 1:
                log.error("room rows could not be stored", exc_info=exc)
                fut = batch[0][1]
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # retrieved: a caller that did not wait must not warn
                return
            for item in batch:  # find the bad one; the others still get stored
                await self._write([item])
            return
        for _, fut in batch:
            if not fut.done():
                fut.set_result(None)

    async def drained(self) -> None:
        """Wait until everything submitted so far is committed (or failed)."""
        await asyncio.shield(self.submit(()))

    async def close(self) -> None:
        if self._task is not None:
            while self._items:  # write what is queued before stopping
                batch, self._items = self._items[:MAX_BATCH], self._items[MAX_BATCH:]
                await self._write(batch)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
