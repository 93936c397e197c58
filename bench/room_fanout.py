"""Benchmark of the room fan-out: N WebSocket viewers, a few chatters at a fixed rate.

    python bench/room_fanout.py                         # default: ~10 s per configuration
    python bench/room_fanout.py --sizes 2000 --duration 30 --rate 40
    python bench/room_fanout.py --sizes 100 --skip-redis --skip-stall
    python bench/room_fanout.py --sizes 2000 --acks --skip-redis --skip-stall   # cost of durable acks

Each configuration starts fresh server processes (``uvicorn --ws websockets-sansio
--ws-per-message-deflate false``), connects N viewers from separate client processes (the
``websockets`` sans-I/O client on asyncio, no task per connection), waits until they are idle,
then chatters send ``rate`` chat messages per second for ``duration`` seconds. It prints:
delivered chat events per second, completeness (events received / (N * sent)), p50/p99 latency
(send → receive, same clock), server CPU (% of one core, all server processes), and server
memory per idle connection (RSS growth / N). Configurations: N on one process, the largest N on
two processes sharing Redis, and the largest N with one extra viewer that never reads.

``--acks`` runs each size twice, in one run: with durable acknowledgements (the default: a chat
reaches anyone on the process, its sender included, only once it is committed) and with
``VITRINE_ROOM_ACK_BEFORE_COMMIT=true`` (echoed before the commit, for this comparison only),
then prints both and the cost of durability: deliveries/s and p99 of durable against early.

The machine is small and shared: the client processes compete with the server for the same
cores, so latency includes client-side queueing; treat figures as indicative.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.server import LiveServer, free_port, server_command, wait_for

ADMIN = "bench-admin-" + "z" * 32
SECRET = "bench-secret-" + "s" * 32


# -- client processes ------------------------------------------------------------------------------
def room_uri(uri: str) -> tuple[str, list[Any]]:
    """``…?token=<t>`` as the bench writes it → the URL without it and the room's subprotocols
    (the server takes the token only as a ``vitrine.token.<t>`` subprotocol)."""
    from websockets.typing import Subprotocol

    base, _, token = uri.partition("?token=")
    return base, [Subprotocol("vitrine.room"), Subprotocol("vitrine.token." + token)]


class Viewer(asyncio.Protocol):
    """One viewer. websockets' sans-I/O client makes and checks the handshake; the frames that
    follow (unmasked server frames) are cut by a minimal parser, because websockets' generic
    parser costs ~35 us per frame and, with 2,000 viewers on this 2-core machine, the clients
    would otherwise use more CPU than the server under test."""

    def __init__(self, uri: str, stats: dict[str, Any], *, stalled: bool = False) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        base, protocols = room_uri(uri)
        self.ws = ClientProtocol(parse_uri(base), subprotocols=protocols, max_size=None)
        self.stats, self.stalled = stats, stalled
        self.open: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.seen = 0
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.handshake = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        for data in self.ws.data_to_send():
            transport.write(data)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if self.handshake:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            from websockets.http11 import Response

            self.ws.receive_data(buf[: end + 4])
            ok = any(
                isinstance(ev, Response) and ev.status_code == 101
                for ev in self.ws.events_received()
            )
            self.handshake = False
            if not ok and not self.open.done():
                self.open.set_result(False)
            buf = buf[end + 4 :]
        now = time.time()
        pos, n = 0, len(buf)
        while n - pos >= 2:
            opcode, length = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if n - pos < head + length:
                break
            payload = buf[pos + head : pos + head + length]
            pos += head + length
            if opcode == 1:
                self._events(payload, now)
            elif opcode == 8:
                self.stats["closed"] += 1
        self.buf = buf[pos:]

    def _events(self, payload: bytes, now: float) -> None:
        if not self.open.done():  # the hello: the server has admitted this viewer
            self.open.set_result(True)
            if self.stalled and self.transport is not None:
                self.transport.pause_reading()
            return
        lat = self.stats["lat"]
        for e in orjson.loads(payload):
            if e["type"] == "chat":
                self.seen += 1
                lat.append(now - float(e["text"].split(" ", 1)[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_result(False)


async def _viewers(targets: list[tuple[int, str]], pipe: Pipe, stalled: bool) -> None:
    loop = asyncio.get_running_loop()
    stats: dict[str, Any] = {"lat": [], "closed": 0}
    viewers: list[Viewer] = []
    sem = asyncio.Semaphore(50)

    async def one(port: int, uri: str) -> None:
        async with sem:
            sock = None
            if stalled:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(("127.0.0.1", port))
                sock.setblocking(False)
            v = Viewer(uri, stats, stalled=stalled)
            if sock is not None:
                await loop.create_connection(lambda: v, sock=sock)
            else:
                await loop.create_connection(lambda: v, "127.0.0.1", port)
            await asyncio.wait_for(v.open, 30)
            viewers.append(v)

    await asyncio.gather(*(one(port, uri) for port, uri in targets))
    pipe.send({"connected": sum(1 for v in viewers if v.open.result())})
    await loop.run_in_executor(None, pipe.recv)
    stats["lat"] = []  # the warm-up window is not measured
    for v in viewers:
        v.seen = 0
    await loop.run_in_executor(None, pipe.recv)
    pipe.send({"seen": [v.seen for v in viewers], "lat": stats["lat"], "closed": stats["closed"]})


def viewer_process(targets: list[tuple[int, str]], pipe: Pipe, stalled: bool) -> None:
    asyncio.run(_viewers(targets, pipe, stalled))


# -- servers -----------------------------------------------------------------------------------------
@dataclass
class Server:
    live: LiveServer
    pid: int

    @property
    def port(self) -> int:
        return int(self.live.url.rsplit(":", 1)[1])

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu(self) -> float:
        t = psutil.Process(self.pid).cpu_times()
        return float(t.user + t.system)

    def metric(self, name: str) -> float:
        for line in httpx.get(self.live.url + "/metrics", timeout=10).text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0


@contextmanager
def server(env: dict[str, str], log_dir: str) -> Iterator[Server]:
    """``uvicorn --ws websockets-sansio --ws-per-message-deflate false`` in its own process.

    Its output goes to a file in ``log_dir`` (the last line is printed after the run), and the
    pid is kept for CPU and memory readings."""
    port = free_port()
    cmd = server_command(port, "--log-level", "warning")
    log_path = Path(log_dir) / f"server-{port}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
        )
        live = LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", None)  # type: ignore[arg-type]
        try:
            wait_for(lambda: _up(proc, live.url), 60, interval=0.1, what="server start")
            yield Server(live, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    lines = log_path.read_text(errors="replace").splitlines()
    if lines:
        print(f"  server log ({len(lines)} lines), last: {lines[-1][:300]}", flush=True)


def _up(proc: subprocess.Popen[bytes], url: str) -> bool:
    if proc.poll() is not None:
        raise RuntimeError("server exited")
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# -- set-up --------------------------------------------------------------------------------------------
async def make_world(database_url: str, viewers: int) -> tuple[str, list[str]]:
    """A store, a host, a live session and ``viewers`` viewer tokens, written straight to the database."""
    from live.auth import Tokens
    from live.db import Database, new_id
    from live.models import LiveSession, SessionViewer, StaffMember, Store

    db = Database(database_url)
    sid = new_id("se")
    ids = [new_id("vw") for _ in range(viewers)]
    async with db.write() as s:
        store = Store(id=new_id("st"), name="Bench store", blocked_words=[])
        host = StaffMember(id=new_id("sf"), name="Bench host", role="associate", store_id=store.id)
        s.add(store)
        await s.flush()
        s.add(host)
        await s.flush()
        s.add(
            LiveSession(
                id=sid,
                title="Bench",
                kind="public",
                store_id=store.id,
                host_id=host.id,
                status="live",
            )
        )
        await s.flush()
        s.add_all(
            [
                SessionViewer(id=v, session_id=sid, anon_key=v, name=f"viewer {i}")
                for i, v in enumerate(ids)
            ]
        )
    await db.dispose()
    tokens = Tokens(SECRET)
    return sid, [tokens.viewer(sid, v) for v in ids]


# -- one configuration -----------------------------------------------------------------------------
async def chatters(
    servers: list[Server], sid: str, tokens: list[str], rate: float, duration: float
) -> int:
    from websockets.asyncio.client import connect

    conns = []
    for t in tokens:
        base, protocols = room_uri(f"ws://127.0.0.1:{servers[0].port}/ws/sessions/{sid}?token={t}")
        conns.append(await connect(base, subprotocols=protocols, compression=None))
    drains = [asyncio.create_task(_drain(c)) for c in conns]
    interval = 1 / rate
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < duration:
        due = start + sent * interval
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        c = conns[sent % len(conns)]
        await c.send(orjson.dumps({"type": "chat", "text": f"{sent} {time.time():.6f}"}).decode())
        sent += 1
    for c in conns:
        await c.close()
    for d in drains:
        d.cancel()
    return sent


async def _drain(c: Any) -> None:
    async for _ in c:
        pass


def run_config(
    label: str,
    servers: list[Server],
    sid: str,
    tokens: list[str],
    args: argparse.Namespace,
    stalled_token: str | None = None,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    n = len(tokens)
    procs, pipes = [], []
    groups = max(1, min(args.client_procs, n // 50 or 1))
    rss0 = sum(s.rss() for s in servers)
    for g in range(groups):
        ports = [servers[i % len(servers)].port for i in range(len(tokens[g::groups]))]
        targets = [
            (port, f"ws://127.0.0.1:{port}/ws/sessions/{sid}?token={t}")
            for port, t in zip(ports, tokens[g::groups], strict=True)
        ]
        mine, theirs = ctx.Pipe()
        p = ctx.Process(target=viewer_process, args=(targets, theirs, False), daemon=True)
        p.start()
        procs.append(p)
        pipes.append(mine)
    if stalled_token:
        mine, theirs = ctx.Pipe()
        uri = f"ws://127.0.0.1:{servers[0].port}/ws/sessions/{sid}?token={stalled_token}"
        p = ctx.Process(
            target=viewer_process, args=([(servers[0].port, uri)], theirs, True), daemon=True
        )
        p.start()
        procs.append(p)
        pipes.append(mine)
    connected = sum(pp.recv()["connected"] for pp in pipes)
    time.sleep(2.0)  # idle: let allocations settle
    rss1 = sum(s.rss() for s in servers)
    for pp in pipes:
        pp.send("measure")
    clients = [psutil.Process(p.pid) for p in procs]
    ccpu0 = sum(c.cpu_times().user + c.cpu_times().system for c in clients)
    spy = None
    if os.environ.get("BENCH_PYSPY"):  # profile the (first) server during the measured window
        spy = subprocess.Popen(
            [
                "py-spy",
                "record",
                "-p",
                str(servers[0].pid),
                "-d",
                str(int(args.duration)),
                "-f",
                "speedscope",
                "-o",
                os.environ["BENCH_PYSPY"],
                "-r",
                "200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    cpu0, t0 = sum(s.cpu() for s in servers), time.monotonic()
    chat_tokens = tokens[: args.chatters]  # chatters are viewers too (they also receive)
    sent = asyncio.run(chatters(servers, sid, chat_tokens, args.rate, args.duration))
    cpu1, t1 = sum(s.cpu() for s in servers), time.monotonic()
    ccpu1 = sum(c.cpu_times().user + c.cpu_times().system for c in clients)
    time.sleep(args.drain)
    if spy is not None:
        spy.wait(30)
    for pp in pipes:
        pp.send("stop")
    results = [pp.recv() for pp in pipes]
    for p in procs:
        p.join(10)
    normal = results[:groups]
    seen = [x for r in normal for x in r["seen"]]
    lat = sorted(x for r in normal for x in r["lat"])
    expected = sent * len(seen)
    delivered = sum(seen)
    out = {
        "config": label,
        "viewers": connected,
        "sent": sent,
        "delivered/s": delivered / (t1 - t0),
        "complete": delivered / expected if expected else 0.0,
        "p50 ms": 1000 * lat[len(lat) // 2] if lat else float("nan"),
        "p99 ms": 1000 * lat[int(len(lat) * 0.99)] if lat else float("nan"),
        "cpu %": 100 * (cpu1 - cpu0) / (t1 - t0),
        "client cpu %": 100 * (ccpu1 - ccpu0) / (t1 - t0),
        "KB/conn": (rss1 - rss0) / 1024 / max(1, connected),
        "dropped": sum(s.metric("vitrine_ws_dropped_slow_total") for s in servers),
        "commit ms": 1000
        * sum(s.metric("vitrine_room_commit_seconds_sum") for s in servers)
        / max(1.0, sum(s.metric("vitrine_room_commit_seconds_count") for s in servers)),
    }
    if stalled_token:
        out["stalled closed"] = results[-1]["closed"]
    return out


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = [
        "config",
        "viewers",
        "sent",
        "delivered/s",
        "complete",
        "p50 ms",
        "p99 ms",
        "cpu %",
        "client cpu %",
        "KB/conn",
        "dropped",
        "commit ms",
        "stalled closed",
    ]
    cols = [c for c in cols if any(c in r for r in rows)]
    print(" | ".join(f"{c:>14}" for c in cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(
                f"{v:>14.3f}"
                if c == "complete"
                else f"{v:>14.1f}"
                if isinstance(v, float)
                else f"{v!s:>14}"
            )
        print(" | ".join(cells), flush=True)


def print_ack_cost(durable: dict[str, Any], early: dict[str, Any]) -> None:
    """Durable acknowledgements against acks before commit: throughput lost, p99 added."""
    rate = durable["delivered/s"] / early["delivered/s"] if early["delivered/s"] else float("nan")
    p99 = durable["p99 ms"] / early["p99 ms"] if early["p99 ms"] else float("nan")
    print(
        f"durable acks, N={durable['viewers']}: deliveries/s {durable['delivered/s']:.0f} vs "
        f"{early['delivered/s']:.0f} before commit (ratio {rate:.3f}, cost {100 * (1 - rate):.1f} %); "
        f"p99 {durable['p99 ms']:.1f} ms vs {early['p99 ms']:.1f} ms (ratio {p99:.3f}, "
        f"cost {100 * (p99 - 1):.1f} %); p50 {durable['p50 ms']:.1f} vs {early['p50 ms']:.1f} ms; "
        f"target: cost <= 10 %",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="100,1000,2000", help="viewer counts on one process")
    ap.add_argument(
        "--rate", type=float, default=40.0, help="chat messages per second (all chatters)"
    )
    ap.add_argument(
        "--duration", type=float, default=10.0, help="seconds of chat per configuration"
    )
    ap.add_argument(
        "--drain", type=float, default=2.0, help="seconds to wait for stragglers after sending"
    )
    ap.add_argument("--chatters", type=int, default=4)
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--database", default="", help="DATABASE_URL (default: a fresh SQLite file)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--skip-redis", action="store_true")
    ap.add_argument("--skip-stall", action="store_true")
    ap.add_argument(
        "--acks",
        action="store_true",
        help="also run each size with acks before commit and print the cost of durable acks",
    )
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    biggest = max(sizes)
    with tempfile.TemporaryDirectory(prefix="vitrine-bench-") as tmp:
        url = args.database or f"sqlite:///{tmp}/bench.db"
        from live.schema import upgrade

        upgrade(url)
        sid, tokens = asyncio.run(make_world(url, biggest + 1))
        env = {
            "DATABASE_URL": url,
            "VITRINE_SECRET_KEY": SECRET,
            "VITRINE_ADMIN_TOKEN": ADMIN,
            "VITRINE_DATA_DIR": tmp,
            "VITRINE_RATE_LIMIT_MESSAGES": "1000000",
            "VITRINE_LOG_LEVEL": "WARNING",
            "VITRINE_REDIS_PREFIX": "bench" + secrets.token_hex(3),
        }
        print(
            f"room fan-out: rate {args.rate:g} msg/s, {args.duration:g} s per configuration, "
            f"{psutil.cpu_count()} cores, SQLite={url.startswith('sqlite')}",
            flush=True,
        )
        rows = []
        pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for n in sizes:
            with server(env, tmp) as s:
                rows.append(run_config(f"1 proc, N={n}", [s], sid, tokens[:n], args))
            print_table(rows[-1:])
            if args.acks:
                early_env = {**env, "VITRINE_ROOM_ACK_BEFORE_COMMIT": "true"}
                with server(early_env, tmp) as s:
                    rows.append(run_config(f"1 proc, N={n}, early ack", [s], sid, tokens[:n], args))
                print_table(rows[-1:])
                pairs.append((rows[-2], rows[-1]))
        if not args.skip_stall:
            with server(env, tmp) as s:
                rows.append(
                    run_config(
                        f"1 proc, N={biggest}+stalled",
                        [s],
                        sid,
                        tokens[:biggest],
                        args,
                        stalled_token=tokens[biggest],
                    )
                )
        if not args.skip_redis:
            renv = {**env, "REDIS_URL": args.redis}
            with ExitStack() as stack:
                a, b = (
                    stack.enter_context(server(renv, tmp)),
                    stack.enter_context(server(renv, tmp)),
                )
                rows.append(
                    run_config(f"2 procs+Redis, N={biggest}", [a, b], sid, tokens[:biggest], args)
                )
        print()
        print_table(rows)
        for durable, early in pairs:
            print_ack_cost(durable, early)


if __name__ == "__main__":
    main()
