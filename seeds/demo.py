"""``vitrine seed``: the Little Lotus children's-fashion brand, idempotent and deterministic.

16 stores in China (11 live-enabled), their associates, an admin (``sf_admin``) and a marketer
(``sf_marketer``), 40 products with generated images, 200 clients each owned by an associate of
their store, and scheduled public and private sessions (with the "every other Wednesday at
19:00" series). Ids are fixed (``st_sh01``, ``sf_sh01_1``, ``cl_0001``, ``pr_001``, ``se_wed01``)
and rows are only inserted when missing, so seeding twice changes nothing.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from catalog.models import Product
from live.db import Database, now_ms
from live.models import Client, LiveSession, SessionProduct, StaffMember, Store
from seeds import data, images, stock
from seeds.rows import insert_missing

MEDIA_PREFIX = "/media/products/"
PRIVATE_CAPACITY = 500
Rows = list[dict[str, Any]]


def _suffix(store_id: str) -> str:
    return store_id.removeprefix("st_")


def associate_id(store_id: str, n: int) -> str:
    return f"sf_{_suffix(store_id)}_{n}"


def product_id(index: int) -> str:
    return f"pr_{index + 1:03d}"


def image_name(index: int, colour: str) -> str:
    """``pr_001.webp`` for the main colour, ``pr_001-sky.webp`` for the others."""
    main = data.PRODUCTS[index].colours[0]
    return (
        f"{product_id(index)}.webp"
        if colour == main
        else f"{product_id(index)}-{stock.slug(colour)}.webp"
    )


def image_urls(index: int) -> list[str]:
    return [MEDIA_PREFIX + image_name(index, c) for c in data.PRODUCTS[index].colours]


def _email(name: str, n: int) -> str:
    return f"{name.lower().replace(' ', '.')}.{n}@littlelotus.example"


def build_directory(rng: random.Random) -> tuple[Rows, Rows, Rows]:
    """Stores, staff and clients."""
    stores = [
        {
            "id": s.id,
            "name": f"{data.BRAND} {s.name}",
            "city": s.city,
            "country": "CN",
            "live_enabled": s.live,
            "blocked_words": [],
        }
        for s in data.STORES
    ]
    staff: Rows = [
        {
            "id": "sf_admin",
            "name": "Zhou Min",
            "role": "admin",
            "store_id": None,
            "email": "admin@littlelotus.example",
        },
        {
            "id": "sf_marketer",
            "name": "Lin Yue",
            "role": "marketer",
            "store_id": None,
            "email": "marketing@littlelotus.example",
        },
    ]
    owners: dict[str, list[str]] = {}
    for s in data.STORES:
        count = data.ASSOCIATES_PER_LIVE_STORE if s.live else data.ASSOCIATES_PER_OTHER_STORE
        for n in range(1, count + 1):
            name = f"{rng.choice(data.SURNAMES)} {rng.choice(data.GIVEN_NAMES)}"
            staff.append(
                {
                    "id": associate_id(s.id, n),
                    "name": name,
                    "role": "associate",
                    "store_id": s.id,
                    "email": _email(name, len(staff)),
                }
            )
            owners.setdefault(s.id, []).append(associate_id(s.id, n))
    names = random.Random("managers")  # their own draws: the rest of the demo is unchanged
    for s in data.STORES:
        name = f"{names.choice(data.SURNAMES)} {names.choice(data.GIVEN_NAMES)}"
        staff.append(
            {
                "id": f"sf_{_suffix(s.id)}_mgr",
                "name": name,
                "role": "manager",
                "store_id": s.id,
                "email": _email(name, len(staff)),
            }
        )
    weights = [3 if s.live else 1 for s in data.STORES]
    clients: Rows = []
    for n in range(1, data.CLIENTS + 1):
        store = rng.choices(data.STORES, weights)[0]
        name = f"{rng.choice(data.SURNAMES)} {rng.choice(data.GIVEN_NAMES)}"
        city = rng.choice(store.nearby) if store.nearby and rng.random() < 0.3 else store.city
        clients.append(
            {
                "id": f"cl_{n:04d}",
                "store_id": store.id,
                "associate_id": rng.choice(owners[store.id]),
                "name": name,
                "email": f"client{n:04d}@mail.example",
                "phone": f"+86 139{n:08d}",
                "city": city,
            }
        )
    return stores, staff, clients


def build_products() -> Rows:
    return [
        {
            "id": product_id(i),
            "store_id": None,
            "title": p.title,
            "description": p.description,
            "price_minor": p.price_yuan * 100,
            "currency": data.CURRENCY,
            "image_url": image_urls(i)[0],
            "images": image_urls(i),
            "active": True,
            "position": i,
        }
        for i, p in enumerate(data.PRODUCTS)
    ]


def _china_time(day: datetime, hour: int) -> int:
    china = timezone(timedelta(hours=data.CHINA_UTC_OFFSET_H))
    local = datetime(day.year, day.month, day.day, hour, tzinfo=china)
    return int(local.timestamp() * 1000)


def build_sessions(now: int) -> tuple[Rows, Rows]:
    """Sessions scheduled from ``now`` on, and their products in show order."""
    china = timezone(timedelta(hours=data.CHINA_UTC_OFFSET_H))
    today = datetime.fromtimestamp(now / 1000, UTC).astimezone(china)
    planned: list[tuple[data.SessionSpec, str, str, int]] = []
    first_wed = today + timedelta(days=(2 - today.weekday()) % 7 or 7)
    spec = data.SERIES
    for ep in range(data.SERIES_EPISODES):
        when = _china_time(first_wed + timedelta(days=14 * ep), spec.hour)
        planned.append((spec, f"{spec.id}{ep + 1:02d}", f"{spec.title} #{ep + 1}", when))
    for spec in data.SESSIONS:
        day = today + timedelta(days=spec.days)
        if day.weekday() == 2:  # Wednesday evenings belong to the series
            day += timedelta(days=1)
        planned.append((spec, spec.id, spec.title, _china_time(day, spec.hour)))
    sessions: Rows = []
    links: Rows = []
    for n, (spec, sid, title, when) in enumerate(planned):
        capacity = spec.capacity or (PRIVATE_CAPACITY if spec.kind == "private" else None)
        sessions.append(
            {
                "id": sid,
                "title": title,
                "kind": spec.kind,
                "store_id": spec.store_id,
                "host_id": associate_id(spec.store_id, spec.host),
                "purpose": spec.purpose,
                "audience": spec.audience,
                "style": spec.style,
                "status": "scheduled",
                "scheduled_at": when,
                "capacity": capacity,
            }
        )
        indexes = spec.products
        if spec is data.SERIES:  # each episode shows a different rotation of the series' products
            indexes = indexes[n:] + indexes[:n]
        links.extend(
            {"session_id": sid, "product_id": product_id(i), "position": pos}
            for pos, i in enumerate(indexes)
        )
    return sessions, links


def write_images(data_dir: str) -> int:
    """Draw the missing product tiles (one per colour) into ``{data_dir}/media/products``.

    Returns how many were drawn; a damaged file is drawn again.
    """
    folder = Path(data_dir) / "media" / "products"
    drawn = 0
    for i, p in enumerate(data.PRODUCTS):
        for colour in p.colours:
            path = folder / image_name(i, colour)
            if path.is_file() and images.is_valid_image(path):
                continue
            tile = images.draw_tile(p.title, p.kind, data.COLOURS[colour], data.BRAND)
            images.write_tile(path, tile)
            drawn += 1
    return drawn


async def _insert_all(db: Database, plan: list[tuple[type[Any], Rows]]) -> int:
    async with db.write() as s:
        added = 0
        for model, rows in plan:  # in foreign-key order, flushed one table at a time
            added += await insert_missing(s, model, rows)
        return added


async def seed(db: Database, data_dir: str) -> dict[str, int]:
    """Load the demo brand; safe to run again (and concurrently): it only adds what is missing."""
    rng = random.Random(data.RANDOM_SEED)
    stores, staff, clients = build_directory(rng)
    products = build_products()
    sessions, links = build_sessions(now_ms())
    plan: list[tuple[type[Any], Rows]] = [
        (Store, stores),
        (StaffMember, staff),
        (Client, clients),
        (Product, products),
        (LiveSession, sessions),
        (SessionProduct, links),
    ]
    plan.extend(stock.plan(stores, products, random.Random(data.RANDOM_SEED + 1)))
    drawn = write_images(data_dir)
    for attempt in range(3):
        try:
            added = await _insert_all(db, plan)
            break
        except IntegrityError:  # another seed inserted the same rows meanwhile: go again
            if attempt == 2:
                raise
    counts = {
        "stores": len(stores),
        "live stores": sum(1 for s in stores if s["live_enabled"]),
        "staff": len(staff),
        "clients": len(clients),
        "products": len(products),
        "sessions": len(sessions),
    }
    counts.update(stock.counts(plan))
    counts.update({"images drawn": drawn, "rows added": added})
    return counts
