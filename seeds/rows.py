"""Insert-if-missing: the primitive that makes ``vitrine seed`` idempotent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

CHUNK = 500  # ids per IN (...) query


def _key(model: type[Any], row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c.key] for c in inspect(model).primary_key)


async def insert_missing(
    session: AsyncSession, model: type[Any], rows: Sequence[dict[str, Any]]
) -> int:
    """Add the rows whose primary key is not in the table yet; never touch existing rows.

    Returns how many rows were added. Existing rows are left as they are, so a demo that has
    since been used (a session gone live, an edited product) is not reset by a second seed.
    """
    if not rows:
        return 0
    pk = [getattr(model, c.key) for c in inspect(model).primary_key]
    wanted = [_key(model, r) for r in rows]
    existing: set[tuple[Any, ...]] = set()
    for i in range(0, len(wanted), CHUNK):
        chunk = wanted[i : i + CHUNK]
        if len(pk) == 1:
            found = await session.scalars(select(pk[0]).where(pk[0].in_([k[0] for k in chunk])))
            existing.update((v,) for v in found)
        else:
            result = await session.execute(select(*pk).where(tuple_(*pk).in_(chunk)))
            existing.update(tuple(r) for r in result)
    new = [model(**r) for r, k in zip(rows, wanted, strict=True) if k not in existing]
    session.add_all(new)
    await session.flush()
    return len(new)
