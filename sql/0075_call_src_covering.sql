-- 0075: cdrflow-query calls --src reads its rows from the (src, start)
-- index alone (issue 15: "calls --src X" over a month under 0.1 s at 10 M
-- legs a month).
--
-- The calls of one number are spread over the whole month: 0030's
-- (src, start) index found 5,000 of them quickly, and the heap then gave
-- each one from its own page (4,707 pages of call_y2026m10 for
-- --src 1007 on the 10 M-leg bench, docs/query.md "Speed"): 0.33 s when
-- those pages were not in shared_buffers, and 60-80 ms even when they were
-- (a new backend's first touch of each page; cdrflow-query is a new
-- backend every run), then a sort.  The index now holds every column the
-- calls listing prints, filters on (--tenant, --disposition,
-- --min-billsec) or the reader's row policy reads (tenant): an index-only
-- scan reads ~80 leaf pages for those 5,000 calls, already in the listing's
-- order (start, call_id): no sort is needed, and --limit can stop early.
-- Pages not yet all-visible (calls loaded since the last vacuum) are still
-- read from the heap for their rows: correct, as before.
--
-- Cost: the index is about 2.5 times 0030's (call_id, dst, direction,
-- tenant, legs, total_billsec, outcome, worst_mos and node in every entry:
-- ~100 bytes a call instead of ~37); the QoS step's late worst_mos update
-- of a stored call (0041) now changes an indexed column, so it is never a
-- HOT update (rarely one anyway: COPY fills the pages).  Same name, same
-- key columns first: every other reader of call (src, start) is served as
-- before.
DROP INDEX IF EXISTS call_src_idx;
CREATE INDEX call_src_idx ON call (src, start, call_id)
	INCLUDE (dst, direction, tenant, legs, total_billsec, outcome, worst_mos, node);
