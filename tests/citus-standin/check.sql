-- Exercises the Citus stand-in (citus_standin.sql) on the coordinator leader of a running test cluster and compares
-- every SQLSTATE / message / DETAIL / HINT with the texts observed on Citus 13.2.2
-- (/work/shared/reference/citus-node-api-observed.md). Everything runs in one transaction that is rolled back.
-- Run through check.sh (sets :net, :cn, :w1, :w1ro, :w2, :w2ro). Prints "ok ..." lines; stops at the first MISMATCH.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset footer off

CREATE FUNCTION pg_temp.expect_error(q text, state text, msg text, det text DEFAULT '', hnt text DEFAULT '')
RETURNS text LANGUAGE plpgsql AS $f$
DECLARE s text; m text; d text; h text;
BEGIN
    BEGIN
        EXECUTE q;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
        IF s = state AND m = msg AND d = det AND h = hnt THEN
            RETURN format('ok  %s  ->  ERROR %s: %s', q, s, replace(m, E'\n', '\n'));
        END IF;
        RAISE EXCEPTION E'MISMATCH for %\n got      % [%] detail [%] hint [%]\n expected % [%] detail [%] hint [%]',
            q, s, m, d, h, state, msg, det, hnt;
    END;
    RAISE EXCEPTION 'MISMATCH: % did not fail (expected % %)', q, state, msg;
END
$f$;

