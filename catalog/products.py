"""Products and variants: create, update, list, show; stock per store and variant."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Product, Stock, Variant
from live.db import Database, new_id, now_ms
from live.directory import get_or_404
from live.errors import ValidationFailed
from live.http import field
from live.models import Store

MAX_VARIANTS = 100
MAX_IMAGES = 20
MAX_STOCK = 10_000_000
MAX_PRICE = 10**11


def _currency(v: str) -> bool:
    return len(v) == 3 and v.isascii() and v.isalpha() and v.isupper()


def _image(v: Any) -> bool:
    return (
        isinstance(v, str)
        and 0 < len(v) <= 500
        and (v.startswith(("https://", "http://", "/")) and not v.startswith("//"))
    )


def variant_json(v: Variant, product: Product) -> dict[str, Any]:
    return {
        "id": v.id,
        "sku": v.sku,
        "size": v.size,
        "colour": v.colour,
        "price": product.price_minor if v.price_minor is None else v.price_minor,
        "active": v.active,
    }


def product_json(
    p: Product, variants: list[Variant] | None = None, stock: dict[str, int] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.id,
        "store_id": p.store_id,
        "title": p.title,
        "description": p.description,
        "price": p.price_minor,
        "currency": p.currency,
        "image_url": p.image_url,
        "images": list(p.images or ([p.image_url] if p.image_url else [])),
        "active": p.active,
    }
    if variants is not None:
        out["variants"] = [
            variant_json(v, p) | ({"stock": stock.get(v.id, 0)} if stock is not None else {})
            for v in variants
        ]
    return out


def _variant_fields(data: dict[str, Any]) -> dict[str, Any]:
    def text(name: str, max_len: int) -> Any:
        return field(
            data, name, str, default="", check=lambda v: len(v) <= max_len, why="is too long"
        )

    return {
        "sku": text("sku", 64),
        "size": text("size", 40),
        "colour": text("colour", 40),
        "price_minor": field(
            data,
            "price",
            int,
            default=None,
            check=lambda v: 0 <= v <= MAX_PRICE,
            why="is minor units, 0 or more",
        ),
    }


def _variants_list(data: dict[str, Any]) -> list[dict[str, Any]]:
    raw = field(data, "variants", list, default=[])
    if len(raw) > MAX_VARIANTS or not all(isinstance(v, dict) for v in raw):
        raise ValidationFailed(f"`variants` must be a list of at most {MAX_VARIANTS} objects")
    return raw  # type: ignore[no-any-return]


def _images(data: dict[str, Any]) -> list[str] | None:
    images = field(data, "images", list, default=None)
    if images is not None and (len(images) > MAX_IMAGES or not all(_image(i) for i in images)):
        raise ValidationFailed(f"`images` must be at most {MAX_IMAGES} http(s) or /relative URLs")
    return images  # type: ignore[no-any-return]


async def create_product(db: Database, data: dict[str, Any]) -> dict[str, Any]:
    store_id = field(data, "store_id", str, default=None)
    images = _images(data) or []
    image_url = field(
        data,
        "image_url",
        str,
        default="",
        check=lambda v: v == "" or _image(v),
        why="must be an http(s) or /relative URL of at most 500 characters",
    )
    if image_url and image_url not in images:
        images.insert(0, image_url)
    product = Product(
        id=field(
            data,
            "id",
            str,
            default=None,
            check=lambda v: 0 < len(v) <= 40,
            why="is 1 to 40 characters",
        )
        or new_id("pr"),
        store_id=store_id,
        title=field(
            data,
            "title",
            str,
            check=lambda v: 0 < len(v.strip()) <= 200,
            why="must be 1 to 200 characters",
        ),
        description=field(
            data, "description", str, default="", check=lambda v: len(v) <= 5000, why="is too long"
        ),
        price_minor=field(
            data, "price", int, check=lambda v: 0 <= v <= MAX_PRICE, why="is minor units, 0 or more"
        ),
        currency=field(
            data, "currency", str, check=_currency, why="is an ISO 4217 code such as CNY"
        ),
        image_url=images[0] if images else "",
        images=images[:MAX_IMAGES],
    )
    raw_variants = _variants_list(data) or [{}]
    variants = [
        Variant(
            id=field(
                v,
                "id",
                str,
                default=None,
                check=lambda x: 0 < len(x) <= 40,
                why="is 1 to 40 characters",
            )
            or new_id("va"),
            product_id=product.id,
            position=i,
            **_variant_fields(v),
        )
        for i, v in enumerate(raw_variants)
    ]
    if len({v.id for v in variants}) != len(variants):
        raise ValidationFailed("variant ids must be unique")
    async with db.write() as s:
        if store_id is not None:
            await get_or_404(s, Store, store_id, "store")
        if await s.get(Product, product.id) is not None:
            raise ValidationFailed(f"product {product.id!r} exists", code="already_exists")
        s.add(product)
        await s.flush()
        s.add_all(variants)
    return product_json(product, variants, {})


async def update_product(db: Database, product_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Change any of title, description, price, currency, images, active; add or change ``variants``."""
    changes: dict[str, Any] = {}
    for name, attr, kind, check in (
        ("title", "title", str, lambda v: 0 < len(v.strip()) <= 200),
        ("description", "description", str, lambda v: len(v) <= 5000),
        ("price", "price_minor", int, lambda v: 0 <= v <= MAX_PRICE),
        ("currency", "currency", str, _currency),
        ("active", "active", bool, None),
    ):
        value = field(data, name, kind, default=None, check=check)
        if value is not None:
            changes[attr] = value
    images = _images(data)
    if images is not None:
        changes["images"], changes["image_url"] = images, images[0] if images else ""
    raw_variants = _variants_list(data)
    async with db.write() as s:
        product = await get_or_404(s, Product, product_id, "product")
        for attr, value in changes.items():
            setattr(product, attr, value)
        existing = {v.id: v for v in await _variants(s, product_id, active_only=False)}
        for i, raw in enumerate(raw_variants):
            vid = field(
                raw,
                "id",
                str,
                default=None,
                check=lambda x: 0 < len(x) <= 40,
                why="is 1 to 40 characters",
            )
            fields = _variant_fields(raw)
            if vid in existing:
                variant = existing[vid]
                for attr, key in (
                    ("sku", "sku"),
                    ("size", "size"),
                    ("colour", "colour"),
                    ("price_minor", "price"),
                ):
                    if raw.get(key) is not None:
                        setattr(variant, attr, fields[attr])
                variant.active = field(raw, "active", bool, default=variant.active)
            else:
                if vid is not None and await s.get(Variant, vid) is not None:
                    raise ValidationFailed(
                        f"variant {vid!r} belongs to another product", code="invalid_variant"
                    )
                s.add(
                    Variant(
                        id=vid or new_id("va"),
                        product_id=product_id,
                        position=len(existing) + i,
                        **fields,
                    )
                )
        await s.flush()
        variants = await _variants(s, product_id, active_only=False)
    return product_json(product, variants)


