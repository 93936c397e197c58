"""The viewer's saved checkout profile: name, contact, delivery and a provider-held payment method."""

from __future__ import annotations

from typing import Any

from catalog.buyers import Buyers, load_buyer
from catalog.models import Profile
from catalog.payments.base import InvalidPaymentMethod, PaymentProvider
from live.auth import Viewer
from live.db import Database, now_ms
from live.errors import NotFound, ValidationFailed
from live.http import field

ADDRESS_FIELDS = {
    "line1": 200,
    "line2": 200,
    "city": 100,
    "region": 100,
    "postcode": 20,
    "country": 2,
}


def _text(data: dict[str, Any], name: str, max_len: int, *, required: bool = False) -> str:
    kwargs: dict[str, Any] = {} if required else {"default": ""}
    value = field(
        data,
        name,
        str,
        check=lambda v: len(v) <= max_len and (v.strip() or not required),
        why=f"must be {'1' if required else '0'} to {max_len} characters",
        **kwargs,
    )
    return str(value).strip()


def parse_delivery(data: dict[str, Any]) -> dict[str, Any]:
    method = field(
        data, "method", str, check=lambda v: v in ("collect", "ship"), why="must be collect or ship"
    )
    if method == "collect":
        return {"method": "collect"}
    address = field(data, "address", dict)
    out = {
        k: _text(address, k, n, required=k in ("line1", "city", "country"))
        for k, n in ADDRESS_FIELDS.items()
    }
    if not (len(out["country"]) == 2 and out["country"].isalpha()):
        raise ValidationFailed("`country` is an ISO 3166 alpha-2 code")
    out["country"] = out["country"].upper()
    return {"method": "ship", "address": out}


def profile_json(p: Profile) -> dict[str, Any]:
    return {
        "name": p.name,
        "email": p.email,
        "phone": p.phone,
        "delivery": p.delivery,
        "payment": {"provider": p.payment_provider, "label": p.payment_label},
        "updated_at": p.updated_at,
    }


async def save_profile(
    db: Database,
    providers: dict[str, PaymentProvider],
    who: Viewer,
    data: dict[str, Any],
    buyers: Buyers | None = None,
) -> dict[str, Any]:
    """Save the profile; ``buyers`` (checkout's) learns who the viewer is, so their first order reads less."""
    name = _text(data, "name", 120, required=True)
    email = _text(data, "email", 200)
    if email and ("@" not in email or any(c.isspace() for c in email)):
        raise ValidationFailed("`email` is not an email address")
    phone = _text(data, "phone", 50)
    delivery = parse_delivery(field(data, "delivery", dict))
    payment = field(data, "payment", dict, default=None)
    async with db.read() as s:
        buyer = await load_buyer(s, who)
        existing = await s.get(Profile, buyer.owner_key)
    if buyers is not None:
        buyers.remember(buyer)
    if payment is None and existing is None:
        raise ValidationFailed("`payment` is required the first time")
    method = None
    if payment is not None:
        provider = providers.get(field(payment, "provider", str))
        if provider is None:
            raise InvalidPaymentMethod(
                f"unknown payment provider (available: {', '.join(providers)})"
            )
        method = await provider.create_method(payment)
    async with db.write() as s:
        profile = await s.get(Profile, buyer.owner_key)
        if profile is None:
            assert method is not None
            profile = Profile(
                owner_key=buyer.owner_key,
                payment_provider=method.provider,
                payment_token=method.token,
                payment_label=method.label,
            )
            s.add(profile)
        elif method is not None:
            profile.payment_provider, profile.payment_token = method.provider, method.token
            profile.payment_label = method.label
        profile.name, profile.email, profile.phone, profile.delivery = name, email, phone, delivery
        profile.updated_at = now_ms()
    return profile_json(profile)


async def get_profile(db: Database, who: Viewer) -> dict[str, Any]:
    async with db.read() as s:
        buyer = await load_buyer(s, who)
        profile = await s.get(Profile, buyer.owner_key)
    if profile is None:
        raise NotFound("no saved profile yet", code="profile_not_found")
    return profile_json(profile)
