"""PostgreSQL: one server-side function per order delivery (the webhook hot path in one round trip).

`rfm_ingest_order` takes an order delivery's facts, already parsed and derived by the Python rules
(`app.orders.service.ingest_order`), and does in one statement what `apply_order` does in five:
find the shop, lock the order and its buyer(s), refuse a deleted or stale delivery, upsert the ledger
row (never older over newer) and rewrite the buyer(s)' aggregates. It hands back `full` when
refunds newer than the delivery are waiting to be netted, so that the Python rules convert and
apply them (a rare path). `rfm_lock_key` is `app.sql.lock_key` in SQL: the same 64-bit key, so the
function and the Python paths lock each other out.

SQLite has no such functions; the Python rules run there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 21:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


LOCK_KEY = """
CREATE OR REPLACE FUNCTION rfm_lock_key(namespace text, shop_id bigint, id bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ('x' || substr(encode(sha256(convert_to(namespace || ':' || shop_id || ':' || id, 'UTF8')),
                                 'hex'), 1, 16))::bit(64)::bigint
$$
"""

INGEST_ORDER = """
CREATE OR REPLACE FUNCTION rfm_ingest_order(
    p_domain text, p_now timestamptz, p_touch boolean,
    p_order_id bigint, p_customer_id bigint, p_ordered_at timestamptz, p_updated_at timestamptz,
    p_cancelled_at timestamptz, p_test boolean, p_financial_status text,
    p_current_total numeric, p_presentment_total numeric, p_total_discounts numeric,
    p_discount_codes text, p_discounted boolean, p_source_name text,
    p_value numeric, p_qualifies boolean
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_shop bigint;
    v_uninstalled timestamptz;
    v_found boolean;
    v_previous bigint;
    v_stored_updated timestamptz;
    v_stale_since timestamptz;
    v_ids bigint[];
BEGIN
    SELECT shop_id, uninstalled_at INTO v_shop, v_uninstalled FROM shops WHERE domain = p_domain;
    IF NOT FOUND THEN
        RETURN 'unknown shop';
    END IF;
    IF v_uninstalled IS NOT NULL THEN
        RETURN 'uninstalled';
    END IF;
    -- the order and its buyer, in sorted order (as app.sql.advisory_lock) so that writers never deadlock
    PERFORM pg_advisory_xact_lock(k) FROM (
        SELECT rfm_lock_key('order', v_shop, p_order_id) AS k
        UNION
        SELECT rfm_lock_key('customer', v_shop, p_customer_id) WHERE p_customer_id IS NOT NULL
        ORDER BY k
    ) AS keys;
    IF EXISTS (SELECT 1 FROM deleted_orders WHERE shop_id = v_shop AND order_id = p_order_id) THEN
        RETURN 'deleted';
    END IF;
    SELECT customer_id, source_updated_at, stale_since INTO v_previous, v_stored_updated, v_stale_since
    FROM orders WHERE shop_id = v_shop AND order_id = p_order_id;
    v_found := FOUND;
    IF v_found AND p_updated_at <= v_stored_updated THEN
        RETURN 'stale';
    END IF;
    IF EXISTS (SELECT 1 FROM order_refunds
               WHERE shop_id = v_shop AND order_id = p_order_id AND refunded_at > p_updated_at) THEN
        RETURN 'full';
    END IF;
    IF v_previous IS NOT DISTINCT FROM p_customer_id THEN
        v_previous := NULL;
    ELSIF v_previous IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(rfm_lock_key('customer', v_shop, v_previous));
    END IF;
    IF NOT v_found OR v_stale_since <= p_updated_at THEN
        v_stale_since := NULL;
    END IF;

    INSERT INTO orders AS o (shop_id, order_id, customer_id, ordered_at, source_updated_at, cancelled_at,
                             test, financial_status, current_total, presentment_total, total_discounts,
                             discount_codes, discounted, source_name, stale_since, pending_refunds, value,
                             qualifies)
    VALUES (v_shop, p_order_id, p_customer_id, p_ordered_at, p_updated_at, p_cancelled_at, p_test,
            p_financial_status, p_current_total, p_presentment_total, p_total_discounts, p_discount_codes,
            p_discounted, p_source_name, v_stale_since, 0, p_value, p_qualifies)
    ON CONFLICT (shop_id, order_id) DO UPDATE SET
        customer_id = excluded.customer_id, ordered_at = excluded.ordered_at,
        source_updated_at = excluded.source_updated_at, cancelled_at = excluded.cancelled_at,
        test = excluded.test, financial_status = excluded.financial_status,
        current_total = excluded.current_total, presentment_total = excluded.presentment_total,
        total_discounts = excluded.total_discounts, discount_codes = excluded.discount_codes,
        discounted = excluded.discounted, source_name = excluded.source_name,
        stale_since = excluded.stale_since, pending_refunds = excluded.pending_refunds,
        value = excluded.value, qualifies = excluded.qualifies
    WHERE o.source_updated_at < excluded.source_updated_at;

    v_ids := ARRAY(SELECT DISTINCT c FROM unnest(ARRAY[p_customer_id, v_previous]) AS c
                   WHERE c IS NOT NULL ORDER BY c);
    IF cardinality(v_ids) > 0 THEN
        -- as app.customers.repository.recompute
        INSERT INTO customers (shop_id, customer_id, first_order_at, last_order_at, orders_count,
                               total_spent, average_order_value, discounted_orders_count,
                               average_days_between_orders, score_pending, aggregates_updated_at)
        SELECT v_shop, ids.customer_id, a.first_at, a.last_at, a.n, COALESCE(a.total, 0),
               ROUND(a.total / NULLIF(a.n, 0), 4), a.discounted,
               EXTRACT(EPOCH FROM a.last_at - a.first_at) / 86400.0 / NULLIF(a.n - 1, 0), TRUE, p_now
        FROM unnest(v_ids) AS ids(customer_id)
        -- LATERAL: an index lookup per buyer whatever plan is cached (a join may scan the shop)
        CROSS JOIN LATERAL (
            SELECT MIN(o.ordered_at) AS first_at, MAX(o.ordered_at) AS last_at, COUNT(*) AS n,
                   SUM(o.value) AS total, COUNT(*) FILTER (WHERE o.discounted) AS discounted
            FROM orders AS o
            WHERE o.shop_id = v_shop AND o.customer_id = ids.customer_id AND o.qualifies
        ) AS a
        ON CONFLICT (shop_id, customer_id) DO UPDATE SET
            first_order_at = excluded.first_order_at, last_order_at = excluded.last_order_at,
            orders_count = excluded.orders_count, total_spent = excluded.total_spent,
            average_order_value = excluded.average_order_value,
            discounted_orders_count = excluded.discounted_orders_count,
            average_days_between_orders = excluded.average_days_between_orders,
            score_pending = TRUE, aggregates_updated_at = excluded.aggregates_updated_at;
    END IF;
    IF p_touch THEN
        UPDATE shops SET last_webhook_at = p_now
        WHERE shop_id = v_shop AND (last_webhook_at IS NULL OR last_webhook_at < p_now - interval '1 minute');
    END IF;
    RETURN CASE WHEN p_customer_id IS NULL THEN 'guest' ELSE 'applied' END;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(LOCK_KEY)
    op.execute(INGEST_ORDER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "DROP FUNCTION IF EXISTS rfm_ingest_order(text, timestamptz, boolean, bigint, bigint, timestamptz,"
        " timestamptz, timestamptz, boolean, text, numeric, numeric, numeric, text, boolean, text, numeric,"
        " boolean)"
    )
    op.execute("DROP FUNCTION IF EXISTS rfm_lock_key(text, bigint, bigint)")
