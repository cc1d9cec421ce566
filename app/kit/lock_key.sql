-- The live source of rfm_lock_key: the advisory-lock key of a (namespace, shop, id), the same key
-- app/kit/sql.py's lock_key names from Python, so both paths lock each other out. A change here
-- needs a new migration that installs a frozen copy; tests/orders/test_sql_functions.py holds the
-- database to this file.
CREATE OR REPLACE FUNCTION rfm_lock_key(namespace text, shop_id bigint, id bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT hashtextextended(namespace || ':' || shop_id::text || ':' || id::text, 0)
$$;