CREATE FUNCTION pg_temp.expect_sqlstate(q text, state text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE q;
    RAISE EXCEPTION 'MISMATCH: % did not fail (expected %)', q, state;
EXCEPTION WHEN OTHERS THEN
    IF SQLSTATE = state THEN RETURN format('ok  %s  ->  SQLSTATE %s', q, SQLSTATE); END IF;
    RAISE EXCEPTION 'MISMATCH for %: got SQLSTATE % (%), expected %', q, SQLSTATE, SQLERRM, state;
END
$f$;

CREATE FUNCTION pg_temp.expect(q text, expected text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE v text;
BEGIN
    EXECUTE q INTO v;
    IF v IS NOT DISTINCT FROM expected THEN
        RETURN format('ok  %s  ->  %s', q, coalesce(v, 'NULL'));
    END IF;
    RAISE EXCEPTION 'MISMATCH for %: got [%], expected [%]', q, v, expected;
END
$f$;

\set QUIET 0
\pset tuples_only on
\pset format unaligned
BEGIN;
SELECT nodeid AS cn_id FROM pg_dist_node WHERE groupid = 0 AND noderole = 'primary' \gset
SELECT nodeid AS wk1_id FROM pg_dist_node WHERE groupid = 1 AND noderole = 'primary' \gset
SELECT nodeid AS wk2_id FROM pg_dist_node WHERE groupid = 2 AND noderole = 'primary' \gset
SELECT min(shardid) AS g1_shard FROM pg_dist_placement WHERE groupid = 1 \gset
SELECT min(shardid) AS g2_shard FROM pg_dist_placement WHERE groupid = 2 \gset
SELECT setval('pg_dist_groupid_seq', 1, false) IS NOT NULL AS reset_groupid_seq;

\echo '== group lock (a second session through dblink holds citus_pause_node_within_txn on group 1)'
SELECT citus_standin.dblink_connect('holder', format('host=%s port=5432 dbname=postgres user=postgres sslmode=prefer %s',
       :'cn', (SELECT authinfo FROM pg_dist_authinfo WHERE nodeid = 0 AND rolename = 'postgres'))) = 'OK' AS connected;
SELECT citus_standin.dblink_exec('holder', 'BEGIN') = 'BEGIN' AS holder_begin;
SELECT * FROM citus_standin.dblink('holder', format('SELECT citus_pause_node_within_txn(%s)::text', :wk1_id)) AS t(r text);
SET LOCAL lock_timeout = '300ms';
SELECT pg_temp.expect_error(format('SELECT citus_update_node(%s, %L, 5432)', :wk1_id, :'w1' || '-demoted'),
       '55P03', 'canceling statement due to lock timeout');
SELECT pg_temp.expect_error(format('SELECT citus_pause_node_within_txn(%s)', :wk1_id),
       '55P03', 'canceling statement due to lock timeout');
SELECT pg_temp.expect(format('SELECT citus_update_node(%s, %L, 5432)', :wk1_id, :'w1'), '');      -- no-op: no lock
SELECT pg_temp.expect(format('SELECT citus_pause_node_within_txn(%s)', :wk2_id), '');            -- other group
RESET lock_timeout;
SELECT 'force => true, lock_cooldown => 200 terminates the holder: ' ||
       pg_temp.expect(format('SELECT citus_update_node(%s, %L, 5432, true, 200)', :wk1_id, :'w1' || '-demoted'), '');
SELECT pg_temp.expect(format('SELECT citus_update_node(%s, %L, 5432)', :wk1_id, :'w1'), '');
SELECT pg_temp.expect_sqlstate($$SELECT * FROM citus_standin.dblink('holder', 'SELECT 1') AS t(i int)$$, '08006')
       AS holder_was_terminated;
SELECT citus_standin.dblink_disconnect('holder') = 'OK' AS disconnected;

-- the updates above left the metadata workers out of sync: the maintenance daemon (the harness's syncer) would resync
SELECT citus_standin.sync_metadata() >= 0 AS synced;

\echo '== the rebalancer: plan, background job, progress, stop, drain (all undone at the end of the section)'
SAVEPOINT rebalancer;
SELECT pg_temp.expect('SELECT count(*) FROM get_rebalance_table_shards_plan()', '0');
SELECT pg_temp.expect('SELECT citus_rebalance_start()', NULL);                  -- NOTICE: No moves available
SELECT pg_temp.expect_error('SELECT citus_rebalance_stop()', 'XX000', 'no ongoing rebalance that can be stopped');
SELECT pg_temp.expect('SELECT citus_rebalance_wait()', '');                     -- WARNING: no ongoing rebalance
SELECT pg_temp.expect_error(format('SELECT citus_set_node_property(%L, 5432, ''isactive'', false)', :'w2'), 'XX000',
       'only the ''shouldhaveshards'' property can be set using this function');
SELECT pg_temp.expect_error('SELECT citus_set_node_property(''127.0.99.99'', 5432, ''shouldhaveshards'', false)', 'XX000',
       'node at "127.0.99.99:5432" does not exist');
SELECT pg_temp.expect(format('SELECT citus_set_node_property(%L, 5432, ''shouldhaveshards'', false)', :'w2'), '');
SELECT pg_temp.expect('SELECT count(*) FROM get_rebalance_table_shards_plan(drain_only := true)', '4');
SELECT pg_temp.expect(format('SELECT count(*) FROM get_rebalance_table_shards_plan() WHERE sourcename = %L AND targetname = %L', :'w2', :'w1'), '4');
-- a table without a primary key or replica identity: refused in shard_transfer_mode auto
CREATE TABLE public.standin_check_nopk (a int);
SELECT citus_standin.create_distributed_table('public.standin_check_nopk', 2);
SELECT pg_temp.expect_error('SELECT citus_rebalance_start(drain_only := true)', '0A000',
       'cannot use logical replication to transfer shards of the relation standin_check_nopk since it doesn''t have a REPLICA IDENTITY or PRIMARY KEY',
       'UPDATE and DELETE commands on the shard will error out during logical replication unless there is a REPLICA IDENTITY or PRIMARY KEY.',
       'If you wish to continue without a replica identity set the shard_transfer_mode to ''force_logical'' or ''block_writes''.');
ALTER TABLE public.standin_check_nopk REPLICA IDENTITY FULL;
SELECT citus_rebalance_start(drain_only := true) AS job \gset
SELECT pg_temp.expect_error('SELECT citus_rebalance_start()', 'XX000', format('A rebalance is already running as job %s', :job),
       'A rebalance was already scheduled as background job', 'To monitor progress, run: SELECT * FROM citus_rebalance_status();');
SELECT pg_temp.expect('SELECT state::text || '' '' || job_type || '' '' || (details->''task_state_counts''->>''runnable'') FROM citus_rebalance_status()',
       'scheduled rebalance 5');
SELECT pg_temp.expect('SELECT citus_standin.run_background_tasks() > 0', 'true');
SELECT pg_temp.expect(format('SELECT count(*) || '' '' || min(status) || '' '' || min(sourcename) FROM get_rebalance_progress()'), format('1 Copying Data %s', :'w2'));
SELECT pg_temp.expect('SELECT state::text || '' '' || jsonb_array_length(details->''tasks'') FROM citus_rebalance_status()', 'running 1');
SELECT pg_temp.expect('SELECT citus_standin.run_background_tasks() > 0', 'true');
SELECT pg_temp.expect('SELECT details->''task_state_counts''->>''done'' FROM citus_rebalance_status()', '1');
SELECT pg_temp.expect('SELECT count(*) FROM pg_dist_placement WHERE groupid = 2', '4');
SELECT pg_temp.expect('SELECT citus_standin.run_background_tasks() > 0', 'true');
SELECT pg_temp.expect('SELECT citus_rebalance_stop()', '');
SELECT pg_temp.expect('SELECT state::text FROM citus_rebalance_status()', 'cancelling');
SELECT pg_temp.expect('SELECT citus_standin.run_background_tasks() > 0', 'true');
SELECT pg_temp.expect('SELECT state::text || '' '' || (finished_at IS NOT NULL) FROM citus_rebalance_status()', 'cancelled true');
SELECT pg_temp.expect('SELECT count(*) FROM pg_dist_placement WHERE groupid = 2', '4');   -- the cancelled move did not happen
SELECT pg_temp.expect_error('SELECT citus_move_shard_placement(1, 999, 1)', 'P0002', 'node 999 not found');
-- again, to the end: every shard of group 2 moves, then the node can be removed
SELECT pg_temp.expect('SELECT citus_rebalance_start(drain_only := true) > 0', 'true');
SELECT pg_temp.expect('SELECT sum(citus_standin.run_background_tasks()) > 0 FROM generate_series(1, 12)', 'true');
SELECT pg_temp.expect('SELECT state::text || '' '' || (details->''task_state_counts''->>''done'') FROM citus_rebalance_status()', 'finished 4');
SELECT pg_temp.expect('SELECT count(*) FROM pg_dist_placement WHERE groupid = 2', '0');
SELECT pg_temp.expect(format('SELECT citus_remove_node(%L, 5432)', :'w2'), '');
ROLLBACK TO SAVEPOINT rebalancer;

\echo '== citus_add_node: existing (host, port) returns its nodeid whatever the other arguments'
SELECT pg_temp.expect(format('SELECT citus_add_node(%L, 5432, 1, ''primary'')', :'w1'), :'wk1_id');
SELECT pg_temp.expect(format('SELECT citus_add_node(%L, 5432)', :'w1'), :'wk1_id');
SELECT pg_temp.expect(format('SELECT citus_add_node(%L, 5432, 2, ''primary'')', :'w1'), :'wk1_id');
SELECT pg_temp.expect(format('SELECT citus_add_node(%L, 5432, 5, ''primary'')', :'w1'), :'wk1_id');
SELECT pg_temp.expect(format('SELECT citus_add_node(%L, 5432, 2, ''secondary'')', :'w1'), :'wk1_id');
SELECT pg_temp.expect(format('SELECT citus_add_node(%L, 5432, 0, ''primary'')', :'cn'), :'cn_id');
SELECT pg_temp.expect(format('SELECT citus_add_node(%L, 5432, 2, ''primary'', ''other'')', :'w2'), :'wk2_id');
SELECT pg_temp.expect(format('SELECT master_add_node(%L, 5432)', :'w1'), :'wk1_id');

\echo '== citus_add_node: secondaries are inserted without connecting'
SELECT citus_add_node(:'w1ro', 5432, 1, 'secondary') AS sec_id \gset
SELECT pg_temp.expect(format('SELECT format(''%%s|%%s|%%s|%%s|%%s'', groupid, hasmetadata, metadatasynced, shouldhaveshards, isactive) FROM pg_dist_node WHERE nodeid = %s', :sec_id), '1|f|f|t|t');
SELECT pg_temp.expect('SELECT citus_add_node(''127.0.99.9'', 5432, 1, ''secondary'') IS NOT NULL', 'true');
SELECT pg_temp.expect('SELECT citus_add_node(''127.0.99.10'', 5432, 7, ''secondary'') IS NOT NULL', 'true');
SELECT pg_temp.expect('SELECT citus_add_node(''127.0.99.11'', 5432, 0, ''secondary'') IS NOT NULL', 'true');
SELECT pg_temp.expect('SELECT format(''%s|%s|%s|%s'', groupid, hasmetadata, metadatasynced, shouldhaveshards) FROM pg_dist_node WHERE nodename = ''127.0.99.11''', '0|t|t|f');
SELECT pg_temp.expect('SELECT citus_add_node(''127.0.99.12'', 5432, -1, ''secondary'') IS NOT NULL', 'true');
SELECT pg_temp.expect('SELECT groupid FROM pg_dist_node WHERE nodename = ''127.0.99.12''', '1');

\echo '== citus_add_node: new primaries'
SELECT pg_temp.expect_error('SELECT citus_add_node(''127.0.99.21'', 5432)', 'XX000', 'group 2 already has a primary node');
SELECT pg_temp.expect_error('SELECT citus_add_node(''127.0.99.22'', 5432, 1, ''primary'')', 'XX000', 'group 1 already has a primary node');
SELECT pg_temp.expect_error('SELECT citus_add_node(''127.0.99.23'', 5432, 9, ''primary'', ''other'')', 'XX000', 'primaries must be added to the default cluster');
SELECT pg_temp.expect_error('SELECT citus_add_node(''127.0.99.20'', 5432, 9, ''primary'')', '08006',
       E'connection to the remote node postgres@127.0.99.20:5432 failed with the following error: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?');
SELECT pg_temp.expect_error(format('SELECT citus_add_node(%L, 5432, 9, ''primary'')', :'w2ro'), 'XX000',
       format('failure on connection marked as essential: %s:5432', :'w2ro'));
SELECT pg_temp.expect('SELECT count(*) FROM pg_dist_node WHERE groupid = 9', '0');

\echo '== citus_update_node'
SELECT pg_temp.expect_error(format('SELECT citus_update_node(%s, %L, 5432)', :wk1_id, :'w2'), '55000', 'there is already another node with the specified hostname and port');
SELECT pg_temp.expect_error(format('SELECT citus_update_node(%s, %L, 5432)', :sec_id, :'w1'), '55000', 'there is already another node with the specified hostname and port');
SELECT pg_temp.expect_error(format('SELECT citus_update_node(%s, %L, 5432)', :wk1_id, :'w1ro'), '55000', 'there is already another node with the specified hostname and port');
SELECT pg_temp.expect_error(format('SELECT citus_update_node(999, %L, 5432)', :'w1'), '55000', 'there is already another node with the specified hostname and port');
SELECT pg_temp.expect(format('SELECT citus_update_node(%s, %L, 5432)', :wk1_id, :'w1'), '');
SELECT pg_temp.expect(format('SELECT citus_update_node(%s, %L, 5432)', :sec_id, :'w1ro'), '');
SELECT pg_temp.expect_error('SELECT citus_update_node(999, ''127.0.99.30'', 5432)', 'P0002', 'node 999 not found');
SELECT pg_temp.expect_error('SELECT citus_update_node(-1, ''127.0.99.30'', 5432)', 'P0002', 'node 4294967295 not found');
SELECT pg_temp.expect('SELECT citus_update_node(NULL, ''127.0.99.30'', 5432) IS NULL', 'true');
SELECT pg_temp.expect(format('SELECT citus_update_node(%s, NULL, 5432) IS NULL', :wk1_id), 'true');
SELECT pg_temp.expect(format('SELECT master_update_node(%s, %L, 5432)', :wk1_id, :'w1'), '');
-- primary/secondary swap in one transaction (the §4 sequence)
SELECT pg_temp.expect(format('SELECT citus_update_node(%s, %L, 5432)', :sec_id, :'w1ro' || '-tmp'), '');
SELECT pg_temp.expect(format('SELECT citus_update_node(%s, %L, 5432)', :wk1_id, :'w1ro'), '');
SELECT pg_temp.expect(format('SELECT citus_update_node(%s, %L, 5432)', :sec_id, :'w1'), '');
SELECT pg_temp.expect(format('SELECT string_agg(nodeid || '':'' || nodename || '':'' || noderole, '' '' ORDER BY nodeid) FROM pg_dist_node WHERE nodeid IN (%s, %s)', :wk1_id, :sec_id),
       format('%s:%s:primary %s:%s:secondary', :wk1_id, :'w1ro', :sec_id, :'w1'));
SELECT pg_temp.expect(format('SELECT citus_update_node(%s, %L, 5432)', :sec_id, :'w1ro' || '-tmp'), '');
SELECT pg_temp.expect(format('SELECT citus_update_node(%s, %L, 5432)', :wk1_id, :'w1'), '');
SELECT pg_temp.expect(format('SELECT citus_update_node(%s, %L, 5432)', :sec_id, :'w1ro'), '');

\echo '== citus_remove_node / citus_disable_node / citus_activate_node'
SELECT citus_standin.sync_metadata() >= 0 AS synced;    -- after the updates above, as the maintenance daemon would
SELECT pg_temp.expect_error(format('SELECT citus_remove_node(%L, 5432)', :'w1'), 'XX000',
       format('cannot remove or disable the node %s:5432 because because it contains the only shard placement for shard %s', :'w1', :g1_shard),
       'One of the table(s) that prevents the operation complete successfully is public.citusctl_test_events',
       'To proceed, either drop the tables or use undistribute_table() function to convert them to local tables');
SELECT pg_temp.expect_error(format('SELECT citus_disable_node(%L, 5432)', :'w1'), '55000',
       'disabling the first worker node in the metadata is not allowed',
       'Citus uses the first worker node in the metadata for certain internal operations when replicated tables are modified. Synchronous mode ensures that all nodes have the same view of the first worker node, which is used for certain locking operations.',
       format('You can force disabling node, SELECT citus_disable_node(''%s'', 5432, synchronous:=true);', :'w1'));
SELECT pg_temp.expect_error(format('SELECT citus_disable_node(%L, 5432, synchronous := true)', :'w1'), 'XX000',
       format('cannot remove or disable the node %s:5432 because because it contains the only shard placement for shard %s', :'w1', :g1_shard),
       'One of the table(s) that prevents the operation complete successfully is public.citusctl_test_events',
       'To proceed, either drop the tables or use undistribute_table() function to convert them to local tables');
SELECT pg_temp.expect_error(format('SELECT citus_disable_node(%L, 5432)', :'w2'), 'XX000',
       format('cannot remove or disable the node %s:5432 because because it contains the only shard placement for shard %s', :'w2', :g2_shard),
       'One of the table(s) that prevents the operation complete successfully is public.citusctl_test_events',
       'To proceed, either drop the tables or use undistribute_table() function to convert them to local tables');
SELECT pg_temp.expect_error(format('SELECT citus_disable_node(%L, 5432)', :'cn'), 'XX000', 'cannot change "isactive" field of the coordinator node');
SELECT pg_temp.expect_error('SELECT citus_disable_node(''127.0.99.11'', 5432)', 'XX000', 'cannot change "isactive" field of the coordinator node');
SELECT pg_temp.expect_error('SELECT citus_remove_node(''127.0.99.99'', 5432)', 'XX000', 'node at "127.0.99.99:5432" does not exist');
SELECT pg_temp.expect_error('SELECT citus_disable_node(''127.0.99.99'', 5432)', 'XX000', 'node at "127.0.99.99:5432" does not exist');
SELECT pg_temp.expect_error('SELECT citus_activate_node(''127.0.99.99'', 5432)', 'XX000', 'node at "127.0.99.99:5432" does not exist');
SELECT pg_temp.expect(format('SELECT citus_activate_node(%L, 5432)', :'w2'), :'wk2_id');
SELECT pg_temp.expect(format('SELECT citus_disable_node(%L, 5432)', :'w1ro'), '');
SELECT pg_temp.expect(format('SELECT citus_disable_node(%L, 5432)', :'w1ro'), '');
SELECT pg_temp.expect(format('SELECT citus_activate_node(%L, 5432)', :'w1ro'), :'sec_id');
SELECT pg_temp.expect(format('SELECT isactive FROM pg_dist_node WHERE nodeid = %s', :sec_id), 'false');
SELECT pg_temp.expect(format('SELECT citus_remove_node(%L, 5432)', :'w1ro'), '');
SELECT pg_temp.expect_error(format('SELECT citus_remove_node(%L, 5432)', :'w1ro'), 'XX000', format('node at "%s:5432" does not exist', :'w1ro'));
SELECT pg_temp.expect('SELECT citus_remove_node(''127.0.99.12'', 5432)', '');
SELECT pg_temp.expect_error('SELECT citus_pause_node_within_txn(999)', 'P0002', 'node 999 not found');

\echo '== a reachable, writable new primary (group 2 emptied and removed first, re-added as group 9)'
SELECT pg_temp.expect('WITH d AS (DELETE FROM pg_dist_placement WHERE groupid = 2 RETURNING 1) SELECT count(*) > 0 FROM d', 'true');
SELECT pg_temp.expect(format('SELECT citus_remove_node(%L, 5432)', :'w2'), '');
SELECT citus_add_node(:'w2', 5432, 9, 'primary') AS new_id \gset
SELECT pg_temp.expect(format('SELECT format(''%%s|%%s|%%s|%%s|%%s'', groupid, hasmetadata, metadatasynced, shouldhaveshards, isactive) FROM pg_dist_node WHERE nodeid = %s', :new_id), '9|t|t|t|t');
SELECT pg_temp.expect('SELECT string_agg(node_name || '':'' || node_port, '' '') FROM citus_get_active_worker_nodes()', :'w1' || ':5432 ' || :'w2' || ':5432');
SELECT pg_temp.expect(format('SELECT citus_disable_node(%L, 5432)', :'w2'), '');
SELECT pg_temp.expect('SELECT string_agg(node_name || '':'' || node_port, '' '') FROM citus_get_active_worker_nodes()', :'w1' || ':5432');
SELECT pg_temp.expect(format('SELECT citus_activate_node(%L, 5432)', :'w2'), :'new_id');
SELECT pg_temp.expect(format('SELECT isactive FROM pg_dist_node WHERE nodeid = %s', :new_id), 'true');

\echo '== coordinator, version'
SELECT pg_temp.expect(format('SELECT citus_set_coordinator_host(%L, 5432)', :'cn'), '');
SELECT pg_temp.expect(format('SELECT citus_set_coordinator_host(%L)', :'cn' || '-x'), '');
SELECT pg_temp.expect('SELECT nodename FROM pg_dist_node WHERE groupid = 0 AND noderole = ''primary''', :'cn' || '-x');
SELECT pg_temp.expect('SELECT citus_is_coordinator()', 'true');
SELECT pg_temp.expect('SELECT citus_version() LIKE ''Citus 13.2 stand-in%''', 'true');
SELECT pg_temp.expect('SELECT count(*) FROM pg_proc WHERE proname IN (''citus_activate_node'', ''citus_add_node'', ''citus_add_secondary_node'', ''citus_disable_node'', ''citus_get_active_worker_nodes'', ''citus_is_coordinator'', ''citus_pause_node_within_txn'', ''citus_remove_node'', ''citus_set_coordinator_host'', ''citus_update_node'', ''citus_version'', ''master_add_node'', ''master_update_node'') AND pronamespace = ''pg_catalog''::regnamespace', '13');
ROLLBACK;

\echo '== verbatim psql output of the multi-line errors (compare with the reference by eye)'
\pset tuples_only off
\pset format aligned
\set ON_ERROR_STOP 0
\set SHOW_CONTEXT never
SELECT citus_add_node('127.0.99.20', 5432, 9, 'primary');
SELECT citus_add_node(:'w2ro', 5432, 9, 'primary');
SELECT citus_remove_node(:'w1', 5432);
SELECT citus_disable_node(:'w1', 5432);
SELECT citus_update_node(-1, '127.0.99.30', 5432);
\echo 'the metadata after the run (unchanged):'
SELECT nodeid, groupid, nodename, nodeport, noderole, hasmetadata, metadatasynced, isactive, shouldhaveshards FROM pg_dist_node ORDER BY nodeid;
