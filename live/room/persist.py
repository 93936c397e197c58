"""Group commit for the room log: rows queued by many connections are written in one transaction.

SQLite serialises writers, and a transaction per chat message caps a busy room at the
database's commit rate. :class:`Persister` drains its queue into one transaction per round;
``submit`` returns a future that completes once the rows are committed. When a batch fails,
its items are retried one by one so a single bad row fails only its own future.

The transaction does not run on the app's event loop: an async transaction needs a loop round
trip per statement, and while the loop fans out frames to thousands of sockets each trip
waits behind them — and a durable ack waits for the commit. On a SQLite file it runs in a
worker thread on its own synchronous connection (SQLite's own lock and busy timeout serialise
it with the process's other writers); on PostgreSQL, on a small engine of its own in a thread
with its own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from live.db import Base, Database

log = logging.getLogger("vitrine.room.persist")

MAX_BATCH = 500
BACKLOG = 2000  # above this many queued items, callers wait for their rows to be written


class Persister:
    def __init__(self, db: Database, commit_seconds: Any = None) -> None:
        self.db = db
        self.commit_seconds = commit_seconds  # a histogram: submission to commit, per batch
        self._oldest = 0.0  # when the oldest queued item was submitted
        self._items: list[tuple[Sequence[Base], asyncio.Future[None]]] = []
        self._sync = _sync_sqlite(db)
        self._thread = _WriterThread(db) if self._sync is None and not db.is_sqlite else None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="room-persister")

    @property
    def backlog(self) -> int:
        return len(self._items)

    def submit(self, rows: Sequence[Base]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._items:
            self._oldest = time.perf_counter()
        self._items.append((rows, fut))
        self._wake.set()
        return fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._items:
                batch, self._items = self._items[:MAX_BATCH], self._items[MAX_BATCH:]
                since, self._oldest = self._oldest, time.perf_counter()
                await self._write(batch)
                if self.commit_seconds is not None:
                    self.commit_seconds.observe(time.perf_counter() - since)

    async def _write(self, batch: list[tuple[Sequence[Base], asyncio.Future[None]]]) -> None:
        try:
            if self._sync is not None:
                await asyncio.to_thread(_write_sync, self._sync, [rows for rows, _ in batch])
            elif self._thread is not None:
                await self._thread.write([rows for rows, _ in batch])
            else:
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
        if self._sync is not None:
            self._sync.dispose()
        if self._thread is not None:
            self._thread.close()


def _sync_sqlite(db: Database) -> Engine | None:
    """A one-connection synchronous engine on the same SQLite file (None for PostgreSQL or an
    in-memory database)."""
    path = db.url.database
    if not db.is_sqlite or not path or path == ":memory:":
        return None
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=1,
        max_overflow=0,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine


def _write_sync(engine: Engine, batches: list[Sequence[Base]]) -> None:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        # new rows only, no relationships: the bulk path skips the unit of work's bookkeeping
        s.bulk_save_objects([row for rows in batches for row in rows])


class _WriterThread:
    """An event loop in a thread of its own, with its own engine, for the group commit."""

    def __init__(self, db: Database) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="room-writer", daemon=True
        )
        self.thread.start()
        url = db.url.render_as_string(hide_password=False)
        self.db = asyncio.run_coroutine_threadsafe(_database(url), self.loop).result(30)

    async def write(self, batches: list[Sequence[Base]]) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._write(batches), self.loop))

    async def _write(self, batches: list[Sequence[Base]]) -> None:
        rows = [row for batch in batches for row in batch]
        async with self.db.write() as s:
            await s.run_sync(lambda sync: sync.bulk_save_objects(rows))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.db.dispose(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


async def _database(url: str) -> Database:
    return Database(url)
