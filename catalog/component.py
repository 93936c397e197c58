"""Catalog component: product routes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from catalog import products
from live.api import doc
from live.auth import require_staff
from live.http import JSON, json_body


@doc("List products (`?store_id=`)", auth="staff")
async def list_products(request: Request) -> Response:
    require_staff(request)
    return JSON(await products.list_products(request.app.state.db, store_id=request.query_params.get("store_id")))


@doc("Create a product `{title, price, currency, store_id?, description?, image_url?}`", auth="staff",
     body={"type": "object", "required": ["title", "price", "currency"]}, responses={201: "created"})
async def create_product(request: Request) -> Response:
    require_staff(request, "admin", "marketer")
    return JSON(await products.create_product(request.app.state.db, await json_body(request)), status_code=201)


@doc("Show one product", auth="staff", responses={404: "unknown product"})
async def get_product(request: Request) -> Response:
    require_staff(request)
    return JSON(await products.get_product(request.app.state.db, request.path_params["id"]))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/products", list_products, methods=["GET"]),
        Route("/api/products", create_product, methods=["POST"]),
        Route("/api/products/{id}", get_product, methods=["GET"]),
    ]
