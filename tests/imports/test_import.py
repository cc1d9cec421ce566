from __future__ import annotations

import pytest

from app.imports import pull
from app.imports.schemas import ImportProgress, ImportState
from tests.imports.conftest import SHOP, World, expected_aggregates, no_sleep, seed_history


def _run_to_end(world: World) -> ImportProgress:
    return world.run(lambda admin: pull.run_import(world.factory, admin, world.shop_id, sleep=no_sleep))


def test_import_gives_the_aggregates_recomputed_from_the_stores_history(world: World) -> None:
    seed_history(world.store, 3000)

    progress = _run_to_end(world)

    assert progress.state == ImportState.done
    assert progress.orders_done == progress.orders_expected == len(world.store.shop(SHOP).orders)
    assert progress.started_at is not None and progress.finished_at is not None
    assert world.aggregates() == expected_aggregates(world.store)


@pytest.mark.both_dbs
def test_import_of_a_small_history_on_both_databases(world: World) -> None:
    seed_history(world.store, 200)

    assert _run_to_end(world).state == ImportState.done
    assert world.aggregates() == expected_aggregates(world.store)


def test_deleted_orders_are_not_revived_by_the_import(world: World) -> None:
    from app.orders import service as orders_service

    seed_history(world.store, 50)
    victim = next(o for o in world.store.shop(SHOP).orders.values() if o.customer_id is not None)
    with world.factory.begin() as s:
        orders_service.delete_order(s, world.shop_id, victim.id, victim.updated_at)

    _run_to_end(world)

    with world.factory() as s:
        from app.models import Order

        assert s.get(Order, (world.shop_id, victim.id)) is None
    expected = expected_aggregates(world.store)
    n, t = expected[victim.customer_id]
    expected[victim.customer_id] = (n - 1, t - victim.current_total_price) if n > 1 else (0, t)
    expected = {c: v for c, v in expected.items() if v[0] > 0}
    assert world.aggregates() == expected


def test_an_import_of_an_empty_store_is_done_with_nothing(world: World) -> None:
    progress = _run_to_end(world)

    assert progress.state == ImportState.done
    assert progress.orders_done == 0 and progress.orders_expected == 0


@pytest.mark.both_dbs
def test_an_import_marks_no_unscored_customer_and_asks_for_a_full_rescore(world: World) -> None:
    import json

    from sqlalchemy import select

    from app.models import Customer, Job
    from app.scoring import service as scoring

    seed_history(world.store, 200)

    _run_to_end(world)

    with world.factory() as s:
        assert s.scalars(select(Customer.customer_id).where(Customer.score_pending)).all() == []
        job = s.scalars(select(Job).where(Job.shop_id == world.shop_id, Job.kind == scoring.RESCORE)).one()
        assert job.state == "pending" and json.loads(job.payload or "{}") == {"full": True}
    with world.factory.begin() as s:
        result = scoring.rescore_shop(s, world.shop_id, world.store.now())
    assert result.full and result.customers == len(world.aggregates()) == result.written


def test_the_import_remembers_the_shops_shopify_id(world: World) -> None:
    """Compliance and uninstall webhooks name the shop by id; the stored id is what they must match."""
    from app.models import Shop

    _run_to_end(world)

    with world.factory() as s:
        shop = s.get(Shop, world.shop_id)
        assert shop is not None
        assert shop.shopify_shop_id == world.store.shop(SHOP).id


@pytest.mark.both_dbs
def test_the_import_stores_the_shops_currency_and_time_zone(world: World) -> None:
    """Money on the pages is the store's currency and days begin at its midnight: both come from
    Shopify, and a zone other than the one the scores were counted in asks for a full rescore."""
    import json

    from sqlalchemy import select

    from app.models import Job, Shop
    from app.scoring import service as scoring

    world.store.update_shop(SHOP, currency_code="EUR", iana_timezone="Pacific/Auckland")
    with world.factory.begin() as s:
        shop = s.get_one(Shop, world.shop_id)
        shop.currency_code, shop.iana_timezone = None, None

    _run_to_end(world)

    with world.factory() as s:
        shop = s.get_one(Shop, world.shop_id)
        assert (shop.currency_code, shop.iana_timezone) == ("EUR", "Pacific/Auckland")
        job = s.scalars(select(Job).where(Job.shop_id == world.shop_id, Job.kind == scoring.RESCORE)).one()
        assert json.loads(job.payload or "{}") == {"full": True}
