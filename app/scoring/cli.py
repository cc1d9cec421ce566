"""`rfm-clv rescore SHOP`: rescore one shop now, in full, outside the worker."""

from __future__ import annotations

import datetime as dt
import sys

from app.config import Settings
from app.kit.db import make_engine, make_sessionmaker, write_transaction
from app.shops.repository import get_by_domain


def rescore_command(settings: Settings, domain: str) -> int:
    from app.scoring import service

    engine = make_engine(settings.database_url)
    try:
        factory = make_sessionmaker(engine)
        with factory() as session:
            shop = get_by_domain(session, domain)
        if shop is None:
            print(f"shop {domain} is not installed", file=sys.stderr)
            return 1
        with write_transaction(factory) as session:
            result = service.rescore_shop(session, shop.shop_id, dt.datetime.now(dt.UTC), full=True)
        print(
            f"{domain}: {result.customers} customers scored in {result.seconds:.2f} s, "
            f"{result.written} rows written, {len(result.changed)} with changed values, "
            f"{result.stage_changes} stage changes, CLV from the {result.clv_source.replace('_', ' ')}"
        )
        return 0
    finally:
        engine.dispose()
