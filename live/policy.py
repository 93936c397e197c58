"""The access policy: the one answer to "may this principal do this to that?".

Pure (no I/O): a principal (a staff member with a role and store, the host of a session, a
viewer of a session, or nobody), an :class:`Action` and a :class:`Target` (the store, session
or client record acted on) give a :class:`Decision` with a stable reason code. Every HTTP
route, room command and WHIP/WHEP endpoint asks it through :mod:`live.access`; nothing else
decides who may do what. ``docs/access.md`` shows :data:`RULES` as a table (a test keeps the
two equal).

Scopes, from widest to narrowest:

``any``      every target
``store``    targets of the principal's own store (a staff member's ``store_id``)
``hosted``   own store, or a session this staff member hosts
``own``      own store and a client record this associate owns (``Target.associate_id``)
``self``     own store's sessions they host themselves (an associate schedules and runs their own)
``session``  the one session a host or viewer token was minted for
``public``   public sessions, and private ones the principal is invited to (``Target.invited``)
``never``    nothing
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from live.auth import Host, Principal, Staff, Viewer
from live.errors import Forbidden, Unauthorized, VitrineError

Scope = Literal["any", "store", "hosted", "own", "self", "session", "public", "never"]
Kind = Literal["admin", "marketer", "manager", "associate", "host", "viewer", "anonymous"]
KINDS: tuple[Kind, ...] = (
    "admin",
    "marketer",
    "manager",
    "associate",
    "host",
    "viewer",
    "anonymous",
)


class Action(StrEnum):
    # a session's audience
    WATCH = "watch"  # the watch page, the room as a reader, WHEP
    CHAT = "chat"  # chat, questions, votes, reactions
    BUY = "buy"  # carts, orders, the card's beacons: a viewer of the session
    # running a session
    MODERATE = "moderate"  # answer, delete, mute, ban
    PIN = "pin"
    RUN_DEALS = "run_deals"
    RUN_SESSION = "run_session"  # edit, start, end, the studio
    PUBLISH = "publish"  # WHIP
    SEE_COUNTERS = "see_counters"  # a session's live numbers and stream statistics
    INVITE = "invite"
    INVITE_CLIENT = "invite_client"  # one client record, into a session one may invite to
    # a store's business
    CREATE_SESSION = "create_session"
    MANAGE_STOCK = "manage_stock"
    SEE_CLIENTS = "see_clients"
    MANAGE_CLIENTS = "manage_clients"
    SEE_ORDERS = "see_orders"
    REFUND = "refund"
    SEE_REPORTS = "see_reports"
    # the brand
    SEE_CATALOG = "see_catalog"
    MANAGE_PRODUCTS = "manage_products"
    SEE_DIRECTORY = "see_directory"
    MANAGE_STORES = "manage_stores"
    MANAGE_STAFF = "manage_staff"


A = Action
_RUN: dict[Kind, Scope] = {
    "admin": "any",
    "marketer": "any",
    "manager": "store",
    "associate": "hosted",
    "host": "session",
}
_STORE: dict[Kind, Scope] = {
    "admin": "any",
    "marketer": "any",
    "manager": "store",
    "associate": "store",
}
_BRAND: dict[Kind, Scope] = {
    "admin": "any",
    "marketer": "any",
    "manager": "any",
    "associate": "any",
}

#: ``RULES[action][kind]`` is the scope in which that kind of principal may act; a kind that
#: is not listed may not.
RULES: dict[Action, dict[Kind, Scope]] = {
    A.WATCH: {
        "admin": "any",
        "marketer": "any",
        "manager": "public",
        "associate": "public",
        "host": "session",
        "viewer": "session",
        "anonymous": "public",
    },
    A.CHAT: {**_RUN, "viewer": "session"},
    A.BUY: {"viewer": "session"},
    A.MODERATE: _RUN,
    A.PIN: _RUN,
    A.RUN_DEALS: _RUN,
    A.RUN_SESSION: {**_RUN, "associate": "self"},  # colleagues moderate; the host runs it
    A.PUBLISH: {**_RUN, "associate": "self"},  # whoever runs a session may stream it
    A.SEE_COUNTERS: _RUN,
    A.INVITE: _RUN,
    A.INVITE_CLIENT: {**_STORE, "associate": "own", "host": "own"},
    A.CREATE_SESSION: {**_STORE, "associate": "self"},
    A.MANAGE_STOCK: _STORE,
    A.SEE_CLIENTS: {**_STORE, "associate": "own"},
    A.MANAGE_CLIENTS: {"admin": "any", "manager": "store", "associate": "own"},
    A.SEE_ORDERS: {**_STORE, "viewer": "session"},  # a viewer: their own orders
    A.REFUND: {"admin": "any", "marketer": "any", "manager": "store", "associate": "store"},
    A.SEE_REPORTS: _STORE,
    A.SEE_CATALOG: _BRAND,
    A.MANAGE_PRODUCTS: {"admin": "any", "marketer": "any"},
    A.SEE_DIRECTORY: _BRAND,
    A.MANAGE_STORES: {"admin": "any"},
    A.MANAGE_STAFF: {"admin": "any"},
}


@dataclass(frozen=True)
class Target:
    """What is acted on. Empty fields are "not about a particular one" (a list, a new record):
    then a store-scoped principal is scoped by :func:`scope` rather than refused."""

    store_id: str | None = None
    session_id: str | None = None
    host_id: str | None = None  # the staff member who hosts the session
    private: bool = False
    invited: bool = False  # the principal holds a valid invitation to this private session
    associate_id: str | None = None  # the associate who owns the client record

    @classmethod
    def of_session(cls, sess: Any, *, invited: bool = False) -> Target:
        return cls(
            store_id=sess.store_id,
            session_id=sess.id,
            host_id=sess.host_id,
            private=sess.kind == "private",
            invited=invited,
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # a stable code: "ok" or why not
    detail: str = ""
    status: int = 200

    def __bool__(self) -> bool:
        return self.allowed

    def error(self) -> VitrineError:
        cls = Unauthorized if self.status == 401 else Forbidden
        return cls(self.detail, code=self.reason)


OK = Decision(True, "ok")


def kind_of(p: Principal | None) -> Kind:
    if p is None:
        return "anonymous"
    if isinstance(p, Staff):
        return p.role  # type: ignore[return-value]
    return "host" if isinstance(p, Host) else "viewer"


def _no(reason: str, detail: str, status: int = 403) -> Decision:
    return Decision(False, reason, detail, status)


def _fits(p: Principal | None, scope: Scope, t: Target) -> Decision:
    if scope == "any":
        return OK
    if scope == "session":
        assert isinstance(p, Host | Viewer)
        if t.session_id is None or t.session_id == p.session_id:
            return OK
        return _no("wrong_session", "this token belongs to another session")
    if scope == "own" and isinstance(p, Host):  # a host token acts for its associate
        if t.associate_id in (None, p.staff_id):
            return OK
        return _no("not_your_client", "an associate invites their own clients only")
    if scope == "public":
        if not t.private or t.invited:
            return OK
        if isinstance(p, Staff):
            if t.store_id is not None and t.store_id == p.store_id:
                return OK
            return _no("other_store", "this private session belongs to another store")
        return _no(
            "invite_required", "this session is private: open your invitation link", status=401
        )
    assert isinstance(p, Staff)
    if t.store_id is None or t.store_id == p.store_id:
        if scope == "own" and t.associate_id not in (None, p.staff_id):
            return _no("not_your_client", "an associate acts on their own clients only")
        if scope == "self" and t.host_id not in (None, p.staff_id):
            return _no("not_the_host", "an associate schedules and runs sessions they host")
        return OK
    if scope == "hosted" and t.host_id is not None and t.host_id == p.staff_id:
        return OK
    return _no("other_store", "staff act on their own store's sessions and clients only")


def allowed(p: Principal | None, action: Action, target: Target | None = None) -> Decision:
    """Whether ``p`` may do ``action`` to ``target``, and why not."""
    kind = kind_of(p)
    scope = RULES[action].get(kind, "never")
    if scope == "never":
        if kind == "anonymous":
            return _no("unauthorized", "a token is required (Authorization: Bearer …)", 401)
        if kind in ("host", "viewer"):
            if action in (A.BUY, A.CHAT):
                return _no("viewer_only", "a viewer token is required")
            return _no("staff_only", "staff only")
        if isinstance(p, Staff) and action in (A.BUY,):
            return _no("viewer_only", "a viewer token is required")
        return _no("role_required", f"a {kind} may not {action.value.replace('_', ' ')}")
    return _fits(p, scope, target or Target())


def require(p: Principal | None, action: Action, target: Target | None = None) -> None:
    d = allowed(p, action, target)
    if not d:
        raise d.error()


def store_scope(p: Principal | None, action: Action) -> str | None:
    """For a list of ``action``'s targets: the one store ``p`` is limited to, or None for all.

    Raises like :func:`require` when ``p`` may not do ``action`` at all."""
    require(p, action)
    scope = RULES[action][kind_of(p)]
    if scope in ("store", "hosted", "own", "self") and isinstance(p, Staff):
        return p.store_id or "-"  # a store-scoped role without a store sees nothing
    return None


def owner_scope(p: Principal | None, action: Action) -> str | None:
    """For a list of client records: the associate whose own clients ``p`` is limited to."""
    if RULES[action].get(kind_of(p)) == "own" and isinstance(p, Staff):
        return p.staff_id
    return None


def private_sessions_seen(p: Principal | None) -> tuple[str, str | None]:
    """Which private sessions ``p`` watches (sees in full), for a query over many:
    ``("all", None)``, ``("store", id)``, ``("session", id)`` or ``("none", None)``."""
    scope = RULES[A.WATCH].get(kind_of(p), "never")
    if scope == "any":
        return "all", None
    if isinstance(p, Staff) and scope == "public":
        return ("store", p.store_id) if p.store_id else ("none", None)
    if isinstance(p, Host | Viewer) and scope == "session":
        return "session", p.session_id
    return "none", None


def room_grants(p: Principal | None, t: Target) -> frozenset[Action]:
    """The room commands' actions this principal holds in this session's room."""
    room = (A.CHAT, A.MODERATE, A.PIN, A.RUN_DEALS, A.SEE_COUNTERS)
    return frozenset(a for a in room if allowed(p, a, t))


def table_markdown() -> str:
    """The policy as a Markdown table (``docs/access.md`` holds this text verbatim)."""
    head = "| action | " + " | ".join(KINDS) + " |"
    rule = "|---" * (len(KINDS) + 1) + "|"
    rows = [
        f"| `{a.value}` | " + " | ".join(RULES[a].get(k, "never") for k in KINDS) + " |"
        for a in Action
    ]
    return "\n".join([head, rule, *rows])
