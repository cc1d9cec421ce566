"""From a segment to doing something about it: every segment row, filtered list and grid cell links
to the app's segment in Shopify (the id the sync stored), opened the way App Bridge opens admin
pages (``shopify://admin/…``, ``target="_top"``); each segment carries a suggested play the shop may
reword; each grid cell lists exactly its customers."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.models import CustomerScore, SegmentPlay, SyncedSegment
from app.settings.service import update_settings
from app.sync.desired import rfm_segment_key
from app.vocabulary import RFM_SEGMENT_NAMES, SEGMENT_NAMES, SEGMENT_PLAYS, STAGE_LABELS, THIRDS_GROUP_NAMES
from shopify_double import DevStore
from tests.admin.conftest import SHOP, bearer, launch
from tests.admin.seed import NOW, SeededShop
from tests.admin.shopify_sync import double_segments, sync_into_double
from tests.admin.test_thirds_pages import score_by_thirds

LINK = re.compile(r'<a class="shopify-link[^"]*" href="([^"]+)" target="([^"]+)"')


def _row(page_html: str, segment: str, attribute: str = "data-segment") -> str:
    start = page_html.index(f'<tr {attribute}="{segment}">')
    return page_html[start : page_html.index("</tr>", start)]


def test_every_segment_row_links_to_the_segment_the_sync_created_in_shopify(
    page: TestClient, seeded: SeededShop, engine: Engine, store: DevStore, admin_settings: Settings
) -> None:
    sync_into_double(engine, store, admin_settings, seeded.shop_id, SHOP)
    in_shopify = double_segments(store, SHOP)

    body = page.get(f"/app?{launch()}").text

    rows = re.findall(r'<tr data-segment="([^"]+)">', body)
    assert rows and set(rows) <= set(SEGMENT_NAMES)
    for segment in rows:
        expected = f"shopify://admin/customers/segments/{in_shopify[f'RFM · {segment}']}"
        for attribute in ("data-segment", "data-play-segment"):
            assert LINK.findall(_row(body, segment, attribute)) == [(expected, "_top")]
    assert "start a Shopify Email campaign or a marketing automation" in body


def test_the_links_are_the_ids_the_app_stored(
    page: TestClient,
    seeded: SeededShop,
    engine: Engine,
    store: DevStore,
    admin_settings: Settings,
    session: Session,
) -> None:
    sync_into_double(engine, store, admin_settings, seeded.shop_id, SHOP)
    stored = {
        s.key: s.segment_gid.rsplit("/", 1)[-1]
        for s in session.scalars(select(SyncedSegment).where(SyncedSegment.shop_id == seeded.shop_id))
    }

    segments = page.get("/api/overview", headers=bearer()).json()["segments"]

    for s in segments:
        key = rfm_segment_key(s["segment"])
        assert s["shopify_segment"]["href"] == f"shopify://admin/customers/segments/{stored[key]}"
        assert s["shopify_segment"]["target"] == "_top"


def test_before_the_first_sync_a_segment_says_it_is_not_in_shopify_yet(
    page: TestClient, seeded: SeededShop
) -> None:
    body = page.get(f"/app?{launch()}").text

    assert "shopify://admin" not in body
    assert "Not in Shopify yet: the next sync creates it." in body


def test_with_sync_off_a_segment_says_so_instead_of_linking(
    page: TestClient,
    seeded: SeededShop,
    engine: Engine,
    store: DevStore,
    admin_settings: Settings,
    session: Session,
) -> None:
    sync_into_double(engine, store, admin_settings, seeded.shop_id, SHOP)
    update_settings(session, seeded.shop_id, {"sync_enabled": False}, NOW)
    session.commit()

    body = page.get(f"/app?{launch()}").text

    assert "shopify://admin" not in body
    assert "writing to Shopify is off in Settings" in body


def test_a_filtered_list_links_to_its_segment_stage_or_tier_in_shopify(
    page: TestClient, seeded: SeededShop, engine: Engine, store: DevStore, admin_settings: Settings
) -> None:
    sync_into_double(engine, store, admin_settings, seeded.shop_id, SHOP)
    in_shopify = double_segments(store, SHOP)

    for query, name in (
        ({"segment": "At risk"}, "RFM · At risk"),
        ({"stage": "at_risk"}, f"Stage · {STAGE_LABELS['at_risk']}"),
        ({"clv": "top-10"}, "CLV · Top 10%"),
    ):
        data = page.get(f"/api/customers?{launch(**query)}", headers=bearer()).json()
        assert data["shopify_segment"]["href"] == f"shopify://admin/customers/segments/{in_shopify[name]}"
        body = page.get(f"/app/customers?{launch(**query)}").text
        assert LINK.findall(body) == [(f"shopify://admin/customers/segments/{in_shopify[name]}", "_top")]

    both = page.get(f"/api/customers?{launch(segment='At risk', stage='at_risk')}", headers=bearer()).json()
    assert both["shopify_segment"] is None  # no one segment of the app is that combination


def _grid(page: TestClient) -> dict:
    return page.get("/api/overview", headers=bearer()).json()["rfm_grid"]


@pytest.mark.both_dbs
def test_each_grid_cell_lists_exactly_its_customers(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    grid = _grid(page)
    body = page.get(f"/app?{launch()}").text
    links = re.findall(r'<a class="cell-link" href="([^"]+)" aria-label="([^"]+)">', body)
    assert len(links) == sum(1 for row in grid["customers"] for _ in row)

    for i, r in enumerate(grid["rows_r"]):
        for j, fm in enumerate(grid["columns_fm"]):
            href = next(
                html.unescape(h)
                for h, _ in links
                if f"r={r}&amp;fm={fm}&" in h or h.endswith(f"r={r}&amp;fm={fm}")
            )
            assert href.startswith("/app/customers?")
            listed = page.get(href.replace("/app/customers", "/api/customers"), headers=bearer()).json()
            assert listed["total"] == grid["customers"][i][j]
            ids = {int(c["customer_id"]) for c in listed["customers"]}
            expected = set(
                session.scalars(
                    select(CustomerScore.customer_id).where(
                        CustomerScore.shop_id == seeded.shop_id,
                        CustomerScore.recency_score == r,
                        CustomerScore.fm_score == fm,
                    )
                )
            )
            assert ids == expected if len(expected) <= 50 else ids <= expected


def test_a_cell_link_has_an_accessible_name(page: TestClient, seeded: SeededShop) -> None:
    grid = _grid(page)
    body = html.unescape(page.get(f"/app?{launch()}").text)

    r, fm = grid["rows_r"][0], grid["columns_fm"][0]
    n = grid["customers"][0][0]
    segment = grid["segments"][0][0]
    assert f'aria-label="R {r}, FM {fm}: {n:,} ({segment}): list these customers"' in body
    assert 'role="group"' in body  # an image's children would be hidden from assistive technology


def test_a_thirds_grid_cell_lists_the_customers_of_its_f_plus_m(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    score_by_thirds(session, seeded.shop_id)
    grid = _grid(page)

    for i, r in enumerate(grid["rows_r"]):
        for j, fm in enumerate(grid["columns_f_plus_m"]):
            listed = page.get(f"/api/customers?{launch(r=r, fm=fm)}", headers=bearer()).json()
            assert listed["total"] == grid["customers"][i][j]
            assert all(c["segment"] in THIRDS_GROUP_NAMES for c in listed["customers"])
    expected = session.scalar(
        select(func.count()).where(
            CustomerScore.shop_id == seeded.shop_id,
            CustomerScore.recency_score == 3,
            CustomerScore.frequency_score + CustomerScore.monetary_score == 6,
        )
    )
    assert page.get(f"/api/customers?{launch(r=3, fm=6)}", headers=bearer()).json()["total"] == expected


def test_the_cell_list_keeps_the_cell_when_paging_and_in_the_csv(
    page: TestClient, seeded: SeededShop
) -> None:
    grid = _grid(page)
    i, j = max(
        ((i, j) for i in range(len(grid["rows_r"])) for j in range(len(grid["columns_fm"]))),
        key=lambda ij: grid["customers"][ij[0]][ij[1]],
    )
    r, fm = grid["rows_r"][i], grid["columns_fm"][j]

    body = html.unescape(page.get(f"/app/customers?{launch(r=r, fm=fm)}").text)
    assert f"Grid cell R {r} × FM {fm}" in body
    assert f'name="r" value="{r}"' in body and f'name="fm" value="{fm}"' in body
    csv = page.get(f"/app/customers.csv?{launch(r=r, fm=fm)}").text
    assert len(csv.strip().splitlines()) - 1 == grid["customers"][i][j]


# -- suggested plays ---------------------------------------------------------------------------


def test_every_segment_name_has_one_default_play() -> None:
    assert set(SEGMENT_PLAYS) == set(RFM_SEGMENT_NAMES)
    assert all(play.strip() for play in SEGMENT_PLAYS.values())


def test_each_segment_shows_its_play_with_the_overview_numbers(page: TestClient, seeded: SeededShop) -> None:
    body = page.get(f"/app?{launch()}").text
    overview = page.get("/api/overview", headers=bearer()).json()

    for s in overview["segments"]:
        play_row = _row(body, s["segment"], "data-play-segment")
        table_row = _row(body, s["segment"])
        assert html.escape(SEGMENT_PLAYS[s["segment"]], quote=False) in play_row
        for column in ("customers", "revenue_share", "average_predicted_clv"):
            cell = re.compile(rf'data-col="{column}">([^<]*)<')
            assert cell.findall(play_row) == cell.findall(table_row)
        assert s["play"] == SEGMENT_PLAYS[s["segment"]]
    assert "€" in _row(body, overview["segments"][0]["segment"], "data-play-segment")  # the shop's currency


def test_a_shop_rewords_a_play_and_empties_another_back_to_the_default(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    session.add(SegmentPlay(shop_id=seeded.shop_id, segment="Champions", play="Old words", updated_at=NOW))
    session.commit()
    mine = "Send the 15% WELCOMEBACK code, then a personal note a week later."

    response = page.post(f"/app/plays?{launch()}", data={"play_at-risk": mine, "play_champions": "  "})

    assert response.status_code == 303
    overview = {
        s["segment"]: s["play"] for s in page.get("/api/overview", headers=bearer()).json()["segments"]
    }
    assert overview["At risk"] == mine
    assert overview["Champions"] == SEGMENT_PLAYS["Champions"]
    session.expire_all()
    stored = session.scalars(select(SegmentPlay.segment).where(SegmentPlay.shop_id == seeded.shop_id)).all()
    assert stored == ["At risk"]
    assert mine in page.get(f"/app/plays?{launch()}").text


def test_plays_are_per_shop(page: TestClient, seeded: SeededShop, session: Session) -> None:
    page.post(f"/app/plays?{launch()}", data={"play_new": "Our welcome flow."})

    from app.settings.service import segment_plays
    from tests.fixtures.factories import create_shop

    other = create_shop(session, "third.myshopify.com")
    session.commit()
    assert segment_plays(session, other.shop_id)["New"] == SEGMENT_PLAYS["New"]
    assert segment_plays(session, seeded.shop_id)["New"] == "Our welcome flow."
