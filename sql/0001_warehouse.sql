-- 0001_warehouse.sql - the cdrflow warehouse, first version.
--
-- Forward-only: never edit a migration that has been released; add the next
-- number.  Applied in order by `cdrflow-etl migrate`, each in its own
-- transaction, recorded in schema_version.
--
-- Tables that grow with traffic are partitioned by month on the call/event
-- start time; partitions are created by the ETL before it loads a month
-- (cdrflow_ensure_month), retention drops whole partitions.
-- All times are timestamptz (UTC in, any zone out) with microseconds.

CREATE TABLE schema_version (
	version     integer PRIMARY KEY,
	description text NOT NULL,
	applied_at  timestamptz NOT NULL DEFAULT now()
);

-- Per node: the next segment position to read.  Advanced in the same
-- transaction as the rows loaded from the records before it.
CREATE TABLE etl_checkpoint (
	node        text PRIMARY KEY,
	segno       bigint NOT NULL,
	seg_offset  bigint NOT NULL,
	last_seq    bigint NOT NULL,
	events      bigint NOT NULL DEFAULT 0,
	updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every CEL event, column-compatible with Asterisk's cel_pgsql table, plus
-- where it came from.
CREATE TABLE cel (
	eventtype   text NOT NULL,
	eventtime   timestamptz NOT NULL,
	userdeftype text,
	cid_name    text,
	cid_num     text,
	cid_ani     text,
	cid_rdnis   text,
	cid_dnid    text,
	exten       text,
	context     text,
	channame    text,
	appname     text,
	appdata     text,
	amaflags    integer,
	accountcode text,
	peeraccount text,
	uniqueid    text,
	linkedid    text,
	userfield   text,
	peer        text,
	extra       text,
	node        text NOT NULL,
	seq         bigint NOT NULL,
	segno       bigint NOT NULL,
	seg_offset  bigint NOT NULL
) PARTITION BY RANGE (eventtime);
CREATE INDEX cel_linkedid_idx ON cel (linkedid);
CREATE INDEX cel_uniqueid_idx ON cel (uniqueid);
CREATE INDEX cel_eventtime_idx ON cel (eventtime);

-- One row per leg, the shape and meaning of Asterisk's own CDR.
CREATE TABLE cdr (
	calldate    timestamptz NOT NULL,          -- = start
	answer      timestamptz,
	"end"       timestamptz NOT NULL,
	clid        text NOT NULL DEFAULT '',
	src         text NOT NULL DEFAULT '',
	dst         text NOT NULL DEFAULT '',
	dcontext    text NOT NULL DEFAULT '',
	channel     text NOT NULL DEFAULT '',
	dstchannel  text NOT NULL DEFAULT '',
	lastapp     text NOT NULL DEFAULT '',
	lastdata    text NOT NULL DEFAULT '',
	duration    integer NOT NULL,
	billsec     integer NOT NULL,
	disposition text NOT NULL,
	amaflags    integer NOT NULL DEFAULT 3,
	accountcode text NOT NULL DEFAULT '',
	peeraccount text NOT NULL DEFAULT '',
	uniqueid    text NOT NULL,
	linkedid    text NOT NULL,
	userfield   text NOT NULL DEFAULT '',
	sequence    bigint,
	node        text NOT NULL,
	tenant      text,
	call_id     text,                          -- the conversation (call.call_id)
	imported    boolean NOT NULL DEFAULT false, -- backfilled from Master.csv
	incomplete  boolean NOT NULL DEFAULT false  -- closed by the grace period, not by Asterisk
) PARTITION BY RANGE (calldate);
CREATE INDEX cdr_calldate_dst_idx ON cdr (calldate, dst);
CREATE INDEX cdr_src_idx ON cdr (src, calldate);
CREATE INDEX cdr_linkedid_idx ON cdr (linkedid);
CREATE INDEX cdr_uniqueid_idx ON cdr (uniqueid);
CREATE INDEX cdr_accountcode_idx ON cdr (accountcode, calldate);
CREATE INDEX cdr_tenant_idx ON cdr (tenant, calldate);

-- One row per conversation: linkedid groups merged when they share a channel.
CREATE TABLE call (
	call_id        text NOT NULL,              -- the oldest linkedid of the group
	node           text NOT NULL,
	start          timestamptz NOT NULL,
	"end"          timestamptz,
	first_answer   timestamptz,
	direction      text NOT NULL DEFAULT 'unknown', -- inbound, outbound, internal, unknown
	src            text,
	dst            text,
	tenant         text,
	legs           integer NOT NULL DEFAULT 0,
	total_billsec  integer NOT NULL DEFAULT 0,
	duration       integer NOT NULL DEFAULT 0,
	outcome        text NOT NULL,              -- answered, busy, no_answer, failed, congestion
	transfers      integer NOT NULL DEFAULT 0,
	linkedids      text[] NOT NULL,
	incomplete     boolean NOT NULL DEFAULT false
) PARTITION BY RANGE (start);
CREATE INDEX call_call_id_idx ON call (call_id);
CREATE INDEX call_start_idx ON call (start);
CREATE INDEX call_tenant_idx ON call (tenant, start);

-- The other AMI events analytics need, typed where it matters, all fields kept.
CREATE TABLE ami_event (
	event       text NOT NULL,
	eventtime   timestamptz NOT NULL,
	node        text NOT NULL,
	uniqueid    text,
	linkedid    text,
	channel     text,
	fields      jsonb NOT NULL,                -- every key; repeated keys become arrays
	seq         bigint NOT NULL,
	segno       bigint NOT NULL,
	seg_offset  bigint NOT NULL
) PARTITION BY RANGE (eventtime);
CREATE INDEX ami_event_event_time_idx ON ami_event (event, eventtime);
CREATE INDEX ami_event_linkedid_idx ON ami_event (linkedid);
CREATE INDEX ami_event_uniqueid_idx ON ami_event (uniqueid);

-- Catch-all partitions so a load never fails for a missing month; the ETL
-- creates the proper monthly partition first, so these normally stay empty.
CREATE TABLE cel_default PARTITION OF cel DEFAULT;
CREATE TABLE cdr_default PARTITION OF cdr DEFAULT;
CREATE TABLE call_default PARTITION OF call DEFAULT;
CREATE TABLE ami_event_default PARTITION OF ami_event DEFAULT;

-- Create the monthly partitions of every partitioned table for the month
-- holding ts (idempotent).  Named <table>_yYYYYmMM.
CREATE FUNCTION cdrflow_ensure_month(ts timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	t text;
	lo timestamptz := date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
	hi timestamptz := (date_trunc('month', ts AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
	suffix text := to_char(ts AT TIME ZONE 'UTC', '"y"YYYY"m"MM');
BEGIN
	FOREACH t IN ARRAY ARRAY['cel', 'cdr', 'call', 'ami_event'] LOOP
		IF to_regclass(t || '_' || suffix) IS NULL THEN
			EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
				       t || '_' || suffix, t, lo, hi);
		END IF;
	END LOOP;
END $$;
