-- 0003_cdr_engine.sql - legs and calls rebuilt by the ETL's CDR engine.
--
-- The engine needs the events of every call still open, so besides the
-- load position (segno, seg_offset) each node records where a fresh engine
-- must start reading to rebuild its state (cdr_segno, cdr_offset) and the
-- sequence of the last event the engine ran (cdr_done_seq): rows finished
-- by events up to it are in the warehouse already and are not written
-- again when those events are read a second time.  A checkpoint written
-- before this migration starts at the beginning of the spool, so the first
-- run after an upgrade builds legs and calls for the whole history.
ALTER TABLE etl_checkpoint
	ADD COLUMN cdr_segno    bigint NOT NULL DEFAULT 0,
	ADD COLUMN cdr_offset   bigint NOT NULL DEFAULT 0,
	ADD COLUMN cdr_done_seq bigint NOT NULL DEFAULT 0;

CREATE INDEX cdr_call_id_idx ON cdr (call_id);
CREATE INDEX call_linkedids_idx ON call USING gin (linkedids);
