"""Endpoint documentation: every public route declares what it does and who may call it.

``live.openapi`` builds ``/openapi.json`` from these declarations and ``tests/test_docs.py``
fails when a route has none or the README does not list it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from live.policy import Action

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class EndpointDoc:
    summary: str
    auth: str = "anyone"  # who, for a route without a policy action (anyone, holder of a URL)
    body: dict[str, Any] | None = None  # JSON schema of the request body
    responses: dict[int, str] = field(default_factory=dict)
    tag: str = "api"
    action: Action | None = None  # the live.policy action the route asks; None: anyone

    @property
    def who(self) -> str:
        """The README's "who" column: the policy action, or who else may call it."""
        return self.action.value if self.action is not None else self.auth


def doc(
    summary: str,
    *,
    auth: str = "anyone",
    body: dict[str, Any] | None = None,
    responses: dict[int, str] | None = None,
    tag: str = "api",
    action: Action | None = None,
) -> Callable[[F], F]:
    def wrap(fn: F) -> F:
        fn.__vitrine_doc__ = EndpointDoc(summary, auth, body, responses or {}, tag, action)  # type: ignore[attr-defined]
        return fn

    return wrap


def endpoint_doc(fn: Any) -> EndpointDoc | None:
    return getattr(fn, "__vitrine_doc__", None)
