-- 0066_caveat_end.sql - where each node's stored input caveats end.
--
-- cdrflow-etl --once/--follow diagnose what a run loaded and store the
-- verdicts (input_caveat) after the load, in their own transaction: a
-- verdict taken per batch would be premature (an input absent early in a
-- backlog may appear by its end).  A run killed between its batches'
-- commits and that transaction lost the diagnosis of those batches: the
-- next run diagnosed only from the checkpoint on.  Now the caveat
-- transaction also records the position up to which the node's records
-- have been diagnosed and their verdicts stored; the next run reads the
-- spool from there to the checkpoint through the doctor again (nothing is
-- loaded twice) before it loads on (docs/etl.md, "Degraded inputs").
-- Existing rows start at their checkpoint: what an earlier version lost
-- cannot be known any more.
ALTER TABLE etl_checkpoint
	ADD COLUMN caveat_segno  bigint NOT NULL DEFAULT 0,
	ADD COLUMN caveat_offset bigint NOT NULL DEFAULT 0,
	ADD COLUMN caveat_seq    bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN etl_checkpoint.caveat_segno IS
	'the records before caveat_segno/caveat_offset (sequence caveat_seq and before) are diagnosed, their input caveats stored';
UPDATE etl_checkpoint SET caveat_segno = segno, caveat_offset = seg_offset, caveat_seq = last_seq;
