"""Stores, staff and clients: the people and places sessions are made of."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from live.db import Database, new_id
from live.errors import Conflict, NotFound, ValidationFailed
from live.http import field, str_list
from live.models import STAFF_ROLES, Client, StaffMember, Store


def store_json(s: Store) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "city": s.city,
        "country": s.country,
        "live_enabled": s.live_enabled,
        "blocked_words": list(s.blocked_words or []),
    }


def staff_json(s: StaffMember) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "role": s.role, "store_id": s.store_id, "email": s.email}


def client_json(c: Client) -> dict[str, Any]:
    return {
        "id": c.id,
        "store_id": c.store_id,
        "associate_id": c.associate_id,
        "name": c.name,
        "email": c.email,
        "phone": c.phone,
        "city": c.city,
    }


def _text(data: dict[str, Any], name: str, *, default: Any = ..., max_len: int = 200) -> Any:
    kwargs = {} if default is ... else {"default": default}
    return field(
        data,
        name,
        str,
        check=lambda v: 0 < len(v.strip()) <= max_len,
        why=f"must be 1 to {max_len} characters",
        **kwargs,
    )


async def get_or_404(session: AsyncSession, model: type[Any], id_: str, what: str) -> Any:
    obj = await session.get(model, id_)
    if obj is None:
        raise NotFound(f"no {what} {id_!r}", code=f"{what}_not_found")
    return obj


def _chosen_id(data: dict[str, Any], prefix: str) -> str:
    """The caller's own ``id`` (1 to 40 printable characters, e.g. from a CRM) or a new one."""
    chosen = field(
        data,
        "id",
        str,
        default=None,
        check=lambda v: 0 < len(v) <= 40 and v.isprintable(),
        why="must be 1 to 40 printable characters",
    )
    return chosen or new_id(prefix)


async def _add_new(s: AsyncSession, obj: Any, what: str) -> None:
    """Add a row whose id the caller may have chosen: 409 ``already_exists`` when it is taken."""
    if await s.get(type(obj), obj.id) is not None:
        raise Conflict(f"a {what} {obj.id!r} exists already", code="already_exists")
    s.add(obj)
    try:
        await s.flush()
    except IntegrityError as exc:  # the same id created twice at once
        raise Conflict(f"a {what} {obj.id!r} exists already", code="already_exists") from exc


async def create_store(db: Database, data: dict[str, Any]) -> dict[str, Any]:
    store = Store(
        id=_chosen_id(data, "st"),
        name=_text(data, "name"),
        city=_text(data, "city", default="", max_len=100),
        country=field(
            data,
            "country",
            str,
            default="",
            check=lambda v: len(v) in (0, 2),
            why="is ISO 3166 alpha-2",
        ),
        live_enabled=field(data, "live_enabled", bool, default=True),
        blocked_words=str_list(data, "blocked_words", default=[]),
    )
    async with db.write() as s:
        await _add_new(s, store, "store")
    return store_json(store)


async def list_stores(db: Database, *, live_enabled: bool | None = None) -> list[dict[str, Any]]:
    q = select(Store).order_by(Store.name)
    if live_enabled is not None:
        q = q.where(Store.live_enabled == live_enabled)
    async with db.read() as s:
        return [store_json(x) for x in (await s.scalars(q)).all()]


async def create_staff(db: Database, data: dict[str, Any]) -> dict[str, Any]:
    role = field(
        data, "role", str, check=lambda v: v in STAFF_ROLES, why=f"must be one of {STAFF_ROLES}"
    )
    store_id = field(data, "store_id", str, default=None)
    if role in ("manager", "associate") and store_id is None:
        raise ValidationFailed(f"a {role} belongs to a store: `store_id` is required")
    member = StaffMember(
        id=_chosen_id(data, "sf"),
        name=_text(data, "name"),
        role=role,
        store_id=store_id,
        email=_text(data, "email", default="", max_len=200),
    )
    async with db.write() as s:
        if store_id is not None:
            await get_or_404(s, Store, store_id, "store")
        await _add_new(s, member, "staff member")
    return staff_json(member)


async def list_staff(
    db: Database, *, store_id: str | None = None, role: str | None = None
) -> list[dict[str, Any]]:
    q = select(StaffMember).order_by(StaffMember.name)
    if store_id:
        q = q.where(StaffMember.store_id == store_id)
    if role:
        q = q.where(StaffMember.role == role)
    async with db.read() as s:
        return [staff_json(x) for x in (await s.scalars(q)).all()]


async def create_client(db: Database, data: dict[str, Any]) -> dict[str, Any]:
    store_id = field(data, "store_id", str)
    associate_id = field(data, "associate_id", str, default=None)
    client = Client(
        id=_chosen_id(data, "cl"),
        store_id=store_id,
        associate_id=associate_id,
        name=_text(data, "name"),
        email=_text(data, "email", default="", max_len=200),
        phone=_text(data, "phone", default="", max_len=50),
        city=_text(data, "city", default="", max_len=100),
    )
    async with db.write() as s:
        await get_or_404(s, Store, store_id, "store")
        if associate_id is not None:
            await get_or_404(s, StaffMember, associate_id, "staff")
        await _add_new(s, client, "client")
    return client_json(client)


async def list_clients(
    db: Database,
    *,
    store_id: str | None = None,
    associate_id: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> dict[str, Any]:
    q = select(Client)
    if store_id:
        q = q.where(Client.store_id == store_id)
    if associate_id:
        q = q.where(Client.associate_id == associate_id)
    async with db.read() as s:
        total = await s.scalar(select(func.count()).select_from(q.subquery()))
        rows = (
            await s.scalars(q.order_by(Client.name, Client.id).limit(limit).offset(offset))
        ).all()
    return {"items": [client_json(c) for c in rows], "total": total or 0}


async def get_one(db: Database, model: type[Any], id_: str, what: str) -> Any:
    async with db.read() as s:
        return await get_or_404(s, model, id_, what)
