-- 0036_country_name_immutable.sql - the country name of an ISO code without
-- reading a table at query time.
--
-- 0019's cdrflow_country_name() looked the name up in rollup_country_code
-- for every row.  On Citus a function that reads a table cannot run inside
-- a query pushed down to the shards ("cannot execute a distributed query
-- from a query on a shard"), so reports that name destinations failed
-- there.  The names are reference data that only migrations change: the
-- function now carries them, built here from the table (the same choice as
-- before: the name of the shortest, then smallest, prefix of the code), and
-- is IMMUTABLE.  A migration that changes rollup_country_code re-runs this
-- block.
DO $$
DECLARE
	m jsonb;
BEGIN
	SELECT coalesce(jsonb_object_agg(x.iso, x.name), '{}') INTO m
	FROM (SELECT DISTINCT ON (c.iso) c.iso, c.name FROM rollup_country_code c
	      ORDER BY c.iso, length(c.prefix), c.prefix) x;
	EXECUTE format($f$CREATE OR REPLACE FUNCTION cdrflow_country_name(p_iso text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L$f$, format('SELECT %L::jsonb ->> p_iso', m));
END $$;
