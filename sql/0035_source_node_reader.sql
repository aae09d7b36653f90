-- 0035_source_node_reader.sql - tenant readers may see which kind of source
-- each node is (source_node, 0017): a tenant's statement shows its charges
-- by PBX or proxy and source type (Asterisk, Kamailio, Yeastar).  The table
-- holds node names and types only, no tenant's data.
GRANT SELECT ON source_node TO cdrflow_reader;
