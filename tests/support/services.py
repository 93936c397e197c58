"""Real PostgreSQL and Redis for tests. Outside CI a missing service skips, saying which; in CI it fails."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket

import pytest

PG_HOST = os.environ.get("VITRINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("VITRINE_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need(service: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    msg = f"{service} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(msg + " (CI never skips: start it, see README)")
    pytest.skip(msg)


def need_postgres() -> None:
    need("PostgreSQL", "127.0.0.1", 5432)


def need_redis() -> None:
    need("Redis", "127.0.0.1", 6379)


async def _pg_exec(sql: str, db: str = "postgres") -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_HOST}/{db}")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_TEMPLATE: dict[str, str] = {}


def postgres_database() -> str:
    """A fresh, migrated PostgreSQL database for one test (copied from a migrated template)."""
    need_postgres()
    if "name" not in _TEMPLATE:
        from live.schema import upgrade

        name = f"vt_tmpl_{os.getpid()}_{secrets.token_hex(3)}"
        asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
        upgrade(f"{PG_HOST}/{name}")
        _TEMPLATE["name"] = name
    db = f"vt_{secrets.token_hex(6)}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{db}" TEMPLATE "{_TEMPLATE["name"]}"'))
    return f"{PG_HOST}/{db}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    try:
        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:  # best effort cleanup
        pass


def drop_template() -> None:
    if "name" in _TEMPLATE:
        drop_postgres_database(f"{PG_HOST}/{_TEMPLATE.pop('name')}")


def sqlite_database(tmp_path: os.PathLike[str]) -> str:
    from live.schema import upgrade

    url = f"sqlite:///{os.fspath(tmp_path)}/vitrine.db"
    upgrade(url)
    return url
