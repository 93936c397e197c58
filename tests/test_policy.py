"""The access policy as a table, without a server: every role, action and own/other store and
session; and the checks that nothing escapes it (every route and room command is mapped to an
action, the docs show the code's table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from live.api import endpoint_doc
from live.app import create_app
from live.auth import Host, Principal, Staff, Viewer
from live.config import Settings
from live.openapi import iter_routes
from live.policy import RULES, Action, Target, allowed, room_grants, store_scope, table_markdown
from live.room.protocol import COMMANDS

ROOT = Path(__file__).parent.parent
A = Action

ADMIN = Staff("sf_admin", "admin")
MARKETER = Staff("sf_mk", "marketer")
MANAGER = Staff("sf_mgr", "manager", "st_a")
ASSOCIATE = Staff("sf_as", "associate", "st_a")
HOST = Host("se_1", "sf_as")
VIEWER = Viewer("se_1", "vw_1")
WHO: dict[str, Principal | None] = {
    "admin": ADMIN,
    "marketer": MARKETER,
    "manager": MANAGER,
    "associate": ASSOCIATE,
    "host": HOST,
    "viewer": VIEWER,
    "anonymous": None,
}

OWN = Target(store_id="st_a", session_id="se_1", host_id="sf_as")
OWN_PRIVATE = Target(store_id="st_a", session_id="se_1", host_id="sf_as", private=True)
OTHER = Target(store_id="st_b", session_id="se_2", host_id="sf_b")
OTHER_PRIVATE = Target(store_id="st_b", session_id="se_2", host_id="sf_b", private=True)
HOSTED_ELSEWHERE = Target(store_id="st_b", session_id="se_3", host_id="sf_as")

Y, N = True, False
# action: who may, in (own store's public session, another store's public session,
#                     another store's private session)
TABLE: dict[Action, dict[str, tuple[bool, bool, bool]]] = {
    A.WATCH: {
        "admin": (Y, Y, Y),
        "marketer": (Y, Y, Y),
        "manager": (Y, Y, N),
        "associate": (Y, Y, N),
        "host": (Y, N, N),
        "viewer": (Y, N, N),
        "anonymous": (Y, Y, N),
    },
    **{
        a: {
            "admin": (Y, Y, Y),
            "marketer": (Y, Y, Y),
            "manager": (Y, N, N),
            "associate": (Y, N, N),
            "host": (Y, N, N),
            "viewer": (N, N, N),
            "anonymous": (N, N, N),
        }
        for a in (A.MODERATE, A.PIN, A.RUN_DEALS, A.RUN_SESSION, A.SEE_COUNTERS, A.INVITE)
    },
    A.CHAT: {
        "admin": (Y, Y, Y),
        "marketer": (Y, Y, Y),
        "manager": (Y, N, N),
        "associate": (Y, N, N),
        "host": (Y, N, N),
        "viewer": (Y, N, N),
        "anonymous": (N, N, N),
    },
    A.PUBLISH: {
        "admin": (Y, Y, Y),
        "marketer": (Y, Y, Y),
        "manager": (Y, N, N),
        "associate": (Y, N, N),
        "host": (Y, N, N),
        "viewer": (N, N, N),
        "anonymous": (N, N, N),
    },
    A.BUY: {k: ((Y, N, N) if k == "viewer" else (N, N, N)) for k in WHO},
    **{
        a: {
            "admin": (Y, Y, Y),
            "marketer": (Y, Y, Y),
            "manager": (Y, N, N),
            "associate": (Y, N, N),
            "host": (N, N, N),
            "viewer": (N, N, N),
            "anonymous": (N, N, N),
        }
        for a in (A.CREATE_SESSION, A.MANAGE_STOCK, A.SEE_CLIENTS, A.REFUND, A.SEE_REPORTS)
    },
    A.INVITE_CLIENT: {
        "admin": (Y, Y, Y),
        "marketer": (Y, Y, Y),
        "manager": (Y, N, N),
        "associate": (Y, N, N),
        "host": (Y, Y, Y),  # their own clients, wherever they are
        "viewer": (N, N, N),
        "anonymous": (N, N, N),
    },
    A.MANAGE_CLIENTS: {
        "admin": (Y, Y, Y),
        "marketer": (N, N, N),
        "manager": (Y, N, N),
        "associate": (Y, N, N),
        "host": (N, N, N),
        "viewer": (N, N, N),
        "anonymous": (N, N, N),
    },
    A.SEE_ORDERS: {
        "admin": (Y, Y, Y),
        "marketer": (Y, Y, Y),
        "manager": (Y, N, N),
        "associate": (Y, N, N),
        "host": (N, N, N),
        "viewer": (Y, N, N),
        "anonymous": (N, N, N),
    },
    **{
        a: {
            k: ((Y, Y, Y) if k in ("admin", "marketer", "manager", "associate") else (N, N, N))
            for k in WHO
        }
        for a in (A.SEE_CATALOG, A.SEE_DIRECTORY)
    },
    A.MANAGE_PRODUCTS: {k: ((Y, Y, Y) if k in ("admin", "marketer") else (N, N, N)) for k in WHO},
    **{
        a: {k: ((Y, Y, Y) if k == "admin" else (N, N, N)) for k in WHO}
        for a in (A.MANAGE_STORES, A.MANAGE_STAFF)
    },
}


def test_the_table_covers_every_action_and_principal() -> None:
    assert set(TABLE) == set(Action)
    assert all(set(row) == set(WHO) for row in TABLE.values())


@pytest.mark.parametrize("action", list(Action), ids=str)
@pytest.mark.parametrize("kind", list(WHO))
def test_role_action_scope(kind: str, action: Action) -> None:
    p = WHO[kind]
    got = tuple(bool(allowed(p, action, t)) for t in (OWN, OTHER, OTHER_PRIVATE))
    assert got == TABLE[action][kind]


@pytest.mark.parametrize(
    ("who", "action", "target", "reason", "status"),
    [
        (None, A.RUN_DEALS, OWN, "unauthorized", 401),
        (None, A.WATCH, OTHER_PRIVATE, "invite_required", 401),
        (ASSOCIATE, A.RUN_DEALS, OTHER_PRIVATE, "other_store", 403),
        (ASSOCIATE, A.WATCH, OTHER_PRIVATE, "other_store", 403),
        (VIEWER, A.WATCH, OTHER, "wrong_session", 403),
        (HOST, A.RUN_SESSION, OTHER, "wrong_session", 403),
        (VIEWER, A.RUN_DEALS, OWN, "staff_only", 403),
        (ADMIN, A.BUY, OWN, "viewer_only", 403),
        (MARKETER, A.MANAGE_STAFF, OWN, "role_required", 403),
        (
            ASSOCIATE,
            A.SEE_CLIENTS,
            Target(store_id="st_a", associate_id="sf_x"),
            "not_your_client",
            403,
        ),
        (ASSOCIATE, A.CREATE_SESSION, Target("st_a", host_id="sf_x"), "not_the_host", 403),
        (HOST, A.INVITE_CLIENT, Target("st_a", associate_id="sf_x"), "not_your_client", 403),
        (ASSOCIATE, A.INVITE_CLIENT, Target("st_b", associate_id="sf_as"), "other_store", 403),
    ],
)
def test_reasons(
    who: Principal | None, action: Action, target: Target, reason: str, status: int
) -> None:
    d = allowed(who, action, target)
    assert (d.allowed, d.reason, d.status) == (False, reason, status)
    assert d.detail


def test_an_associate_moderates_a_session_they_host_in_another_store() -> None:
    assert allowed(ASSOCIATE, A.MODERATE, HOSTED_ELSEWHERE)
    assert not allowed(MANAGER, A.MODERATE, HOSTED_ELSEWHERE)


def test_colleagues_moderate_a_session_but_only_its_host_runs_it() -> None:
    colleague = Staff("sf_other", "associate", "st_a")
    assert allowed(colleague, A.MODERATE, OWN) and allowed(colleague, A.RUN_DEALS, OWN)
    d = allowed(colleague, A.RUN_SESSION, OWN)
    assert (d.allowed, d.reason) == (False, "not_the_host")
    assert not allowed(colleague, A.PUBLISH, OWN)
    assert allowed(MANAGER, A.RUN_SESSION, OWN)


def test_own_store_staff_watch_their_private_session_and_invited_clients_too() -> None:
    assert allowed(ASSOCIATE, A.WATCH, OWN_PRIVATE)
    assert allowed(None, A.WATCH, Target(store_id="st_b", private=True, invited=True))


def test_lists_are_scoped_to_a_store() -> None:
    assert store_scope(ADMIN, A.SEE_REPORTS) is None
    assert store_scope(MARKETER, A.SEE_REPORTS) is None
    assert store_scope(MANAGER, A.SEE_REPORTS) == "st_a"
    assert store_scope(ASSOCIATE, A.SEE_CLIENTS) == "st_a"


def test_room_grants() -> None:
    room = {A.CHAT, A.MODERATE, A.PIN, A.RUN_DEALS, A.SEE_COUNTERS}
    assert room_grants(ASSOCIATE, OWN) == room
    assert room_grants(ASSOCIATE, OTHER) == frozenset()  # a reader
    assert room_grants(VIEWER, OWN) == {A.CHAT}
    assert room_grants(HOST, OWN) == room


def test_every_room_command_is_mapped_to_a_room_action() -> None:
    room = {A.CHAT, A.MODERATE, A.PIN}
    assert {c.action for c in COMMANDS.values()} <= room
    assert all(isinstance(c.action, Action) for c in COMMANDS.values())


#: The routes that ask no action: anyone may call them (a private session's details are still
#: shown by the policy's ``watch``; WHEP's resource URL is its own capability).
PUBLIC = {
    "GET /healthz",
    "GET /metrics",
    "GET /openapi.json",
    "GET /api/sessions",
    "GET /api/sessions/{id}",
    "POST /api/sessions/{id}/viewers",
    "OPTIONS /whip/{id}",
    "OPTIONS /whip/{id}/{resource}",
    "OPTIONS /whep/{id}",
    "OPTIONS /whep/{id}/{resource}",
    "DELETE /whep/{id}/{resource}",
    "PATCH /whep/{id}/{resource}",
    "GET /",
    "GET /login",
    "POST /login",
    "POST /logout",
    "GET /watch/{id}",
    "GET /static/{path:path}",
    "GET /media/{path:path}",
}


def test_every_route_asks_the_policy(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=str(tmp_path), secret_key="k" * 32).resolved())
    unmapped = []
    for path, methods, endpoint in iter_routes(list(app.routes)):
        for method in methods:
            fn = (
                getattr(endpoint, method.lower(), endpoint)
                if isinstance(endpoint, type)
                else endpoint
            )
            d = endpoint_doc(fn)
            if method == "WEBSOCKET" or path.startswith("/static"):
                continue
            if d is None or (d.action is None and f"{method} {path}" not in PUBLIC):
                unmapped.append(f"{method} {path}")
    assert unmapped == [], "routes without a policy action (@doc(action=...))"


def test_the_docs_show_the_policy_table() -> None:
    text = (ROOT / "docs" / "access.md").read_text()
    assert table_markdown() in text, "docs/access.md disagrees with live.policy.RULES"
    for action in Action:
        assert f"`{action.value}`" in text
    assert set(RULES) == set(Action)
