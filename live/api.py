"""Endpoint documentation: every public route declares what it does and who may call it.

``live.openapi`` builds ``/openapi.json`` from these declarations and ``tests/test_docs.py``
fails when a route has none or the README does not list it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class EndpointDoc:
    summary: str
    auth: str = "anyone"  # anyone | staff | viewer | host | host or staff
    body: dict[str, Any] | None = None  # JSON schema of the request body
    responses: dict[int, str] = field(default_factory=dict)
    tag: str = "api"


def doc(
    summary: str,
    *,
    auth: str = "anyone",
    body: dict[str, Any] | None = None,
    responses: dict[int, str] | None = None,
    tag: str = "api",
) -> Callable[[F], F]:
    def wrap(fn: F) -> F:
        fn.__vitrine_doc__ = EndpointDoc(summary, auth, body, responses or {}, tag)  # type: ignore[attr-defined]
        return fn

    return wrap


def endpoint_doc(fn: Any) -> EndpointDoc | None:
    return getattr(fn, "__vitrine_doc__", None)
