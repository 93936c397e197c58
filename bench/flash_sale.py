"""Flash-sale benchmark: N buyers tap Buy on one product at the same moment.

    python bench/flash_sale.py                          # short default: N = 100 on SQLite and PostgreSQL
    python bench/flash_sale.py --buyers 100,500,1000    # the full run
    python bench/flash_sale.py --db postgresql --stock-ratio 0.2

The server runs as its own uvicorn process on a fresh database. Each buyer is a real viewer
(joined through the API, one-tap profile saved with the demo provider's test card). Then all N
send ``POST /api/orders`` at once (one product, ``stock = N * ratio`` units). For each run it
prints paid orders per second over the storm, p50/p99 latency of all answers, the answers by
status, and the oversold count: paid orders beyond the stock, plus any drift between stock
left and units sold (must be 0), and the server's CPU time per answer over the storm. The machine is
shared: treat timings as indicative. ``BENCH_PYSPY=/tmp/p.json`` records a py-spy profile (speedscope)
of the server during the storm of the last run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import services
from tests.support.factory import build_world
from tests.support.server import process_server

ADMIN = "bench-admin-" + "f" * 32
CARD = "4242424242424242"


async def make_buyers(url: str, session_id: str, n: int) -> list[str]:
    sem = asyncio.Semaphore(32)

    async def one() -> str:
        async with sem, httpx.AsyncClient(base_url=url, timeout=120) as c:
            token = (await c.post(f"/api/sessions/{session_id}/viewers", json={})).json()["token"]
            r = await c.put(
                "/api/me/profile",
                headers={"authorization": f"Bearer {token}"},
                json={
                    "name": "Buyer",
                    "delivery": {"method": "collect"},
                    "payment": {"provider": "demo", "card_number": CARD},
                },
            )
            r.raise_for_status()
            return str(token)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def post_json(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    """One HTTP/1.1 POST on its own connection, as a phone sends it; the status. A bare client: httpx's
    shared pool costs O(connections) per request, which at N = 500 burns more CPU than the server."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n{head}\r\n".encode()
            + body
        )
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        data = await reader.readexactly(length)
        if status not in (201, 409):
            print(f"  unexpected {status}: {data[:200]!r}", flush=True)
        return status
    finally:
        writer.close()


async def storm(
    url: str, session_id: str, product_id: str, tokens: list[str]
) -> tuple[float, list[Any]]:
    host, port = url.removeprefix("http://").split(":")
    start = asyncio.Event()
    body = orjson.dumps({"session_id": session_id, "items": [{"product_id": product_id, "qty": 1}]})

    async def buy(token: str) -> tuple[int, float]:
        await start.wait()
        t0 = time.perf_counter()
        status = await post_json(
            host,
            int(port),
            "/api/orders",
            body,
            {"authorization": f"Bearer {token}", "idempotency-key": uuid.uuid4().hex},
        )
        return status, time.perf_counter() - t0

    tasks = [asyncio.create_task(buy(t)) for t in tokens]
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    return time.perf_counter() - t0, results


def server_process(url: str) -> psutil.Process:
    """The uvicorn child process serving ``url``."""
    port = url.rsplit(":", 1)[1]
    for child in psutil.Process().children(recursive=True):
        if "uvicorn" in " ".join(child.cmdline()) and port in child.cmdline():
            return child
    raise RuntimeError(f"no server process for {url}")


def cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def database(kind: str, tmp: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        return services.sqlite_database(tmp), lambda: None
    url = services.postgres_database()
    return url, lambda: services.drop_postgres_database(url)


def run(kind: str, n: int, ratio: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vitrine-bench-") as tmp:
        url, cleanup = database(kind, Path(tmp))
        try:
            env = {
                "DATABASE_URL": url,
                "VITRINE_DATA_DIR": tmp,
                "VITRINE_SECRET_KEY": "b" * 40,
                "VITRINE_ADMIN_TOKEN": ADMIN,
                "VITRINE_LOG_LEVEL": "WARNING",
                "VITRINE_LOG_FORMAT": "text",
            }
            with process_server(env, extra_args=["--log-level", "warning"]) as srv:
                world = build_world(srv, ADMIN)
                product, store = world["products"][0], world["store"]["id"]
                stock = max(1, int(n * ratio))
                with srv.client(ADMIN) as staff:
                    staff.put(
                        f"/api/products/{product['id']}/stock",
                        json={"store_id": store, "quantity": stock},
                    ).raise_for_status()
                sid = world["public"]["id"]
                tokens = asyncio.run(make_buyers(srv.url, sid, n))
                proc = server_process(srv.url)
                spy = None
                if os.environ.get("BENCH_PYSPY"):
                    spy = subprocess.Popen(
                        [
                            "py-spy",
                            "record",
                            "-p",
                            str(proc.pid),
                            "-f",
                            "speedscope",
                            "-r",
                            "200",
                            "-o",
                            os.environ["BENCH_PYSPY"],
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    time.sleep(1)
                me = psutil.Process()
                cpu0, mine0 = cpu_seconds(proc), cpu_seconds(me)
                wall, results = asyncio.run(storm(srv.url, sid, product["id"], tokens))
                cpu, mine = cpu_seconds(proc) - cpu0, cpu_seconds(me) - mine0
                if spy is not None:
                    spy.send_signal(2)  # SIGINT: py-spy writes the profile and exits
                    spy.wait(60)
                with srv.client(ADMIN) as staff:
                    left = sum(
                        r["quantity"]
                        for r in staff.get(f"/api/products/{product['id']}").json()["stock"]
                        if r["store_id"] == store
                    )
        finally:
            cleanup()
    statuses = Counter(code for code, _ in results)
    latencies = sorted(lat for _, lat in results)
    paid = statuses.get(201, 0)
    return {
        "db": kind,
        "buyers": n,
        "stock": stock,
        "paid": paid,
        "sold_out": statuses.get(409, 0),
        "other": sum(v for k, v in statuses.items() if k not in (201, 409)),
        "orders_per_s": paid / wall,
        "answers_per_s": n / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "cpu_ms_per_answer": cpu * 1000 / n,
        "client_cpu_ms": mine * 1000 / n,
        "oversold": max(0, paid - stock) + abs((stock - left) - paid),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--buyers", default="100", help="comma-separated N (default 100; full: 100,500,1000)"
    )
    ap.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both")
    ap.add_argument(
        "--stock-ratio", type=float, default=0.5, help="units on sale per buyer (default 0.5)"
    )
    args = ap.parse_args()
    header = (
        f"{'db':<11}{'buyers':>7}{'stock':>7}{'paid':>6}{'409':>6}{'other':>6}{'orders/s':>10}"
        f"{'answers/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms/ans':>11}{'client ms':>10}{'oversold':>9}"
    )
    print(header)
    failed = False
    try:
        for kind in args.db.split(","):
            for n in (int(x) for x in args.buyers.split(",")):
                r = run(kind.strip(), n, args.stock_ratio)
                failed |= r["oversold"] != 0 or r["other"] != 0
                print(
                    f"{r['db']:<11}{r['buyers']:>7}{r['stock']:>7}{r['paid']:>6}{r['sold_out']:>6}{r['other']:>6}"
                    f"{r['orders_per_s']:>10.1f}{r['answers_per_s']:>11.1f}{r['p50_ms']:>9.0f}{r['p99_ms']:>9.0f}"
                    f"{r['cpu_ms_per_answer']:>11.1f}{r['client_cpu_ms']:>10.1f}{r['oversold']:>9}",
                    flush=True,
                )
    finally:
        services.drop_template()
    if failed:
        sys.exit("FAILED: oversold or unexpected answers")


if __name__ == "__main__":
    main()
