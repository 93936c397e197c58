"""The Alembic history produces exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from live.db import async_url
from live.schema import metadata, upgrade_async


async def test_migrations_match_models(database_url: str) -> None:
    await upgrade_async(database_url)  # idempotent on an up-to-date database
    engine = create_async_engine(async_url(database_url))

    def diff(conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return list(compare_metadata(ctx, metadata()))

    try:
        async with engine.connect() as conn:
            changes = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert changes == [], f"models and migrations differ: {changes[:5]}"
