-- 0002_cdr_import.sql - Master.csv backfills (cdrflow-etl import-csv).
--
-- One row per imported file, keyed by its SHA-256, so importing the same
-- file twice is refused instead of duplicating its legs.

CREATE TABLE cdr_import (
	sha256      text PRIMARY KEY,
	filename    text NOT NULL,
	node        text NOT NULL,
	rows        bigint NOT NULL,
	layout      text NOT NULL,   -- which optional cdr_csv columns the file had
	imported_at timestamptz NOT NULL DEFAULT now()
);
