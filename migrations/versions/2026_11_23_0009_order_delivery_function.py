"""PostgreSQL: one server-side function per order delivery (the webhook hot path in one round trip).

`rfm_ingest_order` takes an order delivery's facts, already parsed and derived by the Python rules
(`app.orders.service.ingest_order`), and does in one statement what `apply_order` does in five:
find the shop, lock the order and its buyer(s), refuse a deleted or stale delivery, upsert the ledger
row (never older over newer) and rewrite the buyer(s)' aggregates. It hands back `full` when
refunds newer than the delivery are waiting to be netted, so that the Python rules convert and
apply them (a rare path). `rfm_lock_key` gives the key of the lock named `app.sql.lock_key` (the
Python paths hash the same name the same way), so the function and the Python paths lock each other
out; its body is all immutable, so that it is inlined (a non-inlined SQL function is parsed and
planned again in every transaction).

SQLite has no such functions; the Python rules run there.

Also drops `ix_orders_shop_id_source_updated_at` (both databases): no query reads it, every order
write paid for it, and a cached generic plan of the buyer-aggregate statement picked it over
`ix_orders_shop_id_customer_id` and scanned the shop's whole ledger on every delivery.

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
    SELECT hashtextextended(namespace || ':' || shop_id::text || ':' || id::text, 0)
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
    v_customer bigint;
    v_order_key bigint;
    v_customer_key bigint;
BEGIN
    SELECT shop_id, uninstalled_at INTO v_shop, v_uninstalled FROM shops WHERE domain = p_domain;
    IF NOT FOUND THEN
        RETURN 'unknown shop';
    END IF;
    IF v_uninstalled IS NOT NULL THEN
        RETURN 'uninstalled';
    END IF;
    -- the order and its buyer, in sorted order (as app.sql.advisory_lock) so that writers never deadlock
    v_order_key := rfm_lock_key('order', v_shop, p_order_id);
    IF p_customer_id IS NULL THEN
        PERFORM pg_advisory_xact_lock(v_order_key);
    ELSE
        v_customer_key := rfm_lock_key('customer', v_shop, p_customer_id);
        PERFORM pg_advisory_xact_lock(LEAST(v_order_key, v_customer_key));
        PERFORM pg_advisory_xact_lock(GREATEST(v_order_key, v_customer_key));
    END IF;
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

    -- the buyer(s) one at a time, a plain index lookup each: a statement over an array parameter
    -- is planned anew on every call (its generic plan looks dearer), which costs more than running it
    FOREACH v_customer IN ARRAY ARRAY[p_customer_id, v_previous] LOOP
        CONTINUE WHEN v_customer IS NULL;
        -- as app.customers.repository.recompute
        INSERT INTO customers (shop_id, customer_id, first_order_at, last_order_at, orders_count,
                               total_spent, average_order_value, discounted_orders_count,
                               average_days_between_orders, score_pending, aggregates_updated_at)
        SELECT v_shop, v_customer, MIN(o.ordered_at), MAX(o.ordered_at), COUNT(*), COALESCE(SUM(o.value), 0),
               ROUND(SUM(o.value) / NULLIF(COUNT(*), 0), 4), COUNT(*) FILTER (WHERE o.discounted),
               EXTRACT(EPOCH FROM MAX(o.ordered_at) - MIN(o.ordered_at)) / 86400.0 / NULLIF(COUNT(*) - 1, 0),
               TRUE, p_now
        FROM orders AS o
        WHERE o.shop_id = v_shop AND o.customer_id = v_customer AND o.qualifies
        ON CONFLICT (shop_id, customer_id) DO UPDATE SET
            first_order_at = excluded.first_order_at, last_order_at = excluded.last_order_at,
            orders_count = excluded.orders_count, total_spent = excluded.total_spent,
            average_order_value = excluded.average_order_value,
            discounted_orders_count = excluded.discounted_orders_count,
            average_days_between_orders = excluded.average_days_between_orders,
            score_pending = TRUE, aggregates_updated_at = excluded.aggregates_updated_at;
    END LOOP;
    IF p_touch THEN
        UPDATE shops SET last_webhook_at = p_now
        WHERE shop_id = v_shop AND (last_webhook_at IS NULL OR last_webhook_at < p_now - interval '1 minute');
    END IF;
    RETURN CASE WHEN p_customer_id IS NULL THEN 'guest' ELSE 'applied' END;
END
$$
"""


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_index("ix_orders_shop_id_source_updated_at")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(LOCK_KEY)
    op.execute(INGEST_ORDER)


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.create_index("ix_orders_shop_id_source_updated_at", ["shop_id", "source_updated_at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "DROP FUNCTION IF EXISTS rfm_ingest_order(text, timestamptz, boolean, bigint, bigint, timestamptz,"
        " timestamptz, timestamptz, boolean, text, numeric, numeric, numeric, text, boolean, text, numeric,"
        " boolean)"
    )
    op.execute("DROP FUNCTION IF EXISTS rfm_lock_key(text, bigint, bigint)")
