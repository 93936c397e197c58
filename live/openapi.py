"""``/openapi.json`` built from the routes' :func:`live.api.doc` declarations."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from live import __version__
from live.api import endpoint_doc

_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "staff": [{"bearer": []}],
    "viewer": [{"bearer": []}],
    "host": [{"bearer": []}],
    "host or staff": [{"bearer": []}],
}


def iter_routes(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, set[str], Any]]:
    out: list[tuple[str, set[str], Any]] = []
    for r in routes:
        if isinstance(r, Route):
            out.append((prefix + r.path, set(r.methods or ()) - {"HEAD"}, r.endpoint))
        elif isinstance(r, WebSocketRoute):
            out.append((prefix + r.path, {"WEBSOCKET"}, r.endpoint))
        elif isinstance(r, Mount) and r.routes:
            out.extend(iter_routes(list(r.routes), prefix + r.path))
    return out


def build(routes: list[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, methods, endpoint in iter_routes(routes):
        for method in sorted(methods):
            fn = (
                getattr(endpoint, method.lower(), endpoint)
                if isinstance(endpoint, type)
                else endpoint
            )
            d = endpoint_doc(fn) or endpoint_doc(endpoint)
            if d is None or method == "WEBSOCKET":
                continue
            op: dict[str, Any] = {
                "summary": d.summary,
                "tags": [d.tag],
                "x-auth": d.who,  # the access-policy action (docs/access.md), or who else
                **({"x-policy-action": d.action.value} if d.action is not None else {}),
                "parameters": [
                    {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                    for p in re.findall(r"{(\w+)(?::\w+)?}", path)
                ],
                "responses": {
                    str(k): {"description": v} for k, v in ({200: "OK"} | d.responses).items()
                },
            }
            if d.auth in _SECURITY:
                op["security"] = _SECURITY[d.auth]
            if d.body is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": d.body}},
                }
            paths.setdefault(re.sub(r"{(\w+):\w+}", r"{\1}", path), {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Vitrine",
            "version": __version__,
            "description": 'Live-shopping session server. Errors are {"error": code, "detail": text}.',
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
