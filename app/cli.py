"""`rfm-clv`: the operator's command line (demo, migrations, data requests)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from app.config import get_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rfm-clv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="the whole product on a local Shopify double (Ctrl-C stops)")
    demo.add_argument("--customers", type=int, default=8000, help="customers to generate (default 8000)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--port", type=int, default=8000, help="port of the app's pages (0: any free port)")
    demo.add_argument("--orders-per-second", type=float, default=2.0, help="new orders streamed as webhooks")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")

    commands.add_parser("migrate", help="run the database migrations up to head")
    commands.add_parser(
        "rotate-token-keys",
        help="re-encrypt every stored Shopify token with the first TOKEN_ENCRYPTION_KEYS key",
    )

    request = commands.add_parser("data-request", help="print what the app holds about one customer (JSON)")
    request.add_argument("shop", help="the shop's myshopify.com domain")
    request.add_argument("customer_id", type=int)

    history = commands.add_parser("import", help="import the shop's order history now (bulk operation)")
    history.add_argument("shop", help="the shop's myshopify.com domain")
    reconcile = commands.add_parser("reconcile", help="refetch orders webhooks may have missed")
    reconcile.add_argument("shop", help="the shop's myshopify.com domain")
    commands.add_parser("worker", help="run the background worker until SIGTERM (= python -m app.worker)")
    rescore = commands.add_parser("rescore", help="rescore one shop now (full) and print what changed")
    rescore.add_argument("shop", help="the shop's myshopify.com domain")

    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "demo":
        try:
            from app.demo.run import run_demo
        except ModuleNotFoundError as missing:  # the Shopify double ships with the dev extra only
            if (missing.name or "").split(".")[0] not in ("shopify_double", "graphql"):
                raise
            print("the demo needs the development extra: pip install '.[dev]'", file=sys.stderr)
            return 2
        from app.kit.observability import configure_logging

        configure_logging("WARNING", json_logs=settings.json_logs)
        result = run_demo(
            settings,
            customers=args.customers,
            seed=args.seed,
            port=args.port,
            orders_per_second=args.orders_per_second,
            duration=args.duration,
        )
        return 1 if result.errors else 0
    elif args.command == "migrate":
        from app.kit.db import migrate

        migrate(settings.database_url)
        print("database is at the latest migration")
    elif args.command == "rotate-token-keys":
        from app.kit.db import make_engine, make_sessionmaker, write_transaction
        from app.shops.service import rotate_token_encryption
        from app.shops.tokens import token_cipher

        engine = make_engine(settings.database_url)
        with write_transaction(make_sessionmaker(engine)) as session:
            count = rotate_token_encryption(session, token_cipher(settings))
        engine.dispose()
        print(f"re-encrypted the tokens of {count} shop(s)")
    elif args.command == "data-request":
        from app.kit.db import make_engine, make_sessionmaker
        from app.privacy.service import customer_data_export

        engine = make_engine(settings.database_url)
        with make_sessionmaker(engine)() as session:
            export = customer_data_export(session, args.shop, args.customer_id)
        engine.dispose()
        if export is None:
            print(f"shop {args.shop} is not installed", file=sys.stderr)
            return 1
        print(json.dumps(export, indent=2, default=str))
    elif args.command in ("import", "reconcile"):
        from app.imports.cli import import_command, reconcile_command

        return (import_command if args.command == "import" else reconcile_command)(settings, args.shop)
    elif args.command == "worker":
        from app.worker.__main__ import main as run_worker

        return run_worker()
    elif args.command == "rescore":
        from app.scoring.cli import rescore_command

        return rescore_command(settings, args.shop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
