"""The demo brand (``vitrine seed``) on SQLite and PostgreSQL, and the media route serving its images."""

from __future__ import annotations

import asyncio
import http.client
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from catalog.models import Product, Stock, Variant
from live.db import Database
from live.models import Client, LiveSession, SessionProduct, StaffMember, Store
from seeds import data, demo
from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parent.parent
MODELS = (Store, StaffMember, Client, Product, LiveSession, SessionProduct, Variant, Stock)


def _raw_get(base_url: str, target: str) -> tuple[int, bytes]:
    """GET with the request target sent exactly as given (http.client does not normalise it)."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", target)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


async def _table_counts(db: Database) -> dict[str, int]:
    async with db.read() as s:
        return {
            m.__tablename__: await s.scalar(select(func.count()).select_from(m)) or 0
            for m in MODELS
        }


async def test_seed_builds_the_brand_and_is_idempotent(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    try:
        first = await demo.seed(db, str(tmp_path))
        before = await _table_counts(db)
        again = await demo.seed(db, str(tmp_path))
        assert await _table_counts(db) == before
        assert again["rows added"] == 0 and again["images drawn"] == 0
        assert first["rows added"] == sum(before.values())

        async with db.read() as s:
            stores = (await s.scalars(select(Store))).all()
            assert len(stores) == 16 and sum(st.live_enabled for st in stores) == 11
            assert {st.country for st in stores} == {"CN"}
            admin = await s.get(StaffMember, "sf_admin")
            assert admin is not None and admin.role == "admin"
            assert await s.scalar(select(func.count()).where(StaffMember.role == "marketer")) == 1
            staff_store = {m.id: m.store_id for m in (await s.scalars(select(StaffMember))).all()}
            for st in stores:
                associates = [i for i, sid in staff_store.items() if sid == st.id]
                assert len(associates) >= (3 if st.live_enabled else 1)
            clients = (await s.scalars(select(Client))).all()
            assert len(clients) == 200
            assert all(
                c.associate_id and staff_store[c.associate_id] == c.store_id for c in clients
            )
            assert all(c.city for c in clients)
            products = (await s.scalars(select(Product))).all()
            assert 35 <= len(products) <= 45
            assert all(
                p.image_url.startswith("/media/products/") and p.price_minor > 0 for p in products
            )
            sessions = (await s.scalars(select(LiveSession))).all()
            assert {x.kind for x in sessions} == {"public", "private"}
            live_stores = {st.id for st in stores if st.live_enabled}
            for x in sessions:
                assert x.status == "scheduled" and x.scheduled_at and x.store_id in live_stores
                assert staff_store[x.host_id] == x.store_id
            linked = set((await s.scalars(select(SessionProduct.session_id))).all())
            assert linked == {x.id for x in sessions}
            assert (await s.scalar(select(func.count()).select_from(Variant)) or 0) >= len(products)
            stocked = set((await s.scalars(select(Stock.store_id).distinct())).all())
            assert stocked == live_stores
    finally:
        await db.dispose()


@pytest.mark.parametrize("day", range(7))
def test_series_is_every_other_wednesday_at_seven_pm_china_time(day: int) -> None:
    """Whatever the day the demo is seeded, the series runs on Wednesdays at 19:00 China time."""
    day_ms, hour_ms = 86_400_000, 3_600_000
    now = 1_795_000_000_000 + day * day_ms + 13 * hour_ms  # a week of seed days
    sessions, links = demo.build_sessions(now)
    china = {x["id"]: x["scheduled_at"] + 8 * hour_ms for x in sessions}
    series = sorted(t for sid, t in china.items() if sid.startswith("se_wed"))
    assert len(series) >= 3
    for t in series:
        days, rest = divmod(t, day_ms)
        assert rest == 19 * hour_ms and (days + 3) % 7 == 2  # 1970-01-01 was a Thursday
    assert {b - a for a, b in itertools.pairwise(series)} == {14 * day_ms}
    others = [t for sid, t in china.items() if not sid.startswith("se_wed")]
    assert all((t // day_ms + 3) % 7 != 2 for t in others), (
        "Wednesday evenings belong to the series"
    )
    assert all(x["scheduled_at"] > now for x in sessions)
    assert {x["kind"] for x in sessions} == {"public", "private"}
    assert {link["session_id"] for link in links} == set(china)


async def test_product_images_are_valid_images(sqlite_url: str, tmp_path: Path) -> None:
    db = Database(sqlite_url)
    try:
        await demo.seed(db, str(tmp_path))
        async with db.read() as s:
            products = (await s.scalars(select(Product))).all()
    finally:
        await db.dispose()
    urls = [u for p in products for u in p.images]
    assert {p.image_url for p in products} <= set(urls)
    assert len(urls) > len(products), "products in two colours have a tile per colour"
    for url in urls:
        path = tmp_path / url.removeprefix("/")
        with Image.open(path) as im:
            assert im.format in ("WEBP", "JPEG") and im.size[0] >= 256
            im.load()
    # a damaged image is redrawn by the next seed
    broken = tmp_path / urls[0].removeprefix("/")
    broken.write_bytes(b"not an image")
    db = Database(sqlite_url)
    try:
        assert (await demo.seed(db, str(tmp_path)))["images drawn"] == 1
    finally:
        await db.dispose()
    with Image.open(broken) as im:
        im.verify()


def test_media_route_serves_images_and_refuses_traversal(server: LiveServer) -> None:
    data_dir = Path(server.settings.data_dir)
    demo.write_images(str(data_dir))
    # a real image outside media/: only the traversal checks can keep it private
    (data_dir / "secret.webp").write_bytes(
        b"top secret" + (data_dir / "media/products/pr_002.webp").read_bytes()
    )
    (data_dir / "media" / "notes.txt").write_text("not media")
    (data_dir / "media" / ".hidden.webp").write_bytes(b"x")
    (data_dir / "media" / "link.webp").symlink_to(data_dir / "secret.webp")
    with server.client() as c:
        r = c.get("/media/products/pr_001.webp")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/webp"
        assert (
            "max-age" in r.headers["cache-control"]
            and r.headers["x-content-type-options"] == "nosniff"
        )
        with Image.open(io.BytesIO(r.content)) as im:
            assert im.format == "WEBP"
        etag = r.headers["etag"]
        assert (
            c.get("/media/products/pr_001.webp", headers={"if-none-match": etag}).status_code == 304
        )
        assert c.head("/media/products/pr_001.webp").status_code == 200
        part = c.get("/media/products/pr_001.webp", headers={"range": "bytes=0-9"})
        assert part.status_code == 206 and len(part.content) == 10
        for bad_range, status in (("bytes=zz", 400), ("bytes=99999999-", 416)):
            r = c.get("/media/products/pr_001.webp", headers={"range": bad_range})
            assert r.status_code == status and r.json()["error"] in (
                "bad_range",
                "range_not_satisfiable",
            )

        for path in (
            "/media/products/nope.webp",
            "/media/notes.txt",
            "/media/.hidden.webp",
            "/media/products",
            "/media/link.webp",
        ):
            r = c.get(path)
            assert r.status_code == 404 and r.json()["error"] == "not_found", path
        # a NUL byte anywhere in a URL is refused before any route runs
        r = c.get("/media/products/pr_001.webp%00.png")
        assert r.status_code == 400 and r.json()["error"] == "bad_request"
    # raw paths, sent as is: no client-side normalisation of the dot segments
    for raw in (
        b"/media/../secret.webp",
        b"/media/%2e%2e/secret.webp",
        b"/media/products/..%2f..%2fsecret.webp",
        b"/media/..%5csecret.webp",
        b"/media//etc/passwd",
        b"/media/%2fetc%2fpasswd",
    ):
        status, body = _raw_get(server.url, raw.decode())
        assert status == 404, raw
        assert json.loads(body)["error"] == "not_found"
        assert b"top secret" not in body


def test_vitrine_seed_command_runs_twice(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VITRINE_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": "",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "live.cli", "seed"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append(done.stdout)
    assert "stores 16" in outputs[0] and "rows added 0" in outputs[1]
    assert (tmp_path / "data" / "vitrine.db").exists()
    tiles = sum(len(p.colours) for p in data.PRODUCTS)
    assert len(list((tmp_path / "data" / "media" / "products").glob("*.webp"))) == tiles


async def test_concurrent_seeds_both_succeed(database_url: str, tmp_path: Path) -> None:
    """Two processes starting with ``--demo`` at once: one inserts, the other finds it done."""
    dbs = [Database(database_url), Database(database_url)]
    try:
        results = await asyncio.gather(*(demo.seed(db, str(tmp_path)) for db in dbs))
        counts = await _table_counts(dbs[0])
    finally:
        for db in dbs:
            await db.dispose()
    assert sum(r["rows added"] for r in results) == sum(counts.values())
    assert counts["stores"] == 16 and counts["clients"] == 200
