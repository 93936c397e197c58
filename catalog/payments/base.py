"""The payment provider interface: what checkout needs from WeChat Pay, Alipay, Stripe or the demo.

Checkout calls, in order: ``authorize`` (hold the amount), ``capture`` (take it) or ``void``
(release it), and later ``refund``. Every call is keyed by our order id (``reference``) so that a
retry after a crash finds the same payment instead of charging twice; ``lookup`` answers "what
happened to this order's payment?" when the process died between two calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection

from live.errors import VitrineError


class PaymentDeclined(VitrineError):
    """The provider refused the payment (the buyer's card, funds or limits): 402."""

    status, code = 402, "payment_declined"


class PaymentUnavailable(VitrineError):
    """The provider could not be reached or failed: the outcome is unknown until ``lookup``."""

    status, code = 503, "payment_unavailable"


class InvalidPaymentMethod(VitrineError):
    status, code = 422, "payment_method_invalid"


@dataclass(frozen=True)
class PaymentMethod:
    """A stored payment method: the provider's token and a label safe to show (``visa •••• 4242``)."""

    provider: str
    token: str
    label: str


@dataclass(frozen=True)
class Payment:
    """The provider's view of one payment."""

    id: str
    reference: str
    amount: int
    currency: str
    status: str  # authorized | captured | voided | refunded
    refunded: int = 0


class PaymentProvider(Protocol):
    name: str

    async def create_method(self, details: dict[str, Any]) -> PaymentMethod:
        """Turn what the buyer entered (or a client-side token) into a reusable stored method."""

    async def authorize(self, token: str, amount: int, currency: str, *, reference: str) -> Payment:
        """Hold ``amount``; idempotent per ``reference``. Raises PaymentDeclined / PaymentUnavailable."""

    async def capture(self, payment_id: str) -> Payment:
        """Take an authorized payment; capturing twice is a no-op."""

    async def void(self, payment_id: str) -> Payment:
        """Release an authorization that will not be captured; voiding twice is a no-op."""

    async def refund(self, payment_id: str, amount: int | None = None) -> Payment:
        """Give back ``amount`` (all of it when None) of a captured payment; idempotent on the total."""

    async def lookup(self, reference: str) -> Payment | None:
        """The payment made for ``reference``, if any (crash recovery)."""


@runtime_checkable
class LocalLedger(Protocol):
    """A provider that keeps its ledger in our own database (the demo) can take a payment inside checkout's
    commit transaction: the captured payment and the paid order are committed together, or neither is.
    A remote provider cannot, and goes through ``authorize`` and ``capture``."""

    async def charge_in(
        self, conn: AsyncConnection, token: str, amount: int, currency: str, *, reference: str
    ) -> Payment:
        """Authorize and capture ``amount`` in the caller's transaction. Raises PaymentDeclined."""
