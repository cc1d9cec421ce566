-- The live source of rfm_ingest_order: one order delivery in one round trip (lock, deleted and
-- stale checks, ledger upsert, the buyers' aggregates), the PL/pgSQL twin of the Python rules in
-- app/orders/service.py (apply_order). A change here needs a new migration that installs a frozen
-- copy (CREATE OR REPLACE); tests/orders/test_sql_functions.py holds the database to this file,
-- and tests/orders/test_ingest_function.py holds the function to the Python rules.
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
    v_previous_key bigint;
BEGIN
    -- the shop's row locked as a foreign key check would lock it (orders and customers have none,
    -- migration 0027): the shop cannot be erased until this transaction ends, and once it is, the
    -- lookup finds nothing
    SELECT shop_id, uninstalled_at INTO v_shop, v_uninstalled FROM shops WHERE domain = p_domain
    FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN 'unknown shop';
    END IF;
    IF v_uninstalled IS NOT NULL THEN
        RETURN 'uninstalled';
    END IF;
    -- the order first, its buyer(s) once it is read: the lock order of every path
    -- (app.orders.repository.lock_orders), so that writers never deadlock
    v_order_key := rfm_lock_key('order', v_shop, p_order_id);
    PERFORM pg_advisory_xact_lock(v_order_key);
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
    END IF;
    -- the buyer(s) in the order of their keys, as app.kit.sql.advisory_lock
    IF p_customer_id IS NOT NULL AND v_previous IS NOT NULL THEN
        v_customer_key := rfm_lock_key('customer', v_shop, p_customer_id);
        v_previous_key := rfm_lock_key('customer', v_shop, v_previous);
        PERFORM pg_advisory_xact_lock(LEAST(v_customer_key, v_previous_key));
        PERFORM pg_advisory_xact_lock(GREATEST(v_customer_key, v_previous_key));
    ELSIF COALESCE(p_customer_id, v_previous) IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(rfm_lock_key('customer', v_shop, COALESCE(p_customer_id, v_previous)));
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
$$;
