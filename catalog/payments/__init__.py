"""Payment providers behind one interface (:class:`catalog.payments.base.PaymentProvider`)."""

from __future__ import annotations

from catalog.payments.base import PaymentProvider
from catalog.payments.demo import DemoProvider
from live.config import ConfigError
from live.db import Database


def make_providers(names: str, db: Database) -> dict[str, PaymentProvider]:
    """The providers named in ``VITRINE_PAYMENT_PROVIDERS`` (comma-separated)."""
    known = {"demo": DemoProvider}
    out: dict[str, PaymentProvider] = {}
    for name in (n.strip() for n in names.split(",")):
        if not name:
            continue
        if name not in known:
            raise ConfigError(
                f"VITRINE_PAYMENT_PROVIDERS: unknown provider {name!r} (known: {', '.join(known)})"
            )
        out[name] = known[name](db)
    return out
