"""What a room looks like now, kept by each process for the sessions it has connections for.

Loaded from the database when a session gets its first local connection, then kept current by
applying every event the bus delivers (idempotently: an event may also be in the snapshot).
It answers the ``hello`` frame without a query per connecting viewer.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from live.room.events import Event

RECENT_CHAT = 50
MAX_OPEN_QUESTIONS = 200
BLOCKED_WORDS_TTL = 30.0


@dataclass
class RoomState:
    session_id: str
    status: str = "scheduled"
    kind: str = "public"
    title: str = ""
    scheduled_at: int | None = None
    pinned: dict[str, Any] | None = None
    deal: dict[str, Any] | None = None  # the running deal (deal_started .. deal_ended)
    counters: dict[str, Any] | None = None  # the last host counters (staff only)
    questions: dict[str, dict[str, Any]] = field(default_factory=dict)
    chat: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_CHAT))
    blocked: list[str] = field(default_factory=list)
    blocked_at: float = 0.0
    viewers: int = 0

    def apply(self, ev: Event) -> None:
        d = ev.data
        t = ev.type
        if t == "status":
            self.status = str(d.get("status", self.status))
        elif t == "pin":
            self.pinned = d.get("card")
        elif t == "unpin":
            self.pinned = None
        elif t == "deal_started":
            self.deal = {k: v for k, v in d.items()}
        elif t == "deal_ended":
            self.deal = None
        elif t == "counters":
            self.counters = dict(d)
        elif t == "presence":
            self.viewers = int(d.get("viewers", 0))
        elif t == "chat":
            if not any(m["message_id"] == d.get("message_id") for m in self.chat):
                self.chat.append(
                    {k: d.get(k) for k in ("message_id", "viewer_id", "name", "role", "text")}
                    | {"ts": ev.ts}
                )
        elif t == "chat_deleted":
            self.chat = deque(
                (m for m in self.chat if m["message_id"] != d.get("message_id")), maxlen=RECENT_CHAT
            )
        elif t == "question":
            if len(self.questions) < MAX_OPEN_QUESTIONS:
                self.questions[str(d.get("question_id"))] = {
                    k: d.get(k)
                    for k in ("question_id", "viewer_id", "name", "text", "votes", "answered")
                } | {"ts": ev.ts}
        elif t == "question_updated":
            q = self.questions.get(str(d.get("question_id")))
            if q is not None:
                if d.get("answered") or d.get("deleted"):
                    del self.questions[q["question_id"]]
                else:
                    q["votes"] = d.get("votes", q["votes"])

    def blocked_fresh(self) -> bool:
        return time.monotonic() - self.blocked_at < BLOCKED_WORDS_TTL

    def open_questions(self) -> list[dict[str, Any]]:
        return sorted(
            self.questions.values(), key=lambda q: (-int(q.get("votes") or 0), q.get("ts") or 0)
        )

    def hello(
        self, *, last_id: int, ts: int, role: str, actor_id: str, name: str
    ) -> dict[str, Any]:
        out = {
            "type": "hello",
            "id": last_id,
            "ts": ts,
            "role": role,
            "viewer_id": actor_id if role == "viewer" else None,
            "staff_id": actor_id if role != "viewer" else None,
            "name": name,
            "session": {
                "id": self.session_id,
                "status": self.status,
                "kind": self.kind,
                "title": self.title,
                "scheduled_at": self.scheduled_at,
            },
            "pinned": self.pinned,
            "deal": self.deal,
            "questions": self.open_questions(),
            "chat": list(self.chat),
            "viewers": self.viewers,
        }
        if role != "viewer":
            out["counters"] = self.counters
        return out
