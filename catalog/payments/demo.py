"""The built-in ``demo`` provider: behaves like a real card processor, with test card numbers.

It keeps its vault and ledger in its own tables (as a remote processor would keep them on its
side), so payments survive restarts and every process sees them. Test cards (any future expiry):

- ``4242424242424242`` and any other Luhn-valid number: approved;
- ``4000000000000002``: declined (``card_declined``);
- ``4000000000009995``: declined (``insufficient_funds``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog.models import DemoPayment, DemoPaymentMethod, table
from catalog.payments.base import (
    InvalidPaymentMethod,
    Payment,
    PaymentDeclined,
    PaymentMethod,
    PaymentUnavailable,
)
from live.db import Database, new_id, now_ms
from live.errors import Conflict

DECLINES = {"4000000000000002": "card_declined", "4000000000009995": "insufficient_funds"}
BRANDS = (("4", "visa"), ("5", "mastercard"), ("34", "amex"), ("37", "amex"), ("62", "unionpay"))


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _brand(number: str) -> str:
    return next((b for prefix, b in BRANDS if number.startswith(prefix)), "card")


PAYMENTS, METHODS = table(DemoPayment), table(DemoPaymentMethod)
METHOD_CACHE = 100_000


def _payment(p: Any) -> Payment:
    return Payment(
        id=p.id,
        reference=p.reference,
        amount=p.amount,
        currency=p.currency,
        status=p.status,
        refunded=p.refunded,
    )


class DemoProvider:
    """The demo processor. Its vault is insert-only, so a process remembers what each token does; its
    ledger rows are written with single Core statements, and checkout may write the captured payment in
    its own commit transaction (:meth:`charge_in`)."""

    name = "demo"

    def __init__(self, db: Database) -> None:
        self.db = db
        self._outcomes: dict[str, str] = {}  # token → approve | card_declined | …

    async def create_method(self, details: dict[str, Any]) -> PaymentMethod:
        raw = details.get("card_number")
        if not isinstance(raw, str):
            raise InvalidPaymentMethod("`payment.card_number` is required (a test card number)")
        number = raw.replace(" ", "").replace("-", "")
        if not (number.isdigit() and 12 <= len(number) <= 19 and luhn_ok(number)):
            raise InvalidPaymentMethod("`payment.card_number` is not a valid card number")
        token, brand, outcome = new_id("pm_demo"), _brand(number), DECLINES.get(number, "approve")
        async with self.db.write() as s:
            await (await s.connection()).execute(
                insert(METHODS).values(
                    token=token,
                    brand=brand,
                    last4=number[-4:],
                    outcome=outcome,
                    created_at=now_ms(),
                )
            )
        self._remember(token, outcome)
        return PaymentMethod(self.name, token, f"{brand} •••• {number[-4:]}")

    def _remember(self, token: str, outcome: str) -> None:
        if len(self._outcomes) >= METHOD_CACHE:
            self._outcomes.clear()
        self._outcomes[token] = outcome

    async def _approve(self, conn: AsyncConnection, token: str) -> None:
        """Raise PaymentDeclined unless the token's card approves."""
        outcome = self._outcomes.get(token)
        if outcome is None:
            outcome = await conn.scalar(select(METHODS.c.outcome).where(METHODS.c.token == token))
            if outcome is None:
                raise PaymentDeclined("the saved payment method is no longer valid")
            self._remember(token, outcome)
        if outcome != "approve":
            raise PaymentDeclined(f"the card was declined ({outcome})")

    async def _insert(
        self,
        conn: AsyncConnection,
        token: str,
        amount: int,
        currency: str,
        reference: str,
        status: str,
    ) -> Payment:
        await self._approve(conn, token)
        pay = Payment(
            id=new_id("py_demo"),
            reference=reference,
            amount=amount,
            currency=currency,
            status=status,
        )
        await conn.execute(
            insert(PAYMENTS).values(
                id=pay.id,
                reference=reference,
                token=token,
                amount=amount,
                currency=currency,
                status=status,
                refunded=0,
                created_at=now_ms(),
            )
        )
        return pay

    async def charge_in(
        self, conn: AsyncConnection, token: str, amount: int, currency: str, *, reference: str
    ) -> Payment:
        return await self._insert(conn, token, amount, currency, reference, "captured")

    async def authorize(self, token: str, amount: int, currency: str, *, reference: str) -> Payment:
        try:
            async with self.db.write() as s:
                return await self._insert(
                    await s.connection(), token, amount, currency, reference, "authorized"
                )
        except (
            IntegrityError
        ):  # authorized before for this reference: the same payment, not a second one
            existing = await self.lookup(reference)
            if existing is None:
                raise
            return existing

    async def _move(self, payment_id: str, frm: tuple[str, ...], to: str) -> Payment:
        async with self.db.write() as s:
            conn = await s.connection()
            await conn.execute(
                update(PAYMENTS)
                .where(PAYMENTS.c.id == payment_id, PAYMENTS.c.status.in_(frm))
                .values(status=to)
            )
            pay = (await conn.execute(select(PAYMENTS).where(PAYMENTS.c.id == payment_id))).first()
        if pay is None:
            raise PaymentUnavailable(f"unknown payment {payment_id!r}")
        if pay.status != to:
            raise Conflict(f"payment is {pay.status}, cannot become {to}", code="payment_state")
        return _payment(pay)

    async def capture(self, payment_id: str) -> Payment:
        return await self._move(payment_id, ("authorized",), "captured")

    async def void(self, payment_id: str) -> Payment:
        return await self._move(payment_id, ("authorized",), "voided")

    async def refund(self, payment_id: str, amount: int | None = None) -> Payment:
        async with self.db.write() as s:
            pay = await s.get(DemoPayment, payment_id)
            if pay is None:
                raise PaymentUnavailable(f"unknown payment {payment_id!r}")
            if pay.status not in ("captured", "refunded"):
                raise Conflict(
                    f"payment is {pay.status}; only captured payments are refunded",
                    code="payment_state",
                )
            pay.refunded = min(
                pay.amount, pay.refunded + (pay.amount - pay.refunded if amount is None else amount)
            )
            if pay.refunded >= pay.amount:
                pay.status = "refunded"
        return _payment(pay)

    async def lookup(self, reference: str) -> Payment | None:
        async with self.db.engine.connect() as conn:
            pay = (
                await conn.execute(select(PAYMENTS).where(PAYMENTS.c.reference == reference))
            ).first()
        return None if pay is None else _payment(pay)
