"""``/api/stores``, ``/api/staff``, ``/api/clients``: staff only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from live import directory
from live.access import authorize
from live.api import doc
from live.http import JSON, json_body, query_int
from live.models import Client, StaffMember, Store
from live.policy import Action, Target, owner_scope, require, store_scope

_OBJ = {"type": "object"}


@doc("List stores (`?live_enabled=true|false`)", action=Action.SEE_DIRECTORY)
async def list_stores(request: Request) -> Response:
    authorize(request)
    flag = request.query_params.get("live_enabled")
    return JSON(
        await directory.list_stores(
            request.app.state.db, live_enabled=None if flag is None else flag == "true"
        )
    )


@doc("Create a store", action=Action.MANAGE_STORES, body=_OBJ, responses={201: "created"})
async def create_store(request: Request) -> Response:
    authorize(request)
    return JSON(
        await directory.create_store(request.app.state.db, await json_body(request)),
        status_code=201,
    )


@doc("Show one store", action=Action.SEE_DIRECTORY, responses={404: "unknown store"})
async def get_store(request: Request) -> Response:
    authorize(request)
    s = await directory.get_one(request.app.state.db, Store, request.path_params["id"], "store")
    return JSON(directory.store_json(s))


@doc("List staff (`?store_id=&role=`)", action=Action.SEE_DIRECTORY)
async def list_staff(request: Request) -> Response:
    authorize(request)
    q = request.query_params
    return JSON(
        await directory.list_staff(
            request.app.state.db, store_id=q.get("store_id"), role=q.get("role")
        )
    )


@doc(
    "Create a staff member `{name, role, store_id?, email?}`",
    action=Action.MANAGE_STAFF,
    body=_OBJ,
    responses={201: "created"},
)
async def create_staff(request: Request) -> Response:
    authorize(request)
    return JSON(
        await directory.create_staff(request.app.state.db, await json_body(request)),
        status_code=201,
    )


@doc("Show one staff member", action=Action.SEE_DIRECTORY, responses={404: "unknown staff"})
async def get_staff(request: Request) -> Response:
    authorize(request)
    s = await directory.get_one(
        request.app.state.db, StaffMember, request.path_params["id"], "staff"
    )
    return JSON(directory.staff_json(s))


@doc(
    "List clients (`?store_id=&associate_id=&limit=&offset=`); associates: their own",
    action=Action.SEE_CLIENTS,
)
async def list_clients(request: Request) -> Response:
    staff = authorize(request)
    q = request.query_params
    store_id, associate_id = q.get("store_id"), q.get("associate_id")
    only_store = store_scope(staff, Action.SEE_CLIENTS)
    if only_store is not None:  # a store's staff see their store's book, associates their own
        require(staff, Action.SEE_CLIENTS, Target(store_id=store_id or only_store))
        store_id = only_store
    associate_id = owner_scope(staff, Action.SEE_CLIENTS) or associate_id
    return JSON(
        await directory.list_clients(
            request.app.state.db,
            store_id=store_id,
            associate_id=associate_id,
            limit=query_int(request, "limit", 500, 1, 5000),
            offset=query_int(request, "offset", 0),
        )
    )


@doc(
    "Create a client `{store_id, name, associate_id?, email?, phone?, city?}`",
    action=Action.MANAGE_CLIENTS,
    body=_OBJ,
    responses={201: "created"},
)
async def create_client(request: Request) -> Response:
    staff = authorize(request)
    data = await json_body(request)
    mine = owner_scope(staff, Action.MANAGE_CLIENTS)
    if mine is not None:  # an associate's new client is theirs unless they say whose
        data.setdefault("associate_id", mine)
    store, owner = data.get("store_id"), data.get("associate_id")
    require(
        staff,
        Action.MANAGE_CLIENTS,
        Target(
            store_id=store if isinstance(store, str) else None,
            associate_id=owner if isinstance(owner, str) else None,
        ),
    )
    return JSON(await directory.create_client(request.app.state.db, data), status_code=201)


@doc("Show one client", action=Action.SEE_CLIENTS, responses={404: "unknown client"})
async def get_client(request: Request) -> Response:
    staff = authorize(request)
    c = await directory.get_one(request.app.state.db, Client, request.path_params["id"], "client")
    require(staff, Action.SEE_CLIENTS, Target(store_id=c.store_id, associate_id=c.associate_id))
    return JSON(directory.client_json(c))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/stores", list_stores, methods=["GET"]),
        Route("/api/stores", create_store, methods=["POST"]),
        Route("/api/stores/{id}", get_store, methods=["GET"]),
        Route("/api/staff", list_staff, methods=["GET"]),
        Route("/api/staff", create_staff, methods=["POST"]),
        Route("/api/staff/{id}", get_staff, methods=["GET"]),
        Route("/api/clients", list_clients, methods=["GET"]),
        Route("/api/clients", create_client, methods=["POST"]),
        Route("/api/clients/{id}", get_client, methods=["GET"]),
    ]
