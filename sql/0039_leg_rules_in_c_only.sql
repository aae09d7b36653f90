-- 0039_leg_rules_in_c_only.sql - the SQL copies of the leg rules go.
--
-- cdrflow_e164, cdrflow_country, cdrflow_trunk and cdrflow_channel_peer
-- (0009, restated in 0011) stated in SQL what etl/legclass.c derives and
-- stores with every leg (dst_e164, dst_country, trunk); 0016 used them
-- once to fill those columns for legs loaded before them.  No rule, view
-- or report calls them since: a second definition of a fact that nothing
-- checked against the first (issue 10).  The stored columns are the one
-- answer; the rules are in docs/metrics.md, "Tenants and numbers".
DROP FUNCTION cdrflow_country(text);
DROP FUNCTION cdrflow_trunk(text, text, text);
DROP FUNCTION cdrflow_channel_peer(text);
DROP FUNCTION cdrflow_e164(text);
