"""The ``vitrine`` command: serve, seed, db upgrade, token, simulate."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from live.config import ConfigError, Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "relay_workers"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings.from_env(**overrides)


def cmd_upgrade(args: argparse.Namespace) -> int:
    from live.schema import upgrade

    settings = _settings(args)
    upgrade(settings.database_url)
    print(f"database is up to date ({settings.database_url.split('@')[-1]})")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from live.db import Database
    from live.schema import upgrade
    from seeds import demo  # type: ignore[attr-defined,unused-ignore]

    settings = _settings(args)
    upgrade(settings.database_url)

    async def run() -> dict[str, int]:
        db = Database(settings.database_url)
        try:
            return await demo.seed(db, Settings.from_env().data_dir)
        finally:
            await db.dispose()

    counts = asyncio.run(run())
    print("seeded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from live.auth import ROLES, Tokens
    from live.db import Database
    from live.models import StaffMember

    settings = _settings(args)
    tokens = Tokens(settings.secret_key)
    staff_id, role, store_id = args.staff_id, args.role, None
    if staff_id:

        async def lookup() -> StaffMember | None:
            db = Database(settings.database_url)
            try:
                async with db.read() as s:
                    return await s.get(StaffMember, staff_id)
            finally:
                await db.dispose()

        member = asyncio.run(lookup())
        if member is None:
            print(
                f"no staff member {staff_id!r} (run `vitrine seed` or create one)", file=sys.stderr
            )
            return 2
        role, store_id = role or member.role, member.store_id
    else:
        staff_id = "admin"
        role = role or "admin"
    if role not in ROLES:
        print(f"role must be one of {ROLES}", file=sys.stderr)
        return 2
    print(tokens.staff(staff_id, role, store_id, ttl=args.ttl))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from live.schema import upgrade

    settings = _settings(args)
    upgrade(settings.database_url)
    if args.demo:
        cmd_seed(args)
        _print_demo(settings)
    os.environ["VITRINE_HOST"] = settings.host
    os.environ["VITRINE_PORT"] = str(settings.port)
    if args.relay_workers is not None:
        os.environ["VITRINE_RELAY_WORKERS"] = str(args.relay_workers)
    uvicorn.run(
        "live.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_config=None,
        proxy_headers=True,
        lifespan="on",
        access_log=False,
    )
    return 0


def _print_demo(settings: Settings) -> None:
    from live.auth import Tokens

    tokens = Tokens(settings.secret_key)
    base = f"http://{settings.host}:{settings.port}"
    admin = tokens.staff("sf_admin", "admin", None)
    print(
        f"\nVitrine demo on {base}\n  sign in at {base}/login with this admin token:\n  {admin}\n"
        f"  sessions: {base}/api/sessions   dashboard: {base}/dashboard\n",
        flush=True,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        from live.analytics import simulate  # type: ignore[attr-defined,unused-ignore]
    except ModuleNotFoundError:
        print("analytics are not available in this build", file=sys.stderr)
        return 2
    return int(simulate.main(args) or 0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vitrine", description="Vitrine live-shopping session server")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (upgrades the database first)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--demo", action="store_true", help="seed demo data and print a sign-in token"
    )
    serve.add_argument(
        "--relay-workers",
        type=int,
        dest="relay_workers",
        help="relay worker processes for viewers (default: one per core)",
    )
    serve.set_defaults(func=cmd_serve)

    seed = sub.add_parser("seed", help="load the demo brand (idempotent)")
    seed.set_defaults(func=cmd_seed)

    db = sub.add_parser("db", help="database schema")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply migrations")
    up.set_defaults(func=cmd_upgrade)

    token = sub.add_parser("token", help="mint a staff token")
    token.add_argument(
        "--staff-id", dest="staff_id", help="staff member (role and store read from the database)"
    )
    token.add_argument("--role", choices=("admin", "marketer", "manager", "associate"))
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    token.set_defaults(func=cmd_token)

    sim = sub.add_parser(
        "simulate", help="fill the database with a season of sessions (demo history)"
    )
    sim.add_argument("--sessions", type=int, default=120)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument(
        "--public-max",
        type=int,
        default=None,
        dest="public_max",
        help="largest public audience drawn (default 30000; 300000 for flagship shows)",
    )
    sim.set_defaults(func=cmd_simulate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
