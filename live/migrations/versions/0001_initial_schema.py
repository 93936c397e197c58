"""Initial schema: stores, staff, clients, sessions, invites, viewers, the room log, catalog,
checkout, payments and analytics.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 09:13:54.062408
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_associate_stats",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("associate_id", sa.String(length=40), nullable=False),
        sa.Column("attended", sa.BigInteger(), nullable=False),
        sa.Column("buyers", sa.BigInteger(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "session_id", "associate_id", name=op.f("pk_analytics_associate_stats")
        ),
    )
    with op.batch_alter_table("analytics_associate_stats", schema=None) as batch_op:
        batch_op.create_index(
            "ix_analytics_associate_stats_associate", ["associate_id"], unique=False
        )

    op.create_table(
        "analytics_concurrency",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("viewers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "bucket", name=op.f("pk_analytics_concurrency")),
    )
    op.create_table(
        "analytics_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("viewer_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("replay", sa.Boolean(), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=True),
        sa.Column("ref", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_events")),
    )
    with op.batch_alter_table("analytics_events", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_events_session_ts", ["session_id", "ts"], unique=False)

    op.create_table(
        "analytics_orders",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("viewer_id", sa.String(length=40), nullable=True),
        sa.Column("associate_id", sa.String(length=40), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("replay", sa.Boolean(), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_analytics_orders")),
    )
    with op.batch_alter_table("analytics_orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_orders_associate_id"), ["associate_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_analytics_orders_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "analytics_product_stats",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("carts", sa.BigInteger(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "session_id", "product_id", name=op.f("pk_analytics_product_stats")
        ),
    )
    op.create_table(
        "analytics_session_stats",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("reach", sa.BigInteger(), nullable=False),
        sa.Column("attended", sa.BigInteger(), nullable=False),
        sa.Column("replay_viewers", sa.BigInteger(), nullable=False),
        sa.Column("engaged", sa.BigInteger(), nullable=False),
        sa.Column("impression_viewers", sa.BigInteger(), nullable=False),
        sa.Column("click_viewers", sa.BigInteger(), nullable=False),
        sa.Column("cart_viewers", sa.BigInteger(), nullable=False),
        sa.Column("buyers", sa.BigInteger(), nullable=False),
        sa.Column("watch_seconds", sa.BigInteger(), nullable=False),
        sa.Column("replay_watch_seconds", sa.BigInteger(), nullable=False),
        sa.Column("peak_concurrent", sa.BigInteger(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("carts", sa.BigInteger(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.Column("replay_orders", sa.BigInteger(), nullable=False),
        sa.Column("replay_revenue", sa.BigInteger(), nullable=False),
        sa.Column("chats", sa.BigInteger(), nullable=False),
        sa.Column("questions", sa.BigInteger(), nullable=False),
        sa.Column("reactions", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("first_ts", sa.BigInteger(), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_analytics_session_stats")),
    )
    op.create_table(
        "analytics_viewers",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("viewer_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("invite_id", sa.String(length=40), nullable=True),
        sa.Column("associate_id", sa.String(length=40), nullable=True),
        sa.Column("replay", sa.Boolean(), nullable=False),
        sa.Column("first_ts", sa.BigInteger(), nullable=False),
        sa.Column("engaged", sa.Boolean(), nullable=False),
        sa.Column("saw_product", sa.Boolean(), nullable=False),
        sa.Column("clicked", sa.Boolean(), nullable=False),
        sa.Column("carted", sa.Boolean(), nullable=False),
        sa.Column("bought", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "viewer_id", name=op.f("pk_analytics_viewers")),
    )
    op.create_table(
        "analytics_watch",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("viewer_id", sa.String(length=40), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("replay", sa.Boolean(), nullable=False),
        sa.Column("bits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "session_id", "viewer_id", "block", "replay", name=op.f("pk_analytics_watch")
        ),
    )
    op.create_table(
        "checkout_requests",
        sa.Column("viewer_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("viewer_id", "key", name=op.f("pk_checkout_requests")),
    )
    with op.batch_alter_table("checkout_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checkout_requests_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "demo_payment_methods",
        sa.Column("token", sa.String(length=60), nullable=False),
        sa.Column("brand", sa.String(length=20), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("outcome", sa.String(length=30), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_demo_payment_methods")),
    )
    op.create_table(
        "demo_payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.String(length=60), nullable=False),
        sa.Column("token", sa.String(length=60), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demo_payments")),
        sa.UniqueConstraint("reference", name=op.f("uq_demo_payments_reference")),
    )
    op.create_table(
        "stores",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("live_enabled", sa.Boolean(), nullable=False),
        sa.Column("blocked_words", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stores")),
    )
    op.create_table(
        "viewer_profiles",
        sa.Column("owner_key", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=50), nullable=False),
        sa.Column("delivery", sa.JSON(), nullable=False),
        sa.Column("payment_provider", sa.String(length=30), nullable=False),
        sa.Column("payment_token", sa.String(length=200), nullable=False),
        sa.Column("payment_label", sa.String(length=60), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_key", name=op.f("pk_viewer_profiles")),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("store_id", sa.String(length=40), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("image_url", sa.String(length=500), nullable=False),
        sa.Column("images", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_products_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_products_store_id"), ["store_id"], unique=False)

    op.create_table(
        "staff",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("store_id", sa.String(length=40), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_staff_store_id_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
    )
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_store_id"), ["store_id"], unique=False)

    op.create_table(
        "clients",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("store_id", sa.String(length=40), nullable=False),
        sa.Column("associate_id", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=50), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["associate_id"], ["staff.id"], name=op.f("fk_clients_associate_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_clients_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
    )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clients_associate_id"), ["associate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_clients_store_id"), ["store_id"], unique=False)

    op.create_table(
        "product_variants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("size", sa.String(length=40), nullable=False),
        sa.Column("colour", sa.String(length=40), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_variants_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_variants")),
    )
    with op.batch_alter_table("product_variants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_product_variants_product_id"), ["product_id"], unique=False
        )

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("store_id", sa.String(length=40), nullable=False),
        sa.Column("host_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("audience", sa.String(length=20), nullable=False),
        sa.Column("style", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("scheduled_at", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("pinned_product_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["staff.id"], name=op.f("fk_sessions_host_id_staff")),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_sessions_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_host_id"), ["host_id"], unique=False)
        batch_op.create_index("ix_sessions_status_sched", ["status", "scheduled_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sessions_store_id"), ["store_id"], unique=False)

    op.create_table(
        "carts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("viewer_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_carts_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carts")),
    )
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_carts_viewer", ["session_id", "viewer_id", "status"], unique=False
        )

    op.create_table(
        "chat_messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("viewer_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_chat_messages_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
    )
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_chat_messages_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "deals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.Column("per_viewer_limit", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("end_reason", sa.String(length=12), nullable=False),
        sa.CheckConstraint("sold >= 0 AND sold <= quantity", name=op.f("ck_deals_sold_within_cap")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_deals_product_id_products")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_deals_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deals")),
    )
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deals_session_id"), ["session_id"], unique=False)

    op.create_table(
        "invites",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("associate_id", sa.String(length=40), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["associate_id"], ["staff.id"], name=op.f("fk_invites_associate_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_invites_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_invites_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invites")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_invites_code_hash")),
        sa.UniqueConstraint(
            "session_id", "client_id", name=op.f("uq_invites_session_id_client_id")
        ),
    )
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invites_associate_id"), ["associate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invites_session_id"), ["session_id"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("session_kind", sa.String(length=10), nullable=False),
        sa.Column("viewer_id", sa.String(length=40), nullable=False),
        sa.Column("owner_key", sa.String(length=80), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=True),
        sa.Column("invite_id", sa.String(length=40), nullable=True),
        sa.Column("associate_id", sa.String(length=40), nullable=True),
        sa.Column("store_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("replay", sa.Boolean(), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("contact", sa.JSON(), nullable=False),
        sa.Column("delivery", sa.JSON(), nullable=False),
        sa.Column("payment_provider", sa.String(length=30), nullable=False),
        sa.Column("payment_ref", sa.String(length=100), nullable=True),
        sa.Column("cart_id", sa.String(length=40), nullable=True),
        sa.Column("reserved_until", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_orders_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_associate_id"), ["associate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_owner_key"), ["owner_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_session_id"), ["session_id"], unique=False)
        batch_op.create_index(
            "ix_orders_status_reserved", ["status", "reserved_until"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_orders_store_id"), ["store_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_viewer_id"), ["viewer_id"], unique=False)

    op.create_table(
        "questions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("viewer_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_questions_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questions")),
    )
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_questions_session_id"), ["session_id"], unique=False)

    op.create_table(
        "room_events",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_room_events_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "id", name=op.f("pk_room_events")),
    )
    op.create_table(
        "session_products",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_session_products_product_id_products")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_session_products_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "product_id", name=op.f("pk_session_products")),
    )
    op.create_table(
        "stock",
        sa.Column("store_id", sa.String(length=40), nullable=False),
        sa.Column("variant_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_stock_quantity_not_negative")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_stock_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_stock_store_id_stores")),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["product_variants.id"],
            name=op.f("fk_stock_variant_id_product_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("store_id", "variant_id", name=op.f("pk_stock")),
    )
    with op.batch_alter_table("stock", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stock_product_id"), ["product_id"], unique=False)

    op.create_table(
        "cart_items",
        sa.Column("cart_id", sa.String(length=40), nullable=False),
        sa.Column("variant_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cart_id"], ["carts.id"], name=op.f("fk_cart_items_cart_id_carts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cart_id", "variant_id", name=op.f("pk_cart_items")),
    )
    op.create_table(
        "deal_claims",
        sa.Column("deal_id", sa.String(length=40), nullable=False),
        sa.Column("viewer_id", sa.String(length=40), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_deal_claims_deal_id_deals"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("deal_id", "viewer_id", name=op.f("pk_deal_claims")),
    )
    op.create_table(
        "order_items",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("variant_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("list_price", sa.BigInteger(), nullable=False),
        sa.Column("deal_id", sa.String(length=40), nullable=True),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_items_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", "variant_id", name=op.f("pk_order_items")),
    )
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_items_product_id"), ["product_id"], unique=False)

    op.create_table(
        "question_votes",
        sa.Column("question_id", sa.String(length=40), nullable=False),
        sa.Column("viewer_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["questions.id"],
            name=op.f("fk_question_votes_question_id_questions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("question_id", "viewer_id", name=op.f("pk_question_votes")),
    )
    op.create_table(
        "viewers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=True),
        sa.Column("anon_key", sa.String(length=64), nullable=True),
        sa.Column("invite_id", sa.String(length=40), nullable=True),
        sa.Column("associate_id", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("banned", sa.Boolean(), nullable=False),
        sa.Column("muted_until", sa.BigInteger(), nullable=False),
        sa.Column("joined_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["associate_id"], ["staff.id"], name=op.f("fk_viewers_associate_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_viewers_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["invite_id"], ["invites.id"], name=op.f("fk_viewers_invite_id_invites")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_viewers_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_viewers")),
        sa.UniqueConstraint("session_id", "anon_key", name=op.f("uq_viewers_session_id_anon_key")),
        sa.UniqueConstraint(
            "session_id", "client_id", name=op.f("uq_viewers_session_id_client_id")
        ),
    )
    with op.batch_alter_table("viewers", schema=None) as batch_op:
        batch_op.create_index("ix_viewers_session", ["session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("viewers", schema=None) as batch_op:
        batch_op.drop_index("ix_viewers_session")

    op.drop_table("viewers")
    op.drop_table("question_votes")
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_items_product_id"))

    op.drop_table("order_items")
    op.drop_table("deal_claims")
    op.drop_table("cart_items")
    with op.batch_alter_table("stock", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_product_id"))

    op.drop_table("stock")
    op.drop_table("session_products")
    op.drop_table("room_events")
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_questions_session_id"))

    op.drop_table("questions")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_viewer_id"))
        batch_op.drop_index(batch_op.f("ix_orders_store_id"))
        batch_op.drop_index("ix_orders_status_reserved")
        batch_op.drop_index(batch_op.f("ix_orders_session_id"))
        batch_op.drop_index(batch_op.f("ix_orders_owner_key"))
        batch_op.drop_index(batch_op.f("ix_orders_associate_id"))

    op.drop_table("orders")
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invites_session_id"))
        batch_op.drop_index(batch_op.f("ix_invites_associate_id"))

    op.drop_table("invites")
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deals_session_id"))

    op.drop_table("deals")
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_messages_session_id"))

    op.drop_table("chat_messages")
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_index("ix_carts_viewer")

    op.drop_table("carts")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_store_id"))
        batch_op.drop_index("ix_sessions_status_sched")
        batch_op.drop_index(batch_op.f("ix_sessions_host_id"))

    op.drop_table("sessions")
    with op.batch_alter_table("product_variants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_variants_product_id"))

    op.drop_table("product_variants")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clients_store_id"))
        batch_op.drop_index(batch_op.f("ix_clients_associate_id"))

    op.drop_table("clients")
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_store_id"))

    op.drop_table("staff")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_store_id"))

    op.drop_table("products")
    op.drop_table("viewer_profiles")
    op.drop_table("stores")
    op.drop_table("demo_payments")
    op.drop_table("demo_payment_methods")
    with op.batch_alter_table("checkout_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkout_requests_order_id"))

    op.drop_table("checkout_requests")
    op.drop_table("analytics_watch")
    op.drop_table("analytics_viewers")
    op.drop_table("analytics_session_stats")
    op.drop_table("analytics_product_stats")
    with op.batch_alter_table("analytics_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_orders_session_id"))
        batch_op.drop_index(batch_op.f("ix_analytics_orders_associate_id"))

    op.drop_table("analytics_orders")
    with op.batch_alter_table("analytics_events", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_events_session_ts")

    op.drop_table("analytics_events")
    op.drop_table("analytics_concurrency")
    with op.batch_alter_table("analytics_associate_stats", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_associate_stats_associate")

    op.drop_table("analytics_associate_stats")
