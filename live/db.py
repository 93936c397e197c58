"""Storage: the async engine, the declarative base and the write-transaction helper.

``DATABASE_URL`` takes the usual ``postgresql://…`` and ``sqlite:///…`` forms; the async
driver (asyncpg, aiosqlite) is ours to choose. SQLite serialises writers: :meth:`Database.write`
takes a process-wide lock and ``BEGIN IMMEDIATE`` so concurrent writers queue instead of
failing with ``database is locked``. PostgreSQL writers run concurrently and rely on row locks
or conditional updates.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def new_id(prefix: str) -> str:
    """A short random id with a readable prefix, e.g. ``se_3kq9v2m1x8ab``."""
    return f"{prefix}_{secrets.token_hex(6)}"


def now_ms() -> int:
    return int(time.time() * 1000)


def async_url(url: str) -> URL:
    """Map a user-facing database URL to the async driver we use."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return u.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return u.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database {backend!r}: use postgresql:// or sqlite:///")


class Database:
    """The engine and session factory of one process, created in the app lifespan."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # no pre-ping: it costs a round trip per transaction; a dropped connection is
            # detected on use, invalidated, and the pool refilled.
            kwargs.update(pool_size=20, max_overflow=20, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _sqlite_pragmas(self.engine)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed on success, rolled back on error.

        On SQLite the process's writers are serialised and the transaction starts
        ``IMMEDIATE`` so a read-then-write never fails half-way.
        """
        if self.is_sqlite:
            async with self._write_lock, self.sessionmaker() as session:
                await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
                try:
                    yield session
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
        else:
            async with self.sessionmaker() as session, session.begin():
                yield session

    async def ping(self) -> bool:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # aiosqlite: take control of BEGIN so we can issue BEGIN IMMEDIATE ourselves.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        _ensure_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _ensure_wal(cur: Any) -> None:
    """Switch the file to WAL once. WAL persists in the file, so later connections only read the
    mode; switching can answer "database is locked" without waiting on the busy handler while
    another connection holds a lock, so it is retried a bounded number of times."""
    cur.execute("PRAGMA journal_mode")
    row = cur.fetchone()
    if row is not None and str(row[0]).lower() in ("wal", "memory"):
        return
    for attempt in range(100):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError, adapted by SQLAlchemy
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)  # only while two processes create the same file at once