async def _variants(s: AsyncSession, product_id: str, *, active_only: bool = True) -> list[Variant]:
    q = (
        select(Variant)
        .where(Variant.product_id == product_id)
        .order_by(Variant.position, Variant.id)
    )
    if active_only:
        q = q.where(Variant.active.is_(True))
    return list((await s.scalars(q)).all())


async def variants_by_product(s: AsyncSession, product_ids: list[str]) -> dict[str, list[Variant]]:
    out: dict[str, list[Variant]] = {pid: [] for pid in product_ids}
    rows = await s.scalars(
        select(Variant)
        .where(Variant.product_id.in_(product_ids), Variant.active.is_(True))
        .order_by(Variant.position, Variant.id)
    )
    for v in rows.all():
        out[v.product_id].append(v)
    return out


async def stock_for(s: AsyncSession, store_id: str, product_ids: list[str]) -> dict[str, int]:
    """Units per variant id that ``store_id`` holds for these products."""
    rows = await s.execute(
        select(Stock.variant_id, Stock.quantity).where(
            Stock.store_id == store_id, Stock.product_id.in_(product_ids)
        )
    )
    return {vid: qty for vid, qty in rows.all()}


async def list_products(db: Database, *, store_id: str | None = None) -> list[dict[str, Any]]:
    q = select(Product).where(Product.active.is_(True)).order_by(Product.position, Product.title)
    if store_id:
        q = q.where((Product.store_id == store_id) | Product.store_id.is_(None))
    async with db.read() as s:
        products = list((await s.scalars(q)).all())
        ids = [p.id for p in products]
        variants = await variants_by_product(s, ids)
        stock = await stock_for(s, store_id, ids) if store_id else None
    return [product_json(p, variants[p.id], stock) for p in products]


async def get_product(db: Database, product_id: str) -> dict[str, Any]:
    async with db.read() as s:
        product = await get_or_404(s, Product, product_id, "product")
        variants = await _variants(s, product_id, active_only=False)
        rows = (
            await s.execute(
                select(Stock.store_id, Stock.variant_id, Stock.quantity).where(
                    Stock.product_id == product_id
                )
            )
        ).all()
    out = product_json(product, variants)
    out["stock"] = [{"store_id": st, "variant_id": vid, "quantity": q} for st, vid, q in rows]
    return out


async def set_stock(db: Database, product_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Set the units a store holds of one variant (``variant_id`` may be left out for a one-variant product)."""
    store_id = field(data, "store_id", str)
    variant_id = field(data, "variant_id", str, default=None)
    quantity = field(
        data, "quantity", int, check=lambda v: 0 <= v <= MAX_STOCK, why=f"must be 0 to {MAX_STOCK}"
    )
    async with db.write() as s:
        await get_or_404(s, Product, product_id, "product")
        await get_or_404(s, Store, store_id, "store")
        variants = await _variants(s, product_id, active_only=False)
        if variant_id is None:
            if len(variants) != 1:
                raise ValidationFailed("`variant_id` is required: the product has several variants")
            variant_id = variants[0].id
        elif variant_id not in {v.id for v in variants}:
            raise ValidationFailed(
                f"variant {variant_id!r} is not a variant of this product", code="invalid_variant"
            )
        row = await s.get(Stock, (store_id, variant_id), with_for_update=True)
        if row is None:
            s.add(
                Stock(
                    store_id=store_id,
                    variant_id=variant_id,
                    product_id=product_id,
                    quantity=quantity,
                )
            )
        else:
            row.quantity, row.updated_at = quantity, now_ms()
    return {
        "product_id": product_id,
        "store_id": store_id,
        "variant_id": variant_id,
        "quantity": quantity,
    }
