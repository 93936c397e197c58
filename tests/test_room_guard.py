"""Bad input and moderation over real WebSockets: tokens, frames, limits, mutes and bans."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from live.auth import Tokens
from live.config import Settings
from tests.conftest import ADMIN_TOKEN, SECRET
from tests.support.factory import build_world
from tests.support.room import close_all, host_token, join, open_room, viewer
from tests.support.server import LiveServer, thread_server


async def test_refused_tokens_get_clear_close_codes(
    server: LiveServer, world: dict[str, Any]
) -> None:
    pub, priv = world["public"]["id"], world["private"]["id"]
    tokens = Tokens(SECRET)
    other = await join(server, pub, "Ana")
    cases = [
        (priv, None, 4401),  # private session without a token
        (pub, None, 4401),
        (pub, "garbage", 4401),
        (pub, tokens.viewer(pub, other["viewer_id"], ttl=-5), 4401),  # expired
        (priv, other["token"], 4403),  # another session's viewer token
        (priv, host_token(world, "public"), 4403),  # another session's host token
        (pub, tokens.viewer(pub, "vw_nobody"), 4403),
        ("se_missing", world["admin"], 4404),
    ]
    for sid, token, code in cases:
        c = await open_room(server, sid, token)
        assert await c.closed() == code, (sid, token, c.close_reason)
        assert c.close_reason and not c.events
    bad_after = await open_room(server, pub, other["token"], after=-1)
    assert await bad_after.closed() == 4400
    ok = await open_room(server, priv, host_token(world, "private"))
    staff = await open_room(server, priv, world["admin"])
    assert ok.hello["role"] == "host" and staff.hello["role"] == "staff"
    await close_all(ok, staff)


async def test_malformed_frames_are_answered_and_the_socket_kept(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid = world["public"]["id"]
    ana, bo = await viewer(server, sid, "Ana"), await viewer(server, sid, "Bo")
    limit = server.settings.max_frame_bytes
    try:
        cases: list[tuple[str | bytes, str]] = [
            ("{not json", "invalid_json"),
            (b"\xff\xfe", "invalid_json"),
            ("[1, 2]", "invalid_frame"),
            ('{"text": "no type"}', "invalid_frame"),
            ('{"type": "dance"}', "unknown_type"),
            ('{"type": "chat"}', "invalid"),
            ('{"type": "chat", "text": 5}', "invalid"),
            ('{"type": "chat", "text": "   "}', "invalid"),
            ('{"type": "react", "kind": "bomb"}', "invalid"),
            ('{"type": "vote", "question_id": ""}', "invalid"),
            ('{"type": "chat", "text": "' + "x" * (limit + 10) + '"}', "frame_too_large"),
            ('{"type": "chat", "text": "' + "y" * 501 + '"}', "text_too_long"),
            ('{"type": "chat", "text": "buy SpamWord now"}', "blocked_word"),
        ]
        for frame, code in cases:
            await ana.send_raw(frame)
            err = await ana.wait(
                lambda e, c=code: e.get("type") == "error" and e["error"] == c, code
            )
            assert err["detail"]
            ana.events.remove(err)
        await ana.send("chat", text="still here", ref="r1")
        await bo.wait_type("chat", text="still here")
        await ana.send("dance", ref="r2")
        assert (await ana.error("unknown_type"))["ref"] == "r2"
        assert not [e for e in bo.events if e["type"] == "error"]
        assert [e["text"] for e in bo.of("chat")] == ["still here"]
    finally:
        await close_all(ana, bo)


async def test_viewer_cannot_send_host_commands(server: LiveServer, world: dict[str, Any]) -> None:
    sid = world["public"]["id"]
    ana = await viewer(server, sid)
    try:
        for cmd in (
            {"type": "pin", "product_id": world["products"][0]["id"]},
            {"type": "unpin"},
            {"type": "answer", "question_id": "qu_x"},
            {"type": "delete", "message_id": "ch_x"},
            {"type": "mute", "viewer_id": "vw_x", "minutes": 5},
            {"type": "ban", "viewer_id": "vw_x"},
        ):
            await ana.send(**cmd)
            err = await ana.error("host_only")
            ana.events.remove(err)
        assert not ana.of("pin")
    finally:
        await ana.close()


async def test_unknown_ids_are_errors(server: LiveServer, world: dict[str, Any]) -> None:
    sid = world["public"]["id"]
    host = await open_room(server, sid, host_token(world))
    try:
        for cmd, code in (
            (dict(type="delete", message_id="ch_none"), "message_not_found"),
            (dict(type="mute", viewer_id="vw_none", minutes=5), "viewer_not_found"),
            (dict(type="ban", viewer_id="vw_none"), "viewer_not_found"),
            (dict(type="pin", product_id="pr_none"), "product_not_found"),
            (dict(type="mute", viewer_id="vw_none", minutes=0), "invalid"),
        ):
            await host.send(**cmd)
            host.events.remove(await host.error(code))
    finally:
        await host.close()


async def test_flooding_is_rate_limited_without_losing_anything(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid = world["public"]["id"]
    n = server.settings.rate_limit_messages
    flooder, calm, watcher = [await viewer(server, sid, x) for x in ("Flo", "Cal", "Wat")]
    try:
        for i in range(n + 5):
            await flooder.send("chat", text=f"flood {i}")
        await calm.send("chat", text="calm")
        errors = await flooder.wait(lambda e: len(flooder.of("error")) >= 5, "5 rate errors")
        assert errors
        assert {e["error"] for e in flooder.of("error")} == {"rate_limited"}
        assert "retry in" in flooder.of("error")[0]["detail"]
        await watcher.wait_type("chat", text="calm")
        await watcher.wait_type("chat", text=f"flood {n - 1}")
        texts = [e["text"] for e in watcher.of("chat")]
        assert sorted(texts) == sorted([f"flood {i}" for i in range(n)] + ["calm"])
        assert not calm.of("error") and not watcher.of("error")
    finally:
        await close_all(flooder, calm, watcher)


async def test_delete_mute_and_ban(server: LiveServer, world: dict[str, Any]) -> None:
    sid = world["public"]["id"]
    joined = await join(server, sid, "Troll")
    troll = await open_room(server, sid, joined["token"])
    ana = await viewer(server, sid, "Ana")
    host = await open_room(server, sid, host_token(world))
    try:
        await troll.send("chat", text="rude")
        msg = await ana.wait_type("chat", text="rude")
        await host.send("delete", message_id=msg["message_id"])
        await ana.wait_type("chat_deleted", message_id=msg["message_id"])
        late = await viewer(server, sid, "Late")
        assert not late.hello["chat"]
        await late.close()
        await host.send("mute", viewer_id=joined["viewer_id"], minutes=5)
        mod = await host.wait_type("moderation", action="mute")
        assert mod["viewer_id"] == joined["viewer_id"]
        await troll.send("chat", text="muted?")
        assert "minute" in (await troll.error("muted"))["detail"]
        await troll.send("react", kind="heart")  # reactions are not speech
        await host.send("ban", viewer_id=joined["viewer_id"])
        assert await troll.closed() == 4403
        assert "banned" in troll.close_reason
        again = await open_room(server, sid, joined["token"])
        assert await again.closed() == 4403
        assert not ana.of("moderation")  # moderation is for staff eyes only
        assert not [e for e in ana.events if e.get("text") == "muted?"]
    finally:
        await close_all(troll, ana, host)


@pytest.fixture
def slow_server(sqlite_url: str, make_settings: Callable[..., Settings]) -> Any:
    with thread_server(
        make_settings(sqlite_url, send_queue_frames=8, room_tick_ms=0, rate_limit_messages=10_000)
    ) as srv:
        yield srv


async def test_slow_consumer_is_closed_while_others_get_everything(slow_server: LiveServer) -> None:
    world = build_world(slow_server, ADMIN_TOKEN)
    sid = world["public"]["id"]
    joined = await join(slow_server, sid, "Stuck")
    # a tiny receive buffer and queue: the stalled client stops reading almost at once
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(slow_server.url.rsplit(":", 1)[1])))
    sock.setblocking(False)
    stuck = await open_room(slow_server, sid, joined["token"], max_queue=1, sock=sock)
    stuck._reader.cancel()
    fast = await viewer(slow_server, sid, "Fast")
    host = await open_room(slow_server, sid, host_token(world))
    rooms, loop = slow_server.app.state.rooms, slow_server.app.state.room_hub._loop
    total = 60
    try:
        # other packages publish through `rooms.emit`; 60 x 100 KB overflows any socket buffer
        for i in range(total):
            fut = asyncio.run_coroutine_threadsafe(
                rooms.emit(sid, "deal_started", {"n": i, "blob": "d" * 100_000}, store=False), loop
            )
            await asyncio.wrap_future(fut)
            await host.send("chat", text=f"{i:04d}")
        await fast.wait(lambda e: len(fast.of("chat")) == total, "every chat", timeout=60)
        assert [int(e["text"]) for e in fast.of("chat")] == list(range(total))
        assert [e["n"] for e in fast.of("deal_started")] == list(range(total))
        with slow_server.client() as c:
            metrics = c.get("/metrics").text
        dropped = [
            ln for ln in metrics.splitlines() if ln.startswith("vitrine_ws_dropped_slow_total")
        ]
        assert dropped and float(dropped[0].split()[-1]) >= 1, dropped
        # once it reads again, it finds the close code telling it to resume with `after`
        stuck2 = stuck.ws
        code = None
        try:
            async with asyncio.timeout(30):
                async for _ in stuck2:
                    pass
        except ConnectionClosed:
            pass
        code = stuck2.close_code
        assert code == 4408, (code, stuck2.close_reason)
    finally:
        await close_all(fast, host)


async def test_a_banned_invited_client_cannot_rejoin(
    server: LiveServer, world: dict[str, Any]
) -> None:
    priv = world["private"]["id"]
    with server.client(world["admin"]) as staff:
        invite = staff.post(
            f"/api/sessions/{priv}/invites", json={"client_ids": [world["clients"][0]["id"]]}
        ).json()[0]["code"]
    joined = await join(server, priv, "Client", invite=invite)
    client = await open_room(server, priv, joined["token"])
    host = await open_room(server, priv, host_token(world, "private"))
    try:
        await host.send("ban", viewer_id=joined["viewer_id"])
        assert await client.closed() == 4403
        with server.client() as phone:  # another device, same invite: refused
            r = phone.post(f"/api/sessions/{priv}/viewers", json={"invite": invite})
            assert (r.status_code, r.json()["error"]) == (403, "banned")
    finally:
        await close_all(client, host)
