"""The built-in ``demo`` provider: behaves like a real card processor, with test card numbers.

It keeps its vault and ledger in its own tables (as a remote processor would keep them on its
side), so payments survive restarts and every process sees them. Test cards (any future expiry):

- ``4242424242424242`` and any other Luhn-valid number: approved;
- ``4000000000000002``: declined (``card_declined``);
- ``4000000000009995``: declined (``insufficient_funds``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from catalog.models import DemoPayment, DemoPaymentMethod
from catalog.payments.base import (
    InvalidPaymentMethod,
    Payment,
    PaymentDeclined,
    PaymentMethod,
    PaymentUnavailable,
)
from live.db import Database, new_id
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


def _payment(p: DemoPayment) -> Payment:
    return Payment(id=p.id, reference=p.reference, amount=p.amount, currency=p.currency, status=p.status,
                   refunded=p.refunded)


class DemoProvider:
    name = "demo"

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_method(self, details: dict[str, Any]) -> PaymentMethod:
        raw = details.get("card_number")
        if not isinstance(raw, str):
            raise InvalidPaymentMethod("`payment.card_number` is required (a test card number)")
        number = raw.replace(" ", "").replace("-", "")
        if not (number.isdigit() and 12 <= len(number) <= 19 and luhn_ok(number)):
            raise InvalidPaymentMethod("`payment.card_number` is not a valid card number")
        method = DemoPaymentMethod(token=new_id("pm_demo"), brand=_brand(number), last4=number[-4:],
                                   outcome=DECLINES.get(number, "approve"))
        async with self.db.write() as s:
            s.add(method)
        return PaymentMethod(self.name, method.token, f"{method.brand} •••• {method.last4}")

    async def authorize(self, token: str, amount: int, currency: str, *, reference: str) -> Payment:
        try:
            async with self.db.write() as s:
                method = await s.get(DemoPaymentMethod, token)
                if method is None:
                    raise PaymentDeclined("the saved payment method is no longer valid")
                if method.outcome != "approve":
                    raise PaymentDeclined(f"the card was declined ({method.outcome})")
                pay = DemoPayment(id=new_id("py_demo"), reference=reference, token=token, amount=amount,
                                  currency=currency, status="authorized")
                s.add(pay)
        except IntegrityError:  # authorized before for this reference: the same payment, not a second one
            existing = await self.lookup(reference)
            if existing is None:
                raise
            return existing
        return _payment(pay)

    async def _move(self, payment_id: str, frm: tuple[str, ...], to: str) -> Payment:
        async with self.db.write() as s:
            await s.execute(update(DemoPayment).where(DemoPayment.id == payment_id, DemoPayment.status.in_(frm))
                            .values(status=to))
            pay = await s.get(DemoPayment, payment_id, populate_existing=True)
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
                raise Conflict(f"payment is {pay.status}; only captured payments are refunded",
                               code="payment_state")
            pay.refunded = min(pay.amount, pay.refunded + (pay.amount - pay.refunded if amount is None else amount))
            if pay.refunded >= pay.amount:
                pay.status = "refunded"
        return _payment(pay)

    async def lookup(self, reference: str) -> Payment | None:
        async with self.db.read() as s:
            pay = await s.scalar(select(DemoPayment).where(DemoPayment.reference == reference))
        return None if pay is None else _payment(pay)
