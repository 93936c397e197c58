"""The room protocol of one connection: client frames in, intents or errors out. No I/O.

Like python-websockets' ``protocol.py``: the WebSocket route feeds :meth:`RoomProtocol.receive`
with each frame and the current time, and acts on what comes back. Every rule that needs no
storage lives here: frame size, JSON shape, command names, field types, text length, who may
send host commands, the per-viewer rate limit and mutes. Rules that need storage (blocked
words, unknown ids) are the service's.

Client frames are JSON objects ``{"type": ..., ...fields, "ref"?: any}``; ``ref`` (a short
string or an integer) is echoed in the error answering that frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from live.policy import Action

A = Action

REACTIONS = ("heart", "like", "clap", "fire", "wow", "laugh")
MAX_ID_CHARS = 64
MAX_MUTE_MINUTES = 7 * 24 * 60
REACTIONS_PER_SECOND = 5


@dataclass(frozen=True)
class Intent:
    """A valid command: what the service must do, for whom."""

    kind: str
    args: dict[str, Any]
    ref: Any = None


@dataclass(frozen=True)
class Reject:
    """A frame answered with an error that only its sender sees; the socket stays open."""

    code: str
    detail: str
    ref: Any = None

    def event(self, ts: int) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "error", "error": self.code, "detail": self.detail, "ts": ts}
        if self.ref is not None:
            out["ref"] = self.ref
        return out


class RateLimiter:
    """Sliding-window limit per key (a viewer): at most ``limit`` hits per ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, now: float) -> float:
        """Record a hit and return 0, or return the seconds to wait (the hit is not recorded)."""
        q = self._hits.get(key)
        if q is None:
            q = self._hits[key] = deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.limit:
            return q[0] + self.window - now
        q.append(now)
        return 0.0

    def prune(self, now: float) -> None:
        """Forget keys with no hit in the window (called periodically)."""
        for key in [k for k, q in self._hits.items() if not q or q[-1] <= now - self.window]:
            del self._hits[key]


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _ident(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_ID_CHARS


def _minutes(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_MUTE_MINUTES


def _reaction(v: Any) -> bool:
    return v in REACTIONS


@dataclass(frozen=True)
class Command:
    action: Action  # what the access policy must grant the connection (live.policy)
    fields: dict[str, tuple[Callable[[Any], bool], str]] = field(default_factory=dict)
    rate_limited: bool = False
    speaks: bool = False  # refused while muted


_ID = (_ident, f"must be an id of at most {MAX_ID_CHARS} characters")
COMMANDS: dict[str, Command] = {
    "chat": Command(A.CHAT, {"text": (_text, "must be a string")}, rate_limited=True, speaks=True),
    "question": Command(
        A.CHAT, {"text": (_text, "must be a string")}, rate_limited=True, speaks=True
    ),
    "vote": Command(A.CHAT, {"question_id": _ID}, rate_limited=True),
    "react": Command(A.CHAT, {"kind": (_reaction, f"must be one of {', '.join(REACTIONS)}")}),
    "pin": Command(A.PIN, {"product_id": _ID}),
    "unpin": Command(A.PIN),
    "answer": Command(A.MODERATE, {"question_id": _ID}),
    "delete": Command(A.MODERATE, {"message_id": _ID}),
    "mute": Command(
        A.MODERATE,
        {"viewer_id": _ID, "minutes": (_minutes, f"must be 1 to {MAX_MUTE_MINUTES}")},
    ),
    "ban": Command(A.MODERATE, {"viewer_id": _ID}),
}
#: What each room role holds when no policy decision is given (the protocol's own tests).
ROLE_GRANTS: dict[str, frozenset[Action]] = {
    "viewer": frozenset({A.CHAT}),
    "host": frozenset({A.CHAT, A.PIN, A.MODERATE, A.RUN_DEALS, A.SEE_COUNTERS}),
    "staff": frozenset({A.CHAT, A.PIN, A.MODERATE, A.RUN_DEALS, A.SEE_COUNTERS}),
}


class RoomProtocol:
    """The state of one connection's input side: who it is and what it may send.

    ``limiter`` is shared by every connection of the process so that a viewer's limit holds
    across their tabs; host and staff connections are not rate limited.
    """

    def __init__(
        self,
        *,
        role: str,
        actor_id: str,
        max_frame_bytes: int,
        max_text_chars: int,
        limiter: RateLimiter,
        muted_until_ms: int = 0,
        grants: frozenset[Action] | None = None,
    ) -> None:
        self.role, self.actor_id = role, actor_id
        self.grants = ROLE_GRANTS.get(role, frozenset()) if grants is None else grants
        self.max_frame_bytes, self.max_text_chars = max_frame_bytes, max_text_chars
        self.limiter = limiter
        self.muted_until_ms = muted_until_ms
        self._react_window = 0.0
        self._react_count = 0

    @property
    def is_moderator(self) -> bool:
        return A.MODERATE in self.grants

    def receive(self, frame: str | bytes, now: float) -> Intent | Reject | None:
        """One client frame → an :class:`Intent`, a :class:`Reject`, or None (a dropped reaction).

        ``now`` is wall-clock seconds (mutes are stored as epoch milliseconds).
        """
        size = len(frame) if isinstance(frame, bytes) else len(frame.encode())
        if size > self.max_frame_bytes:
            return Reject("frame_too_large", f"frames are limited to {self.max_frame_bytes} bytes")
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return Reject("invalid_json", "the frame is not valid JSON")
        if not isinstance(msg, dict):
            return Reject("invalid_frame", "a frame must be a JSON object with a `type`")
        ref = msg.get("ref")
        if not (
            ref is None
            or (isinstance(ref, str) and len(ref) <= MAX_ID_CHARS)
            or (isinstance(ref, int) and not isinstance(ref, bool))
        ):
            ref = None
        kind = msg.get("type")
        if not isinstance(kind, str):
            return Reject("invalid_frame", "a frame must be a JSON object with a `type`", ref)
        cmd = COMMANDS.get(kind)
        if cmd is None:
            return Reject("unknown_type", f"unknown frame type {kind[:40]!r}", ref)
        if cmd.action not in self.grants:
            if cmd.action is A.CHAT:
                return Reject("join_required", f"join as a viewer to send `{kind}`", ref)
            return Reject("host_only", f"only the host or staff may send `{kind}`", ref)
        args: dict[str, Any] = {}
        for name, (check, why) in cmd.fields.items():
            if name not in msg:
                return Reject("invalid", f"`{name}` is required", ref)
            if not check(msg[name]):
                return Reject("invalid", f"`{name}` {why}", ref)
            args[name] = msg[name]
        if "text" in args:
            text = args["text"]
            if not text.strip():
                return Reject("invalid", "`text` must not be empty", ref)
            if "\x00" in text:  # PostgreSQL cannot store it, and no message needs it
                return Reject("invalid", "`text` must not contain NUL characters", ref)
            if len(text) > self.max_text_chars:
                return Reject(
                    "text_too_long", f"`text` is limited to {self.max_text_chars} characters", ref
                )
        if cmd.speaks and not self.is_moderator and now * 1000 < self.muted_until_ms:
            left = int((self.muted_until_ms - now * 1000) // 60000) + 1
            return Reject("muted", f"you are muted for {left} more minute(s)", ref)
        if kind == "react" and not self._react_allowed(now):
            return None
        if cmd.rate_limited and not self.is_moderator:
            wait = self.limiter.hit(self.actor_id, now)
            if wait > 0:
                return Reject(
                    "rate_limited",
                    f"at most {self.limiter.limit} messages per "
                    f"{self.limiter.window:g} s; retry in {wait:.1f} s",
                    ref,
                )
        return Intent(kind, args, ref)

    def _react_allowed(self, now: float) -> bool:
        """Reactions are aggregated, so excess ones are dropped silently (no error traffic)."""
        second = float(int(now))
        if second != self._react_window:
            self._react_window, self._react_count = second, 0
        self._react_count += 1
        return self._react_count <= REACTIONS_PER_SECOND
