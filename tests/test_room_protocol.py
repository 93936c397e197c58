"""The pure room protocol (no I/O): frames in, intents or errors out."""

from __future__ import annotations

import orjson

from live.room.events import Event
from live.room.protocol import REACTIONS_PER_SECOND, Intent, RateLimiter, Reject, RoomProtocol
from live.room.state import RoomState


def proto(role: str = "viewer", limit: int = 3, muted_until_ms: int = 0) -> RoomProtocol:
    return RoomProtocol(
        role=role,
        actor_id="vw_a",
        max_frame_bytes=200,
        max_text_chars=20,
        limiter=RateLimiter(limit, 10.0),
        muted_until_ms=muted_until_ms,
    )


def send(p: RoomProtocol, now: float = 1000.0, **msg: object) -> Intent | Reject | None:
    return p.receive(orjson.dumps(msg), now)


def test_valid_frames_become_intents() -> None:
    p = proto()
    assert send(p, type="chat", text="hi", ref=7) == Intent("chat", {"text": "hi"}, 7)
    assert send(p, type="vote", question_id="qu_1") == Intent("vote", {"question_id": "qu_1"}, None)
    assert send(p, type="react", kind="heart") == Intent("react", {"kind": "heart"}, None)
    host = proto("host")
    assert send(host, type="mute", viewer_id="vw_b", minutes=5) == Intent(
        "mute", {"viewer_id": "vw_b", "minutes": 5}
    )
    assert send(host, type="unpin") == Intent("unpin", {})


def test_bad_frames_are_rejected_with_a_code() -> None:
    p = proto()
    cases = {
        b"{": "invalid_json",
        b"[]": "invalid_frame",
        b'{"type": 1}': "invalid_frame",
        b'{"type": "x"}': "unknown_type",
        b'{"type": "chat", "text": ""}': "invalid",
        b'{"type": "chat", "text": "' + b"a" * 21 + b'"}': "text_too_long",
        b'{"type": "chat", "text": "' + b"a" * 300 + b'"}': "frame_too_large",
        b'{"type": "pin", "product_id": "p"}': "host_only",
        b'{"type": "vote", "question_id": 5}': "invalid",
        b'{"type": "mute", "viewer_id": "v", "minutes": true}': "host_only",
    }
    for frame, code in cases.items():
        out = p.receive(frame, 1000.0)
        assert isinstance(out, Reject) and out.code == code, (frame, out)
    bad_minutes = send(proto("staff"), type="mute", viewer_id="v", minutes=True)
    assert isinstance(bad_minutes, Reject) and bad_minutes.code == "invalid"
    assert send(p, type="x", ref="abc").ref == "abc"  # type: ignore[union-attr]
    assert send(p, type="x", ref={"no": 1}).ref is None  # type: ignore[union-attr]
    assert Reject("a", "b", 1).event(5) == {
        "type": "error",
        "error": "a",
        "detail": "b",
        "ts": 5,
        "ref": 1,
    }


def test_rate_limit_is_per_viewer_and_sliding() -> None:
    limiter = RateLimiter(3, 10.0)
    a = RoomProtocol(
        role="viewer", actor_id="vw_a", max_frame_bytes=200, max_text_chars=20, limiter=limiter
    )
    tab2 = RoomProtocol(
        role="viewer", actor_id="vw_a", max_frame_bytes=200, max_text_chars=20, limiter=limiter
    )
    b = RoomProtocol(
        role="viewer", actor_id="vw_b", max_frame_bytes=200, max_text_chars=20, limiter=limiter
    )
    assert all(isinstance(send(a, 100.0 + i, type="chat", text="x"), Intent) for i in range(2))
    assert isinstance(send(tab2, 102.0, type="question", text="x"), Intent)
    out = send(a, 103.0, type="chat", text="x")
    assert isinstance(out, Reject) and out.code == "rate_limited" and "retry in 7.0 s" in out.detail
    assert isinstance(send(b, 103.0, type="chat", text="x"), Intent)
    assert isinstance(
        send(a, 110.5, type="chat", text="x"), Intent
    )  # the first hit left the window
    host = proto("host", limit=1)
    assert all(isinstance(send(host, 100.0, type="chat", text="x"), Intent) for _ in range(5))
    limiter.prune(1000.0)
    assert not limiter._hits


