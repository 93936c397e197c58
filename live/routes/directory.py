"""``/api/stores``, ``/api/staff``, ``/api/clients``: staff only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from live import directory
from live.api import doc
from live.auth import check_store, require_staff
from live.http import JSON, json_body, query_int
from live.models import Client, StaffMember, Store

_OBJ = {"type": "object"}


@doc("List stores (`?live_enabled=true|false`)", auth="staff")
async def list_stores(request: Request) -> Response:
    require_staff(request)
    flag = request.query_params.get("live_enabled")
    return JSON(
        await directory.list_stores(
            request.app.state.db, live_enabled=None if flag is None else flag == "true"
        )
    )


@doc("Create a store", auth="staff", body=_OBJ, responses={201: "created"})
async def create_store(request: Request) -> Response:
    require_staff(request, "admin")
    return JSON(
        await directory.create_store(request.app.state.db, await json_body(request)),
        status_code=201,
    )


@doc("Show one store", auth="staff", responses={404: "unknown store"})
async def get_store(request: Request) -> Response:
    require_staff(request)
    s = await directory.get_one(request.app.state.db, Store, request.path_params["id"], "store")
    return JSON(directory.store_json(s))


@doc("List staff (`?store_id=&role=`)", auth="staff")
async def list_staff(request: Request) -> Response:
    require_staff(request)
    q = request.query_params
    return JSON(
        await directory.list_staff(
            request.app.state.db, store_id=q.get("store_id"), role=q.get("role")
        )
    )


@doc(
    "Create a staff member `{name, role, store_id?, email?}`",
    auth="staff",
    body=_OBJ,
    responses={201: "created"},
)
async def create_staff(request: Request) -> Response:
    require_staff(request, "admin")
    return JSON(
        await directory.create_staff(request.app.state.db, await json_body(request)),
        status_code=201,
    )


@doc("Show one staff member", auth="staff", responses={404: "unknown staff"})
async def get_staff(request: Request) -> Response:
    require_staff(request)
    s = await directory.get_one(
        request.app.state.db, StaffMember, request.path_params["id"], "staff"
    )
    return JSON(directory.staff_json(s))


@doc("List clients (`?store_id=&associate_id=&limit=&offset=`)", auth="staff")
async def list_clients(request: Request) -> Response:
    staff = require_staff(request)
    q = request.query_params
    store_id = q.get("store_id")
    if staff.role == "associate":  # an associate's client book is their own store's
        store_id = store_id or staff.store_id or ""
        check_store(staff, store_id)
    return JSON(
        await directory.list_clients(
            request.app.state.db,
            store_id=store_id,
            associate_id=q.get("associate_id"),
            limit=query_int(request, "limit", 500, 1, 5000),
            offset=query_int(request, "offset", 0),
        )
    )


@doc(
    "Create a client `{store_id, name, associate_id?, email?, phone?, city?}`",
    auth="staff",
    body=_OBJ,
    responses={201: "created"},
)
async def create_client(request: Request) -> Response:
    staff = require_staff(request)
    data = await json_body(request)
    if isinstance(data.get("store_id"), str):
        check_store(staff, data["store_id"])
    return JSON(await directory.create_client(request.app.state.db, data), status_code=201)


@doc("Show one client", auth="staff", responses={404: "unknown client"})
async def get_client(request: Request) -> Response:
    staff = require_staff(request)
    c = await directory.get_one(request.app.state.db, Client, request.path_params["id"], "client")
    check_store(staff, c.store_id)
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
