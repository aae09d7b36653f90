-- 0081: the end of each node's latest loaded leg, kept by the loader
-- (issue 15: a report's cost must not grow with history).
--
-- cdrflow_loaded_until() (0019), the "Period loaded" tile of fraud-digest,
-- took per node the end of its latest leg from cdr: max(calldate +
-- duration) over every leg the node ever had, 0.5 s at 10 M legs and
-- growing with them (cdr has no index by node).  The loader now keeps it in
-- etl_checkpoint.legs_until, in the transaction that stores the legs
-- (greatest of the value before and the batch's own legs' latest end), so
-- the function reads one row per node.  The definition is 0019's: per node
-- the later of that end and the ETL's last commit, the earliest over the
-- nodes.  The column is filled here once from the legs already stored.
ALTER TABLE etl_checkpoint ADD COLUMN legs_until timestamptz;

UPDATE etl_checkpoint c
SET legs_until = (SELECT max(l.calldate + make_interval(secs => l.duration)) FROM cdr l WHERE l.node = c.node);

CREATE OR REPLACE FUNCTION cdrflow_loaded_until() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
	SELECT min(greatest(c.updated_at, c.legs_until)) FROM etl_checkpoint c
$$;
