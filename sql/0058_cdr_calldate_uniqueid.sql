-- 0058: the legs of a period in the order the CDR export writes them
-- (issue 15).  cdr-export reads "ORDER BY calldate, uniqueid" (the order is
-- part of the file: two runs give the same bytes).  0001's index on
-- (calldate, dst) gave the calldate order only, so every export sorted each
-- run of equal calldates again (an Incremental Sort over the month), and no
-- reader uses its second column: dst is filtered with starts_with(), which
-- a btree does not serve, and the E.164 searches have their own index.
-- The same range scans, with the export's whole order: measured on a 1 M-leg
-- month in time order, the export query's server CPU fell from 2.0 to 1.5 s
-- and its rows alone (count(*) over it) from 0.66 to 0.38 s.  It replaces
-- the old index: a load still maintains as many indexes on cdr.
DROP INDEX cdr_calldate_dst_idx;
CREATE INDEX cdr_calldate_uniqueid_idx ON cdr (calldate, uniqueid);