def test_mutes_block_speech_but_not_votes_or_reactions() -> None:
    p = proto(muted_until_ms=1_000_000 + 90_000)
    out = send(p, 1000.0, type="chat", text="hi")
    assert isinstance(out, Reject) and out.code == "muted" and "2 more minute" in out.detail
    assert isinstance(send(p, 1000.0, type="vote", question_id="q"), Intent)
    assert isinstance(send(p, 1000.0, type="react", kind="clap"), Intent)
    assert isinstance(send(p, 1091.0, type="chat", text="hi"), Intent)


def test_reaction_floods_are_dropped_silently() -> None:
    p = proto()
    outs = [send(p, 50.5, type="react", kind="fire") for _ in range(REACTIONS_PER_SECOND + 3)]
    assert outs.count(None) == 3
    assert isinstance(send(p, 51.0, type="react", kind="fire"), Intent)


def test_state_applies_events_idempotently() -> None:
    st = RoomState("se_1")
    chat = Event(
        "se_1",
        1,
        "chat",
        10,
        {"message_id": "ch_1", "text": "a", "viewer_id": "v", "name": "A", "role": "viewer"},
    )
    st.apply(chat)
    st.apply(chat)
    q = Event(
        "se_1",
        2,
        "question",
        11,
        {"question_id": "qu_1", "text": "?", "votes": 0, "answered": False},
    )
    q2 = Event(
        "se_1",
        3,
        "question",
        12,
        {"question_id": "qu_2", "text": "??", "votes": 0, "answered": False},
    )
    for ev in (
        q,
        q2,
        Event("se_1", 4, "question_updated", 13, {"question_id": "qu_2", "votes": 3}),
        Event("se_1", 5, "pin", 14, {"product_id": "p", "card": {"product_id": "p"}}),
        Event("se_1", 6, "status", 15, {"status": "live"}),
    ):
        st.apply(ev)
    hello = st.hello(last_id=6, ts=20, role="viewer", actor_id="v", name="A")
    assert [m["message_id"] for m in hello["chat"]] == ["ch_1"]
    assert [x["question_id"] for x in hello["questions"]] == ["qu_2", "qu_1"]
    assert hello["pinned"] == {"product_id": "p"} and hello["session"]["status"] == "live"
    st.apply(Event("se_1", 7, "chat_deleted", 16, {"message_id": "ch_1"}))
    st.apply(Event("se_1", 8, "question_updated", 17, {"question_id": "qu_2", "answered": True}))
    st.apply(Event("se_1", 9, "unpin", 18, {}))
    hello = st.hello(last_id=9, ts=20, role="host", actor_id="sf", name="H")
    assert hello["chat"] == [] and [x["question_id"] for x in hello["questions"]] == ["qu_1"]
    assert hello["pinned"] is None and hello["viewer_id"] is None and hello["staff_id"] == "sf"


def test_a_large_batch_goes_out_as_frames_within_the_budget() -> None:
    import orjson

    from live.room.events import frames

    small = [{"type": "chat", "id": i, "text": "hi"} for i in range(50)]
    assert len(frames(small)) == 1  # the usual batch: one frame, serialised once
    big = [{"type": "deal_started", "id": i, "blob": "d" * 100_000} for i in range(60)]
    out = frames(big, budget=256 * 1024)
    assert all(len(t) <= 256 * 1024 for t in out) and len(out) > 1
    assert [e["id"] for t in out for e in orjson.loads(t)] == list(range(60))
    huge = [{"type": "x", "id": 1, "blob": "z" * 300_000}]
    assert len(frames(huge, budget=256 * 1024)) == 1  # one event is never cut
