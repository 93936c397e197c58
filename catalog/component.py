"""Catalog component: products, stock, profiles, carts, one-tap orders, payments and flash deals.

Its lifespan puts on ``app.state``: ``payments`` (provider name → PaymentProvider),
``checkout`` (:class:`catalog.checkout.Checkout`), ``deals`` (:class:`catalog.deals.Deals`),
``catalog_signals`` and ``catalog_limits``; and runs one sweeper task that settles orders left
pending past their hold, ends overdue deals (deal timers run in the process too) and forgets
old idempotency keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from catalog.checkout import Checkout
from catalog.deals import Deals
from catalog.limits import Limits
from catalog.payments import make_providers
from catalog.routes import deals, products, shop
from catalog.signals import Signals

log = logging.getLogger("vitrine.catalog")
SWEEP_SECONDS = 5.0
PRUNE_KEYS_SECONDS = 3600.0


async def _sweep(checkout: Checkout, deal_service: Deals, limits: Limits, every: float) -> None:
    last_prune = 0.0
    while True:
        await asyncio.sleep(every)
        try:
            limits.prune()
            await checkout.recover()
            await deal_service.end_finished()
            if time.monotonic() - last_prune > PRUNE_KEYS_SECONDS:
                last_prune = time.monotonic()
                await checkout.prune_keys()
        except Exception:
            log.exception("catalog sweep failed")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    st = app.state
    st.payments = make_providers(st.settings.payment_providers, st.db)
    st.catalog_signals = signals = Signals(st)
    st.deals = deal_service = Deals(st.db, signals)
    st.checkout = checkout = Checkout(
        st.db, st.payments, signals, hold_seconds=st.settings.order_hold_seconds
    )
    checkout.deals_to_check = deal_service.end_finished
    answers = Counter(
        "vitrine_checkout_answers",
        "One-tap checkout answers by outcome (paid, out_of_stock, …)",
        ["outcome"],
        registry=st.metrics.registry,
    )
    checkout.count = lambda outcome: answers.labels(outcome).inc()
    await deal_service.schedule_running()
    every = min(SWEEP_SECONDS, max(0.05, st.settings.order_hold_seconds / 4))
    st.catalog_limits = limits = Limits()
    sweeper = asyncio.create_task(
        _sweep(checkout, deal_service, limits, every), name="catalog-sweep"
    )
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await deal_service.close()
        await signals.close()


def routes() -> list[BaseRoute]:
    return [*products.routes(), *shop.routes(), *deals.routes()]
