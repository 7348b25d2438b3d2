-- The stand-in on the standby coordinator (physical replica of the CN leader): run through check.sh.
\set ON_ERROR_STOP 0
\set SHOW_CONTEXT never
SELECT pg_is_in_recovery();
SELECT nodeid AS wk1_id FROM pg_dist_node WHERE groupid = 1 AND noderole = 'primary' \gset
SELECT citus_add_node(:'w1', 5432, 1, 'primary') AS existing_address_returns_its_id;
SELECT citus_add_node('127.0.99.40', 5432, 1, 'secondary');
SELECT citus_update_node(:wk1_id, :'w1', 5432) AS noop_update;
SELECT citus_update_node(:wk1_id, '127.0.99.41', 5432);
SELECT citus_remove_node('127.0.99.99', 5432);
