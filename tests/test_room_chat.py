"""The room over real WebSockets: chat, questions, pins and replay, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.support.room import close_all, host_token, join, open_room, viewer
from tests.support.server import LiveServer, await_for


async def test_chat_fans_out_to_everyone(server: LiveServer, world: dict[str, Any]) -> None:
    sid = world["public"]["id"]
    ana, bo = await viewer(server, sid, "Ana"), await viewer(server, sid, "Bo")
    host = await open_room(server, sid, host_token(world))
    try:
        assert ana.hello["role"] == "viewer" and ana.hello["viewer_id"]
        assert host.hello["role"] == "host" and host.hello["session"]["status"] == "scheduled"
        await ana.send("chat", text="hello room")
        for c in (ana, bo, host):
            ev = await c.wait_type("chat", text="hello room")
            assert (
                ev["name"] == "Ana"
                and ev["viewer_id"] == ana.hello["viewer_id"]
                and ev["role"] == "viewer"
            )
            assert isinstance(ev["id"], int) and isinstance(ev["ts"], int)
        await host.send("chat", text="welcome")
        ev = await bo.wait_type("chat", text="welcome")
        assert ev["role"] == "host" and ev["name"] == world["associate"]["name"]
        # a later viewer sees the recent chat in its hello
        late = await viewer(server, sid, "Cy")
        assert [m["text"] for m in late.hello["chat"]] == ["hello room", "welcome"]
        await late.close()
    finally:
        await close_all(ana, bo, host)


async def test_html_is_stored_and_returned_byte_exact(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid = world["public"]["id"]
    ana = await viewer(server, sid)
    text = '<script>alert("x")</script> &amp; <b>é 日本 🎉</b>\u00a0 '
    try:
        await ana.send("chat", text=text)
        ev = await ana.wait_type("chat")
        assert ev["text"] == text
        again = await viewer(server, sid, "Bo", after=0)
        assert (await again.wait_type("chat"))["text"] == text
        assert again.hello["chat"][-1]["text"] == text
        await again.close()
    finally:
        await ana.close()


async def test_questions_votes_and_answers(server: LiveServer, world: dict[str, Any]) -> None:
    sid = world["public"]["id"]
    ana, bo = await viewer(server, sid, "Ana"), await viewer(server, sid, "Bo")
    host = await open_room(server, sid, host_token(world))
    try:
        await ana.send("question", text="Is it washable?")
        q = await host.wait_type("question", text="Is it washable?")
        await ana.send("question", text="Other sizes?")
        q2 = await host.wait_type("question", text="Other sizes?")
        assert q["votes"] == 0 and q["answered"] is False
        await bo.send("vote", question_id=q2["question_id"])
        up = await ana.wait_type("question_updated", question_id=q2["question_id"])
        assert up["votes"] == 1
        await bo.send("vote", question_id=q2["question_id"])
        assert (await bo.error("already_voted"))["detail"]
        await bo.send("vote", question_id="qu_nothere")
        await bo.error("question_not_found")
        late = await viewer(server, sid, "Cy")
        assert [x["question_id"] for x in late.hello["questions"]] == [
            q2["question_id"],
            q["question_id"],
        ]
        assert [x["name"] for x in late.hello["questions"]] == [q2["name"], q["name"]] and q["name"]
        await host.send("answer", question_id=q["question_id"])
        done = await bo.wait_type("question_updated", question_id=q["question_id"], answered=True)
        assert done["votes"] == 0
        await host.send("answer", question_id="qu_nothere")
        await host.error("question_not_found")
        later = await viewer(server, sid, "Di")
        assert [x["question_id"] for x in later.hello["questions"]] == [q2["question_id"]]
        await close_all(late, later)
    finally:
        await close_all(ana, bo, host)


async def test_pin_and_unpin_carry_the_card(server: LiveServer, world: dict[str, Any]) -> None:
    sid = world["public"]["id"]
    product = world["products"][1]
    ana = await viewer(server, sid)
    host = await open_room(server, sid, host_token(world))
    try:
        await host.send("pin", product_id=product["id"])
        pin = await ana.wait_type("pin")
        assert (
            pin["card"]["product_id"] == product["id"] and pin["card"]["title"] == product["title"]
        )
        with server.client() as c:
            assert c.get(f"/api/sessions/{sid}").json()["pinned_product_id"] == product["id"]
        late = await viewer(server, sid, "Bo")
        assert late.hello["pinned"]["product_id"] == product["id"]
        await host.send("pin", product_id="pr_unknown")
        await host.error("product_not_found")
        await host.send("unpin")
        await ana.wait_type("unpin")
        with server.client() as c:
            assert c.get(f"/api/sessions/{sid}").json()["pinned_product_id"] is None
        await late.close()
    finally:
        await close_all(ana, host)


async def test_status_changes_reach_the_room(server: LiveServer, world: dict[str, Any]) -> None:
    sid = world["public"]["id"]
    ana = await viewer(server, sid)
    try:
        with server.client(host_token(world)) as c:
            assert c.post(f"/api/sessions/{sid}/start").status_code == 200
        assert (await ana.wait_type("status"))["status"] == "live"
        late = await viewer(server, sid, "Bo")
        assert late.hello["session"]["status"] == "live"
        await late.close()
    finally:
        await ana.close()


async def test_reconnect_with_after_gets_every_missed_event_in_order(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid = world["public"]["id"]
    joined = await join(server, sid, "Ana")
    ana = await open_room(server, sid, joined["token"])
    bo = await viewer(server, sid, "Bo")
    try:
        await bo.send("chat", text="m0")
        seen = await ana.wait_type("chat", text="m0")
        await ana.close()
        for i in range(1, 4):
            await bo.send("chat", text=f"m{i}")
        await bo.send("question", text="q?")
        await bo.wait_type("question")
        back = await open_room(server, sid, joined["token"], after=seen["id"])
        await back.wait_type("question")
        missed = [e for e in back.events[1:]]
        assert [e.get("text") for e in missed if e["type"] in ("chat", "question")] == [
            "m1",
            "m2",
            "m3",
            "q?",
        ]
        ids = back.ids()
        assert ids == sorted(set(ids)) and ids[0] > seen["id"]
        # live events keep coming after the replay
        await back.send("chat", text="live")  # bo has used up its rate limit (5 per window)
        await bo.wait_type("chat", text="live")
        await back.close()
    finally:
        await bo.close()


async def test_a_reaction_is_shown_and_counted(server: LiveServer, world: dict[str, Any]) -> None:
    """A tap on a reaction answered `internal` and logged a TypeError every time."""
    sid = world["public"]["id"]
    v = await viewer(server, sid, "Mei")
    try:
        await v.send("react", kind="heart", ref="r1")
        await v.wait_type("reaction")
        await v.send("chat", text="after the heart", ref="c1")
        await v.wait_type("chat", text="after the heart")
        assert [e for e in v.events if e.get("type") == "error"] == []
    finally:
        await close_all(v)
    with server.client(world["public"]["host_token"]) as host:
        counters = lambda: host.get(f"/api/sessions/{sid}/live-counters").json()  # noqa: E731
        await await_for(lambda: counters().get("reactions", 0) >= 1, 20, what="reaction counted")
