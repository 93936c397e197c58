"""The one pricing rule: what a viewer pays for a line now. Pure; checkout, the cards and the watch page
(``web/static/js/watch.js``, ``priceNow``) apply the same rule, so the price shown is the price charged.

A line is at the deal price when a deal is running on its product, the whole line fits in what is left of
the deal (``quantity - sold``) and in what is left of *this viewer's* limit (``per_viewer_limit -
claimed``); otherwise it is at the regular price. A line is never split between the two prices (an order
has one price per variant), so 3 units with 2 left of the viewer's limit are 3 at the regular price: the
card (one unit) shows the deal price while it applies to that viewer, the regular price after.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DealTerms:
    """A deal as the rule needs it, with how many units this viewer already holds at its price."""

    deal_id: str
    price: int
    quantity: int
    sold: int
    per_viewer_limit: int
    ends_at: int
    ended_at: int | None = None
    claimed: int = 0

    def running(self, now: int) -> bool:
        return self.ended_at is None and self.ends_at > now

    def left_for_viewer(self) -> int:
        return max(0, min(self.quantity - self.sold, self.per_viewer_limit - self.claimed))


@dataclass(frozen=True)
class Price:
    unit_price: int
    deal_id: str | None  # the deal the line is priced by, or None: the regular price


def price_for(list_price: int, qty: int, deal: DealTerms | None, now: int) -> Price:
    """What this viewer pays per unit for ``qty`` units now (see the module's rule)."""
    if deal is None or not deal.running(now) or qty > deal.left_for_viewer():
        return Price(list_price, None)
    return Price(min(deal.price, list_price), deal.deal_id)
