"""Benchmark of the WebRTC relay: one synthetic 720p30 ~2 Mbit/s publisher, N WHEP viewers.

    python bench/relay.py                      # short default: N = 10, 50; one relay worker
    python bench/relay.py --viewers 10,50,100,200 --workers 1,2 --window 10

The server runs as its own process (loopback ICE). Viewers run in separate processes and
receive without decoding. For each N it prints the server's CPU per viewer, viewers per
core, server memory per viewer, time to first frame (p50/p95) of joining viewers, and
packets forwarded/lost. CPU per viewer is measured against the same server with no
viewers, so the publisher's own cost is not counted. The machine is shared: the viewer
processes compete with the server for the same cores, so treat figures as indicative.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rtc import hooks
from rtc.client import negotiate, peer
from rtc.synthetic import ClipTrack, encode_clip, encode_tone, honour_keyframe_requests
from tests.support.server import server_command

ADMIN = "bench-admin-" + "z" * 32
CLIP_CACHE = Path(tempfile.gettempdir()) / "vitrine-bench-vp8-720p.json"


def clip_720p() -> list[bytes]:
    if CLIP_CACHE.exists():
        return [bytes.fromhex(h) for h in json.loads(CLIP_CACHE.read_text())]
    frames = encode_clip("vp8", 1280, 720, 30, 60, 2_000_000)
    CLIP_CACHE.write_text(json.dumps([f.hex() for f in frames]))
    return frames


# -- viewer processes -----------------------------------------------------------------------------
def go_light(pc: Any, state: dict[str, int]) -> None:
    """After its first frame a viewer only counts the RTP/RTCP datagrams it gets (no SRTP, no
    parsing) and still answers STUN (consent freshness), so hundreds of viewers fit beside the
    server on a small machine. The relay cannot tell: what it sends does not change."""
    state["datagrams"] = 0
    for t in pc.getTransceivers():
        for proto in t.receiver.transport.transport._connection._protocols:
            original = proto.datagram_received

            def light(data: bytes, addr: Any, original: Any = original) -> None:
                if data and 128 <= data[0] <= 191:
                    state["datagrams"] += 1
                else:
                    original(data, addr)

            proto.datagram_received = light
        break  # one bundled transport


async def viewer_proc(url: str, sid: str, count: int, stagger: float) -> None:
    """Open ``count`` viewers one after another; report each one's time to first frame; on stdin EOF,
    report packets received/lost and exit."""
    with hooks.loopback_only(True):
        results: list[dict[str, Any]] = []
        pcs = []
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            for _ in range(count):
                pc = peer()
                first = asyncio.get_running_loop().create_future()
                state = {"frames": 0}

                def sink(
                    codec: Any, frame: Any, first: Any = first, state: Any = state, pc: Any = pc
                ) -> None:
                    state["frames"] += 1
                    if not first.done():
                        first.set_result(time.monotonic())
                        go_light(pc, state)

                t = pc.addTransceiver("video", direction="recvonly")
                hooks.tap_receiver(t.receiver, sink, lambda: None)
                pc.addTransceiver("audio", direction="recvonly")
                start = time.monotonic()
                try:
                    await negotiate(http, f"/whep/{sid}", pc, None)
                    got = await asyncio.wait_for(first, 20)
                    results.append({"ttff": got - start, "state": state, "pc": pc})
                except Exception as exc:
                    results.append({"error": repr(exc)[:200], "state": state, "pc": pc})
                pcs.append(pc)
                print(
                    json.dumps(
                        {
                            "joined": 1,
                            "ttff": results[-1].get("ttff"),
                            "error": results[-1].get("error"),
                        }
                    ),
                    flush=True,
                )
                await asyncio.sleep(stagger)
            print(json.dumps({"ready": True}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            received = 0
            for r in results:
                received += r["state"].get("datagrams", 0)
                for s in (await r["pc"].getStats()).values():
                    if getattr(s, "type", "") == "transport":
                        received += s.packetsReceived or 0
            print(json.dumps({"done": True, "received": received}), flush=True)
            for pc in pcs:
                await pc.close()


# -- orchestration --------------------------------------------------------------------------------
def start_server(workers: int, max_viewers: int, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = 18000 + os.getpid() % 1000
    env = {
        **os.environ,
        "VITRINE_DATA_DIR": str(data),
        "VITRINE_ADMIN_TOKEN": ADMIN,
        "VITRINE_RTC_LOOPBACK": "1",
        "VITRINE_RELAY_WORKERS": str(workers),
        "VITRINE_RELAY_MAX_VIEWERS": str(max_viewers),
        "VITRINE_WHEP_JOINS_PER_MINUTE": "0",  # every simulated viewer joins from 127.0.0.1
        "VITRINE_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "VITRINE_DATABASE_URL": "",
        "DATABASE_URL": f"sqlite:///{data}/bench.db",
    }
    subprocess.run(
        [sys.executable, "-m", "live.cli", "db", "upgrade"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    proc = subprocess.Popen(
        server_command(port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(data / "server.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {(data / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)
    raise SystemExit("server did not start")


def make_session(url: str) -> tuple[str, str]:
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30) as c:
        store = c.post(
            "/api/stores", json={"name": "Bench", "city": "Paris", "country": "FR"}
        ).json()
        staff = c.post(
            "/api/staff", json={"name": "Host", "role": "associate", "store_id": store["id"]}
        ).json()
        sess = c.post(
            "/api/sessions",
            json={
                "title": "Bench",
                "kind": "public",
                "store_id": store["id"],
                "host_id": staff["id"],
            },
        ).json()
        return sess["id"], sess["host_token"]


def family(proc: psutil.Process) -> list[psutil.Process]:
    return [proc, *proc.children(recursive=True)]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


async def publisher_proc(url: str, sid: str, token: str) -> None:
    """Publish until stdin closes (its own process, so viewers' load does not slow the host).

    Its ICE consent follows RFC 7675 as browsers' and libdatachannel's do (aiortc's own gives
    up after six answers later than 0.5 s, which a saturated benchmark machine produces)."""
    hooks.tolerant_ice_consent()
    with hooks.loopback_only(True):
        pc = await publish(url, sid, token, clip_720p())
        print(json.dumps({"published": True}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await pc.close()


async def publish(url: str, sid: str, token: str, frames: list[bytes]) -> Any:
    video = ClipTrack("video", frames, 30, 90000)
    audio = ClipTrack("audio", encode_tone(50), 50, 48000)
    pc = peer()
    t = pc.addTransceiver(video, direction="sendonly")
    from aiortc import RTCRtpSender

    t.setCodecPreferences(
        [
            c
            for c in RTCRtpSender.getCapabilities("video").codecs
            if c.mimeType.lower() in ("video/vp8", "video/rtx")
        ]
    )
    honour_keyframe_requests(t.sender, video)
    pc.addTransceiver(audio, direction="sendonly")
    if os.environ.get("BENCH_DEBUG"):
        pc.on(
            "connectionstatechange",
            lambda: print(
                f"        publisher {pc.connectionState} (ice {pc.iceConnectionState})", flush=True
            ),
        )
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await negotiate(http, f"/whip/{sid}", pc, token)
    return pc


def spawn_viewers(
    url: str, sid: str, n: int, procs: int, stagger: float
) -> list[subprocess.Popen[str]]:
    out = []
    per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    for count in per:
        if count:
            out.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--viewer-proc", url, sid, str(count), str(stagger)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            )
    return out


async def read_until(proc: subprocess.Popen[str], key: str, sink: list[dict[str, Any]]) -> None:
    loop = asyncio.get_running_loop()
    assert proc.stdout is not None
    while True:
        line = await loop.run_in_executor(None, proc.stdout.readline)
        if not line:
            return
        if not line.startswith("{"):
            print(line.rstrip(), flush=True)  # a debug line
            continue
        msg = json.loads(line)
        sink.append(msg)
        if msg.get(key):
            return


async def server_sent(url: str, sid: str) -> dict[str, int]:
    async with httpx.AsyncClient(
        base_url=url, timeout=30, headers={"authorization": f"Bearer {ADMIN}"}
    ) as h:
        st = (await h.get(f"/api/sessions/{sid}/stream")).json()
    items = st["viewers"]["items"]
    if st["host"] != "publishing" or os.environ.get("BENCH_DEBUG"):
        print(f"        host is {st['host']}: {st['publisher']}", flush=True)
    return {
        "count": st["viewers"]["count"],
        "packets_sent": sum(i["packets_sent"] for i in items),
        "total_sent": sum(i["packets_sent"] for i in items),
        "dropped": sum(i["frames_dropped"] for i in items),
        "host_frames": (st["publisher"] or {}).get("frames", 0),
        "lag_ms": [x["lag_ms"] for x in st.get("load", [])],
        "host_state": st["host"],
    }


async def run_case(
    url: str,
    server: psutil.Process,
    sid: str,
    n: int,
    window: float,
    procs: int,
    stagger: float,
    base_cpu: float,
    base_rss: int,
    publisher: int = 0,
) -> dict[str, Any]:
    viewers = spawn_viewers(url, sid, n, procs, stagger)
    msgs: list[dict[str, Any]] = []
    await asyncio.gather(*(read_until(v, "ready", msgs) for v in viewers))
    ttff = sorted(m["ttff"] * 1000 for m in msgs if m.get("ttff") is not None)
    errors = [m["error"] for m in msgs if m.get("error")]
    await asyncio.sleep(2)  # settle
    fam = family(server)
    others = [psutil.Process(v.pid) for v in viewers] + (
        [psutil.Process(publisher)] if publisher else []
    )
    s0 = await server_sent(url, sid)
    each0 = [cpu_seconds([p]) for p in fam + others]
    c0, t0 = cpu_seconds(fam), time.monotonic()
    await asyncio.sleep(window)
    c1, t1 = cpu_seconds(fam), time.monotonic()
    each = [(cpu_seconds([p]) - e) / (t1 - t0) for p, e in zip(fam + others, each0, strict=True)]
    s1 = await server_sent(url, sid)
    mem = rss(family(server))
    cores = (c1 - c0) / (t1 - t0)
    done: list[dict[str, Any]] = []
    s2 = await server_sent(url, sid)
    for v in viewers:
        assert v.stdin is not None
        v.stdin.close()
    await asyncio.gather(*(read_until(v, "done", done) for v in viewers))
    for v in viewers:
        v.wait(30)
    received = sum(d.get("received", 0) for d in done)
    lost = max(0, s2["total_sent"] - received)
    per_viewer = max(cores - base_cpu, 1e-9) / max(n - len(errors), 1)
    sent = s1["packets_sent"] - s0["packets_sent"]
    per_packet = max(c1 - c0 - base_cpu * (t1 - t0), 1e-9) / max(sent, 1)
    return {
        "n": n,
        "sent_rate": sent / (t1 - t0) / max(n - len(errors), 1),
        "split": {
            "relay": [round(c, 2) for c in each[: len(fam)]],
            "viewer clients": round(sum(each[len(fam) : len(fam) + len(viewers)]), 2),
            "publisher": round(sum(each[len(fam) + len(viewers) :]), 2),
            "relay loop lag ms (worst, last 5 s)": s1["lag_ms"],
        },
        "us_per_packet": per_packet * 1e6,
        "watching": s1["count"],
        "dropped": s1["dropped"] - s0["dropped"],
        "host_fps": (s1["host_frames"] - s0["host_frames"]) / (t1 - t0),
        "host_state": s2["host_state"],
        "ok": n - len(errors),
        "errors": errors,
        "cores": cores,
        "cpu_per_viewer_pct": per_viewer * 100,
        "viewers_per_core": 1 / per_viewer,
        "mem_per_viewer_kb": (mem - base_rss) / max(n - len(errors), 1) / 1024,
        "ttff_p50": statistics.median(ttff) if ttff else None,
        "ttff_p95": ttff[min(len(ttff) - 1, int(len(ttff) * 0.95))] if ttff else None,
        "received": received,
        "lost": lost,
        "sent": s2["total_sent"],
    }


async def bench(args: argparse.Namespace) -> None:
    frames = clip_720p()  # encoded once and cached for the publisher process
    rate = sum(map(len, frames)) * 8 / (len(frames) / 30)
    print(
        f"publisher: VP8 1280x720 30 fps, {rate / 1e6:.2f} Mbit/s video + Opus; window {args.window}s; "
        f"{os.cpu_count()} cores (shared)\n"
    )
    header = (
        f"{'workers':>7} {'N':>5} {'ok':>5} {'srv cores':>9} {'cpu/viewer':>10} {'viewers/core':>12} "
        f"{'us/packet':>9} {'pkt/s/viewer':>12} {'norm v/core':>11} "
        f"{'mem/viewer':>10} {'ttff p50':>9} {'ttff p95':>9} {'sent':>8} {'lost':>6} "
        f"{'host fps':>8} {'dropped':>7}"
    )
    expected_pps = rate / 8 / 1100 + 50  # ~1100-byte video payloads, plus 50 Opus packets a second
    print(header)
    results: list[dict[str, Any]] = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            proc, url = start_server(workers, args.max_viewers, Path(tmp))
            try:
                server = psutil.Process(proc.pid)
                sid, token = make_session(url)
                pub = subprocess.Popen(
                    [sys.executable, __file__, "--publisher-proc", url, sid, token],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                await read_until(pub, "published", [])  # type: ignore[arg-type]
                await asyncio.sleep(3)
                fam = family(server)
                c0, t0 = cpu_seconds(fam), time.monotonic()
                await asyncio.sleep(args.window)
                base_cpu = (cpu_seconds(family(server)) - c0) / (time.monotonic() - t0)
                base_rss = rss(family(server))
                for n in args.viewers:
                    r = await run_case(
                        url,
                        server,
                        sid,
                        n,
                        args.window,
                        args.procs,
                        args.stagger,
                        base_cpu,
                        base_rss,
                        pub.pid,
                    )
                    p50 = f"{r['ttff_p50']:.0f} ms" if r["ttff_p50"] is not None else "-"
                    p95 = f"{r['ttff_p95']:.0f} ms" if r["ttff_p95"] is not None else "-"
                    norm = 1e6 / (r["us_per_packet"] * expected_pps)
                    print(
                        f"{workers:>7} {n:>5} {r['ok']:>5} {r['cores']:>9.2f} {r['cpu_per_viewer_pct']:>9.2f}% "
                        f"{r['viewers_per_core']:>12.0f} {r['us_per_packet']:>9.1f} {r['sent_rate']:>12.0f} "
                        f"{norm:>11.0f} {r['mem_per_viewer_kb']:>7.0f} KB {p50:>9} {p95:>9} "
                        f"{r['sent']:>8} {r['lost']:>6} {r['host_fps']:>8.1f} {r['dropped']:>7}"
                        + ("" if r["host_state"] == "publishing" else f"  host {r['host_state']}"),
                        flush=True,
                    )
                    results.append({"workers": workers, "norm": norm, **r})
                    print(f"        cores by process: {r['split']}", flush=True)
                    if r["errors"]:
                        kinds = Counter(
                            "503 relay_full" if "relay_full" in e else e[:120] for e in r["errors"]
                        )
                        print(f"        refused or failed: {dict(kinds)}")
                assert pub.stdin is not None
                pub.stdin.close()
                pub.wait(20)
            finally:
                proc.terminate()
                proc.wait(20)
                log = (Path(tmp) / "server.log").read_text(errors="replace").strip().splitlines()
                if log and os.environ.get("BENCH_DEBUG"):
                    print(
                        f"server log ({len(log)} lines):\n  "
                        + "\n  ".join(line[:300] for line in log if "uvicorn" not in line)
                    )
    if len({r["workers"] for r in results}) > 1:
        print("\ntwo or more relay processes against one, at each N:")
        for n in args.viewers:
            row = {r["workers"]: r for r in results if r["n"] == n}
            one = row.get(min(row))
            for w, r in sorted(row.items()):
                if one is None or r is one:
                    continue
                print(
                    f"  N={n}: {w} workers served {r['ok']} vs {one['ok']} "
                    f"({r['ok'] / max(one['ok'], 1):.2f}x); CPU per viewer "
                    f"{r['cpu_per_viewer_pct'] / max(one['cpu_per_viewer_pct'], 1e-9):.2f}x one worker's; "
                    f"capacity at {args.max_viewers}/process: {w * args.max_viewers} vs {args.max_viewers}"
                )
    print(
        "\nsrv cores: server CPU (all its processes) while N viewers watch; cpu/viewer excludes the "
        "no-viewer baseline; us/packet: server CPU per RTP packet sent to viewers; norm v/core: viewers "
        f"per core at {expected_pps:.0f} packets/s per viewer (what a viewer of this stream needs), from "
        "us/packet, so it holds even when starved viewer processes take fewer packets; ttff: WHEP POST to "
        "first video frame for viewers joining one by one; sent: RTP packets the relay sent to the viewers; lost: "
        "sent minus what the viewers' transports received (RTCP counted as received, so a lower bound)."
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--publisher-proc":
        asyncio.run(publisher_proc(sys.argv[2], sys.argv[3], sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--viewer-proc":
        url, sid, count, stagger = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
        asyncio.run(viewer_proc(url, sid, count, stagger))
        return
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--viewers", default="10,50", help="comma-separated viewer counts (default 10,50)"
    )
    p.add_argument("--workers", default="1", help="comma-separated relay worker counts (default 1)")
    p.add_argument("--window", type=float, default=5.0, help="CPU measurement window, seconds")
    p.add_argument(
        "--max-viewers",
        type=int,
        default=150,
        help="VITRINE_RELAY_MAX_VIEWERS per relay process (default 150, the server's default; "
        "the CPU limit VITRINE_RELAY_MAX_CPU stays at the server's default too)",
    )
    p.add_argument("--procs", type=int, default=4, help="viewer client processes")
    p.add_argument(
        "--stagger", type=float, default=0.05, help="seconds between joins in one viewer process"
    )
    args = p.parse_args()
    args.viewers = [int(x) for x in args.viewers.split(",")]
    args.workers = [int(x) for x in args.workers.split(",")]
    with hooks.loopback_only(True):
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
