-- =====================================================================================================================
-- citus_standin.sql -- A TEST STAND-IN FOR THE CITUS 13.2 NODE-MANAGEMENT SQL SURFACE. THIS IS NOT CITUS.
--
-- Used by the citusctl test harness (tests/cluster/cluster.sh) when the Citus extension is not installed on the test
-- machine. It is plain PL/pgSQL on stock PostgreSQL 15 (+ the dblink contrib extension), installed into pg_catalog on
-- the coordinator leader only, so that `pg_catalog.pg_dist_node` and `pg_catalog.citus_*` resolve exactly as with
-- real Citus. It distributes nothing, runs no maintenance daemon and replicates no metadata to workers.
--
-- Install (as a superuser, in database postgres of the coordinator leader; re-running refreshes the functions):
--     psql -X -v ON_ERROR_STOP=1 -f citus_standin.sql
-- Uses `SET LOCAL allow_system_table_mods = on` to create tables in pg_catalog.
--
-- Reproduced (texts and SQLSTATEs verbatim from /work/shared/reference/citus-node-api-observed.md, Citus 13.2.2):
--   * type noderole ('primary','secondary','unavailable'); table pg_dist_node with the 13 columns, defaults, NOT NULLs,
--     pg_dist_node_pkey, UNIQUE pg_dist_node_nodename_nodeport_key (nodename, nodeport), CHECK
--     primaries_are_only_allowed_in_the_default_cluster; sequences pg_dist_node_nodeid_seq, pg_dist_groupid_seq;
--     pg_dist_local_group (one row: 0), pg_dist_authinfo, pg_dist_shard, pg_dist_placement, pg_dist_partition (reduced
--     to what is used; each table its own colocation group).
--   * citus_add_node: lookup by (host, port) only -> existing nodeid, other arguments ignored, no lock (works on a
--     standby). New node: ExclusiveLock on pg_dist_node (so on a standby: "cannot acquire lock mode ExclusiveLock on
--     database objects while recovery is in progress"); "group %d already has a primary node" (XX000), then
--     "primaries must be added to the default cluster" (XX000); nodeid from the sequence (consumed by failures too);
--     secondaries inserted without connecting (group 0: hasmetadata/metadatasynced t, shouldhaveshards f; others
--     f/f/t); a new primary is connected to with dblink (credentials from pg_dist_authinfo, as Citus does):
--     unreachable -> 08006 "connection to the remote node postgres@H:P failed with the following error: <libpq>",
--     read-only -> WARNING "cannot execute UPDATE in a read-only transaction" (25006) + ERROR "failure on connection
--     marked as essential: H:P" (XX000). Default groupid = nextval('pg_dist_groupid_seq').
--   * citus_update_node (STRICT): address check first (55000 "there is already another node with the specified
--     hostname and port"; same row -> no-op without locks), then P0002 "node %u not found" (unsigned id); a real
--     change of a primary takes the group lock (below) until the end of the transaction; on a standby a real change
--     fails with "cannot assign TransactionIds during recovery" (XX000; raised explicitly, PL/pgSQL cannot hit it).
--   * citus_pause_node_within_txn: same group lock, P0002 for unknown ids, secondaries: no lock. Accepted outside a
--     transaction block too (the lock then ends with the statement), as in Citus.
--   * citus_remove_node / citus_disable_node: 'node at "H:P" does not exist'; a primary whose group holds the only
--     placement of a shard (pg_dist_placement) -> the "because because" error with DETAIL/HINT (Citus 13.0.5
--     ErrorIfNodeContainsNonRemovablePlacements); disable: coordinator and
--     "first worker" errors; citus_activate_node on a secondary returns its id and changes nothing.
--   * citus_set_coordinator_host (insert or update of the group 0 row), citus_get_active_worker_nodes (active
--     primaries of groups <> 0, active secondaries when citus.use_secondary_nodes = 'always'), citus_is_coordinator,
--     citus_version, citus_add_secondary_node, citus_add_inactive_node, master_add_node, master_update_node.
--   * the rebalancer (Citus 13.0.5 signatures, result columns, NOTICE/ERROR texts): get_rebalance_table_shards_plan,
--     citus_rebalance_start/status/wait/stop, citus_job_status, get_rebalance_progress, citus_move_shard_placement,
--     citus_drain_node, citus_set_node_property, the background job tables and their status enums; see the section
--     "Shard moves" below for how "in the background" is played and what is simplified.
--
-- The group lock: Citus takes AccessExclusiveLock on the "co-located shards metadata" advisory locks of every shard in
-- the group (writers take ShareLock). The stand-in takes ONE transaction-level advisory lock per group:
--     pg_advisory_xact_lock(1129878611, groupid)        -- pg_locks: classid 1129878611, objid groupid, objsubid 2
-- citus_standin.lock_group_shared(groupid) takes the shared form, to play a writer in tests. With force => true the
-- updater waits lock_cooldown ms, then terminates the holders (pg_terminate_backend), as Citus does.
--
-- Shards: citus_standin.create_distributed_table(regclass, shard_count) records shards round-robin over the active
-- worker primary groups in pg_dist_shard/pg_dist_placement (shard ids from 102008 as in Citus). The table itself stays
-- a plain local table on the coordinator. The harness distributes public.citusctl_test_events, so every worker group
-- registered at start holds shards and cannot be removed, while a group added later is empty and removable.
--
-- NOT reproduced (known differences):
--   * no metadata on workers. The out-of-sync window IS emulated: a real citus_update_node marks the metadata
--     workers metadatasynced = false, add/remove/activate then fail with "... is a metadata node, but is out of
--     sync" (55000), and citus_standin.sync_metadata(), called every 0.5 s by the harness (cluster.sh's syncer,
--     standing in for Citus's maintenance daemon), marks them synced again;
--   * citus.metadata_sync_mode = 'nontransactional' refusals; "operation is not allowed on this node" on workers
--     (the stand-in exists on the coordinator group only); citus_check_cluster_node_health();
--   * GUCs: without the Citus library, citus.* are plain placeholder GUCs: `ALTER SYSTEM SET
--     citus.use_secondary_nodes = 'always'` + reload works (superuser), `PGOPTIONS='-c citus.use_secondary_nodes=always'`
--     works, but so does a session `SET citus.use_secondary_nodes = ...`, which real Citus refuses (55P02) -- and
--     values are not validated. No query routing to secondaries happens, of course.
-- =====================================================================================================================

BEGIN;
SET LOCAL allow_system_table_mods = on;
SET LOCAL client_min_messages = warning;

CREATE SCHEMA IF NOT EXISTS citus_standin;
COMMENT ON SCHEMA citus_standin IS 'citusctl test harness: Citus stand-in helpers (not Citus)';
CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA citus_standin;

DO $$
BEGIN
    IF to_regtype('pg_catalog.noderole') IS NULL THEN
        CREATE TYPE pg_catalog.noderole AS ENUM ('primary', 'secondary', 'unavailable');
    END IF;
END
$$;

CREATE SEQUENCE IF NOT EXISTS pg_catalog.pg_dist_groupid_seq MINVALUE 1 MAXVALUE 4294967296;
CREATE SEQUENCE IF NOT EXISTS pg_catalog.pg_dist_node_nodeid_seq MINVALUE 1 MAXVALUE 4294967296;
CREATE SEQUENCE IF NOT EXISTS pg_catalog.pg_dist_shardid_seq MINVALUE 102008 NO MAXVALUE;
CREATE SEQUENCE IF NOT EXISTS pg_catalog.pg_dist_placement_placementid_seq MINVALUE 1 NO MAXVALUE;

CREATE TABLE IF NOT EXISTS pg_catalog.pg_dist_node (
    nodeid            integer            NOT NULL DEFAULT nextval('pg_catalog.pg_dist_node_nodeid_seq'::regclass),
    groupid           integer            NOT NULL DEFAULT nextval('pg_catalog.pg_dist_groupid_seq'::regclass),
    nodename          text               NOT NULL,
    nodeport          integer            NOT NULL DEFAULT 5432,
    noderack          text               NOT NULL DEFAULT 'default'::text,
    hasmetadata       boolean            NOT NULL DEFAULT false,
    isactive          boolean            NOT NULL DEFAULT true,
    noderole          pg_catalog.noderole NOT NULL DEFAULT 'primary'::pg_catalog.noderole,
    nodecluster       name               NOT NULL DEFAULT 'default'::name,
    metadatasynced    boolean                     DEFAULT false,
    shouldhaveshards  boolean            NOT NULL DEFAULT true,
    nodeisclone       boolean            NOT NULL DEFAULT false,
    nodeprimarynodeid integer            NOT NULL DEFAULT 0,
    CONSTRAINT pg_dist_node_pkey PRIMARY KEY (nodeid),
    CONSTRAINT pg_dist_node_nodename_nodeport_key UNIQUE (nodename, nodeport),
    CONSTRAINT primaries_are_only_allowed_in_the_default_cluster
        CHECK (NOT (nodecluster <> 'default'::name AND noderole = 'primary'::pg_catalog.noderole))
);
ALTER SEQUENCE pg_catalog.pg_dist_node_nodeid_seq OWNED BY pg_catalog.pg_dist_node.nodeid;

CREATE TABLE IF NOT EXISTS pg_catalog.pg_dist_local_group (
    groupid integer NOT NULL
);
INSERT INTO pg_catalog.pg_dist_local_group (groupid)
    SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_local_group);

CREATE TABLE IF NOT EXISTS pg_catalog.pg_dist_authinfo (
    nodeid   integer NOT NULL,
    rolename name    NOT NULL,
    authinfo text    NOT NULL,
    CONSTRAINT pg_dist_authinfo_identification UNIQUE (rolename, nodeid)
);
REVOKE ALL ON pg_catalog.pg_dist_authinfo FROM PUBLIC;

CREATE TABLE IF NOT EXISTS pg_catalog.pg_dist_shard (
    logicalrelid  regclass NOT NULL,
    shardid       bigint   NOT NULL,
    shardstorage  "char"   NOT NULL DEFAULT 't',
    shardminvalue text,
    shardmaxvalue text,
    CONSTRAINT pg_dist_shard_shardid_index UNIQUE (shardid)
);

CREATE TABLE IF NOT EXISTS pg_catalog.pg_dist_placement (
    placementid bigint  NOT NULL DEFAULT nextval('pg_catalog.pg_dist_placement_placementid_seq'::regclass),
    shardid     bigint  NOT NULL,
    shardstate  integer NOT NULL DEFAULT 1,
    shardlength bigint  NOT NULL DEFAULT 0,
    groupid     integer NOT NULL,
    CONSTRAINT pg_dist_placement_placementid_index PRIMARY KEY (placementid)
);

-- one row per distributed table; each table of the stand-in is its own colocation group
CREATE SEQUENCE IF NOT EXISTS pg_catalog.pg_dist_colocationid_seq MINVALUE 1 MAXVALUE 4294967295;
CREATE TABLE IF NOT EXISTS pg_catalog.pg_dist_partition (
    logicalrelid  regclass NOT NULL,
    partmethod    "char"   NOT NULL,
    partkey       text,
    colocationid  integer  NOT NULL DEFAULT 0,
    repmodel      "char"   NOT NULL DEFAULT 'c',
    autoconverted boolean  DEFAULT false,
    CONSTRAINT pg_dist_partition_logical_relid_index UNIQUE (logicalrelid)
);

GRANT SELECT ON pg_catalog.pg_dist_node, pg_catalog.pg_dist_local_group, pg_catalog.pg_dist_shard,
    pg_catalog.pg_dist_placement, pg_catalog.pg_dist_partition TO PUBLIC;

-- ---------------------------------------------------------------------------------------------------------------------
-- helpers (schema citus_standin)

-- one libpq conninfo value, quoted
CREATE OR REPLACE FUNCTION citus_standin.conninfo_quote(v text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $$ SELECT '''' || replace(replace(v, '\', '\\'), '''', '\''') || '''' $$;

-- the error texts Citus prints for a node address / id
CREATE OR REPLACE FUNCTION citus_standin.node_not_found(node_id integer) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'node % not found', (node_id::bigint & 4294967295) USING ERRCODE = 'P0002';
END
$$;

CREATE OR REPLACE FUNCTION citus_standin.node_does_not_exist(nodename text, nodeport integer) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'node at "%:%" does not exist', nodename, (nodeport::bigint & 4294967295) USING ERRCODE = 'XX000';
END
$$;

-- Citus takes ExclusiveLock on pg_dist_node before adding/removing a node; on a hot standby PostgreSQL refuses that
-- lock with the message below (LockAcquire). PL/pgSQL's LOCK TABLE would say "cannot execute LOCK TABLE during
-- recovery" instead, so the standby case is raised explicitly with the text Citus users see.
CREATE OR REPLACE FUNCTION citus_standin.lock_pg_dist_node() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'cannot acquire lock mode ExclusiveLock on database objects while recovery is in progress'
        USING ERRCODE = '55000', HINT = 'Only RowExclusiveLock or less can be acquired on database objects during recovery.';
    END IF;
    LOCK TABLE pg_dist_node IN EXCLUSIVE MODE;
END
$$;

-- the group lock (see header): the group key first, then one lock per shard placement of the group, ONE AFTER THE
-- OTHER in shard order, as Citus' LockShardsInWorkerPlacementList does. Each wait obeys lock_timeout, and a writer
-- that holds one of the group's shards and asks for another forms a cycle that PostgreSQL's deadlock detector breaks
-- (advisory locks take part in it), exactly the hazard of the real pause.
CREATE OR REPLACE FUNCTION citus_standin.lock_group(groupid integer, force boolean, lock_cooldown integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k CONSTANT integer := 1129878611;
    ks CONSTANT integer := 1129878612;
    helper CONSTANT text := 'citus_lock_acquirer_' || pg_backend_pid();
    auth text;
    shards integer[];
    sid integer;
BEGIN
    SELECT coalesce(array_agg(p.shardid::integer ORDER BY p.shardid), '{}') INTO shards
      FROM pg_dist_placement p WHERE p.groupid = lock_group.groupid;
    IF NOT force THEN
        PERFORM pg_advisory_xact_lock(k, groupid);
        FOREACH sid IN ARRAY shards LOOP
            PERFORM pg_advisory_xact_lock(ks, sid);
        END LOOP;
        RETURN;
    END IF;
    -- force: as Citus, a "lock acquiring backend" (here a second session through dblink) waits lock_cooldown, then
    -- terminates whoever this backend waits for, while this backend waits for the locks the ordinary way.
    SELECT a.authinfo INTO auth FROM pg_dist_authinfo a
     WHERE a.rolename = current_user AND a.nodeid = 0 LIMIT 1;
    PERFORM citus_standin.dblink_connect(helper,
        format('host=%s port=%s dbname=%s user=%s application_name=citus_lock_acquirer',
               split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
               citus_standin.conninfo_quote(current_database()), citus_standin.conninfo_quote(current_user))
        || coalesce(' ' || auth, ''));
    RAISE LOG 'lock acquiring backend started for backend % (cooldown %ms)', pg_backend_pid(), lock_cooldown;
    PERFORM citus_standin.dblink_send_query(helper, format(
        'DO $t$ BEGIN PERFORM pg_sleep(%s); FOR i IN 1 .. 3000 LOOP '
        'PERFORM pg_terminate_backend(b) FROM unnest(pg_blocking_pids(%s)) b; PERFORM pg_sleep(0.01); '
        'END LOOP; END $t$',
        greatest(lock_cooldown, 0) / 1000.0, pg_backend_pid()));
    BEGIN
        PERFORM pg_advisory_xact_lock(k, groupid);
        FOREACH sid IN ARRAY shards LOOP
            PERFORM pg_advisory_xact_lock(ks, sid);
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        PERFORM citus_standin.dblink_cancel_query(helper);
        PERFORM citus_standin.dblink_disconnect(helper);
        RAISE;
    END;
    PERFORM citus_standin.dblink_cancel_query(helper);
    PERFORM citus_standin.dblink_disconnect(helper);
END
$$;

-- a "writer" on a group, for tests: blocks, and is blocked by, the group lock until the end of the transaction
CREATE OR REPLACE FUNCTION citus_standin.lock_group_shared(groupid integer) RETURNS void
LANGUAGE sql
AS $$ SELECT pg_catalog.pg_advisory_xact_lock_shared(1129878611, groupid) $$;

-- a write statement of a distributed table, for tests: takes the shared lock of the shard that holds `key` (hash of an
-- integer, as Citus routes), until the end of the transaction, as a Citus write takes its shard's ShareLock. Returns
-- the shard id. A transaction of several such statements takes its shards one by one, as a Citus client does.
CREATE OR REPLACE FUNCTION citus_standin.write_shard(rel regclass, key integer) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h integer := hashint4(key);
    sid bigint;
BEGIN
    SELECT s.shardid INTO sid FROM pg_dist_shard s
     WHERE s.logicalrelid = rel AND h BETWEEN s.shardminvalue::integer AND s.shardmaxvalue::integer;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no shard of % holds hash %', rel, h;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1129878612, sid::integer);
    RETURN sid;
END
$$;

-- connect to a new/reactivated primary the way Citus' metadata sync does, and fail the way it fails
CREATE OR REPLACE FUNCTION citus_standin.check_new_primary(p_nodeid integer, p_nodename text, p_nodeport integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    conn CONSTANT text := 'citus_standin_' || pg_backend_pid();
    auth text;
    connstr text;
    detail text;
BEGIN
    SELECT a.authinfo INTO auth
      FROM pg_dist_authinfo a
     WHERE a.rolename = current_user AND a.nodeid IN (0, p_nodeid)
     ORDER BY a.nodeid DESC
     LIMIT 1;
    connstr := format('host=%s port=%s dbname=%s user=%s connect_timeout=5 sslmode=prefer application_name=citus_internal',
                      citus_standin.conninfo_quote(p_nodename), p_nodeport,
                      citus_standin.conninfo_quote(current_database()), citus_standin.conninfo_quote(current_user))
               || coalesce(' ' || auth, '');
    IF conn = ANY (coalesce(citus_standin.dblink_get_connections(), '{}')) THEN
        PERFORM citus_standin.dblink_disconnect(conn);
    END IF;
    BEGIN
        PERFORM citus_standin.dblink_connect(conn, connstr);
    EXCEPTION WHEN sqlclient_unable_to_establish_sqlconnection THEN
        GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
        -- Citus prints libpq's message without the 'connection to server at "H", port P failed: ' prefix
        detail := regexp_replace(detail,
                  '^connection to server (at "[^"]*"( \([^)]*\))?, port [0-9]+|on socket "[^"]*") failed: ', '');
        RAISE EXCEPTION 'connection to the remote node %@%:% failed with the following error: %',
              current_user, p_nodename, p_nodeport, detail USING ERRCODE = '08006';
    END;
    BEGIN
        -- Citus writes the new node's metadata first thing; a no-op UPDATE fails the same way on a read-only node
        PERFORM citus_standin.dblink_exec(conn, 'UPDATE pg_catalog.pg_database SET datname = datname WHERE false');
    EXCEPTION WHEN read_only_sql_transaction THEN
        PERFORM citus_standin.dblink_disconnect(conn);
        RAISE WARNING '%', SQLERRM USING ERRCODE = '25006';
        RAISE EXCEPTION 'failure on connection marked as essential: %:%', p_nodename, p_nodeport USING ERRCODE = 'XX000';
    WHEN OTHERS THEN
        PERFORM citus_standin.dblink_disconnect(conn);
        RAISE;
    END;
    PERFORM citus_standin.dblink_disconnect(conn);
END
$$;

-- shard placements of a group that block removing/disabling its primary
CREATE OR REPLACE FUNCTION citus_standin.error_if_group_has_placements(p_groupid integer, p_nodename text, p_nodeport integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    SELECT s.shardid, s.logicalrelid INTO r
      FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)
     WHERE p.groupid = p_groupid
       -- Citus: only a placement without an active copy on another group blocks
       AND NOT EXISTS (SELECT 1 FROM pg_dist_placement o JOIN pg_dist_node n ON n.groupid = o.groupid
                        WHERE o.shardid = p.shardid AND o.groupid <> p_groupid AND o.shardstate = 1
                          AND n.noderole = 'primary' AND n.isactive)
     ORDER BY s.shardid
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot remove or disable the node %:% because because it contains the only shard placement for shard %',
              p_nodename, p_nodeport, r.shardid
        USING ERRCODE = 'XX000',
              DETAIL = format('One of the table(s) that prevents the operation complete successfully is %s',
                              (SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
                                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                WHERE c.oid = r.logicalrelid)),
              HINT = 'To proceed, either drop the tables or use undistribute_table() function to convert them to local tables';
    END IF;
END
$$;

-- record shards of a (local) table round-robin over the active worker primary groups
CREATE OR REPLACE FUNCTION citus_standin.create_distributed_table(rel regclass, shard_count integer DEFAULT 32)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    groups integer[];
    sid bigint;
    lo bigint;
    step bigint;
BEGIN
    SELECT array_agg(groupid ORDER BY groupid) INTO groups
      FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' AND isactive;
    IF groups IS NULL THEN
        RAISE EXCEPTION 'no worker nodes are available for placing shards' USING ERRCODE = 'XX000';
    END IF;
    INSERT INTO pg_dist_partition (logicalrelid, partmethod, colocationid, repmodel)
    VALUES (rel, 'h', nextval('pg_dist_colocationid_seq'), 's');
    step := (4294967296 / shard_count);
    FOR i IN 0 .. shard_count - 1 LOOP
        sid := nextval('pg_dist_shardid_seq');
        lo := -2147483648 + i * step;
        INSERT INTO pg_dist_shard (logicalrelid, shardid, shardminvalue, shardmaxvalue)
        VALUES (rel, sid, lo::text, (CASE WHEN i = shard_count - 1 THEN 2147483647 ELSE lo + step - 1 END)::text);
        INSERT INTO pg_dist_placement (shardid, groupid)
        VALUES (sid, groups[1 + i % cardinality(groups)]);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------------------------------------
-- the Citus functions

CREATE OR REPLACE FUNCTION pg_catalog.citus_version() RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT 'Citus 13.2 stand-in (citusctl test harness, not Citus) on PostgreSQL ' || current_setting('server_version') $$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_is_coordinator() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT groupid = 0 FROM pg_dist_local_group LIMIT 1), false)
       AND EXISTS (SELECT 1 FROM pg_dist_node WHERE noderole = 'primary' AND isactive)
$$;

CREATE OR REPLACE FUNCTION citus_standin.error_if_any_metadata_node_out_of_sync() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n pg_dist_node;
BEGIN
    SELECT * INTO n FROM pg_dist_node d
     WHERE d.hasmetadata AND NOT coalesce(d.metadatasynced, false) AND d.isactive AND d.groupid <> 0
       AND d.noderole = 'primary'
     ORDER BY d.nodeid LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%:% is a metadata node, but is out of sync', n.nodename, n.nodeport
            USING ERRCODE = '55000', HINT = 'If the node is up, wait until metadata gets synced to it and try again.';
    END IF;
END
$$;

-- The maintenance daemon's metadata sync, as far as the stand-in can have one (called by the harness).
-- Like the daemon, it reaches only the workers that answer: the harness passes the addresses
-- ('host:port') it could connect to; a worker that is down stays out of sync until it is back.
DROP FUNCTION IF EXISTS citus_standin.sync_metadata();
CREATE OR REPLACE FUNCTION citus_standin.sync_metadata(reachable text[] DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k integer;
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN 0;
    END IF;
    UPDATE pg_dist_node d SET metadatasynced = true
     WHERE d.hasmetadata AND NOT coalesce(d.metadatasynced, false) AND d.isactive AND d.groupid <> 0
       AND (reachable IS NULL OR d.nodename || ':' || d.nodeport = ANY (reachable));
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_add_node(nodename text, nodeport integer,
                                                     groupid integer DEFAULT '-1'::integer,
                                                     noderole pg_catalog.noderole DEFAULT 'primary'::pg_catalog.noderole,
                                                     nodecluster name DEFAULT 'default'::name)
RETURNS integer
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nodeid integer;
    v_groupid integer := groupid;
    v_isactive boolean := true;
    v_hasmetadata boolean;
    v_shouldhaveshards boolean;
BEGIN
    -- existing (host, port): its nodeid, whatever the other arguments say; no lock taken
    SELECT n.nodeid INTO v_nodeid FROM pg_dist_node n WHERE n.nodename = $1 AND n.nodeport = $2;
    IF FOUND THEN
        RETURN v_nodeid;
    END IF;

    PERFORM citus_standin.lock_pg_dist_node();
    PERFORM citus_standin.error_if_any_metadata_node_out_of_sync();
    SELECT n.nodeid INTO v_nodeid FROM pg_dist_node n WHERE n.nodename = $1 AND n.nodeport = $2;
    IF FOUND THEN
        RETURN v_nodeid;
    END IF;

    IF v_groupid = -1 THEN
        v_groupid := nextval('pg_dist_groupid_seq');
    END IF;
    IF $4 = 'primary' THEN
        IF EXISTS (SELECT 1 FROM pg_dist_node n WHERE n.groupid = v_groupid AND n.noderole = 'primary') THEN
            RAISE EXCEPTION 'group % already has a primary node', v_groupid USING ERRCODE = 'XX000';
        END IF;
        IF $5 <> 'default' THEN
            RAISE EXCEPTION 'primaries must be added to the default cluster' USING ERRCODE = 'XX000';
        END IF;
    END IF;

    v_nodeid := nextval('pg_dist_node_nodeid_seq');
    IF v_groupid = 0 THEN
        v_hasmetadata := true; v_shouldhaveshards := false;
    ELSIF $4 = 'primary' THEN
        v_hasmetadata := true; v_shouldhaveshards := true;
        PERFORM citus_standin.check_new_primary(v_nodeid, $1, $2);
    ELSE
        v_hasmetadata := false; v_shouldhaveshards := true;
    END IF;

    INSERT INTO pg_dist_node (nodeid, groupid, nodename, nodeport, hasmetadata, isactive, noderole, nodecluster,
                              metadatasynced, shouldhaveshards)
    VALUES (v_nodeid, v_groupid, $1, $2, v_hasmetadata, v_isactive, $4, $5, v_hasmetadata, v_shouldhaveshards);
    RETURN v_nodeid;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_add_inactive_node(nodename text, nodeport integer,
                                                              groupid integer DEFAULT '-1'::integer,
                                                              noderole pg_catalog.noderole DEFAULT 'primary'::pg_catalog.noderole,
                                                              nodecluster name DEFAULT 'default'::name)
RETURNS integer
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nodeid integer;
    v_groupid integer := groupid;
BEGIN
    SELECT n.nodeid INTO v_nodeid FROM pg_dist_node n WHERE n.nodename = $1 AND n.nodeport = $2;
    IF FOUND THEN
        RETURN v_nodeid;
    END IF;
    PERFORM citus_standin.lock_pg_dist_node();
    IF v_groupid = -1 THEN
        v_groupid := nextval('pg_dist_groupid_seq');
    END IF;
    IF $4 = 'primary' THEN
        IF EXISTS (SELECT 1 FROM pg_dist_node n WHERE n.groupid = v_groupid AND n.noderole = 'primary') THEN
            RAISE EXCEPTION 'group % already has a primary node', v_groupid USING ERRCODE = 'XX000';
        END IF;
        IF $5 <> 'default' THEN
            RAISE EXCEPTION 'primaries must be added to the default cluster' USING ERRCODE = 'XX000';
        END IF;
    END IF;
    v_nodeid := nextval('pg_dist_node_nodeid_seq');
    INSERT INTO pg_dist_node (nodeid, groupid, nodename, nodeport, hasmetadata, isactive, noderole, nodecluster,
                              metadatasynced, shouldhaveshards)
    VALUES (v_nodeid, v_groupid, $1, $2, false, false, $4, $5, false, v_groupid <> 0);
    RETURN v_nodeid;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_add_secondary_node(nodename text, nodeport integer, primaryname text,
                                                               primaryport integer, nodecluster name DEFAULT 'default'::name)
RETURNS integer
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_groupid integer;
BEGIN
    SELECT n.groupid INTO v_groupid FROM pg_dist_node n WHERE n.nodename = $3 AND n.nodeport = $4;
    IF NOT FOUND THEN
        PERFORM citus_standin.node_does_not_exist($3, $4);
    END IF;
    RETURN citus_add_node($1, $2, v_groupid, 'secondary', $5);
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_update_node(node_id integer, new_node_name text, new_node_port integer,
                                                        force boolean DEFAULT false, lock_cooldown integer DEFAULT 10000)
RETURNS void
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other integer;
    node pg_dist_node;
BEGIN
    SELECT n.nodeid INTO other FROM pg_dist_node n WHERE n.nodename = new_node_name AND n.nodeport = new_node_port;
    IF FOUND THEN
        IF other = node_id THEN
            RETURN;     -- the row's current address: no-op, no locks
        END IF;
        RAISE EXCEPTION 'there is already another node with the specified hostname and port' USING ERRCODE = '55000';
    END IF;
    SELECT * INTO node FROM pg_dist_node n WHERE n.nodeid = node_id;
    IF NOT FOUND THEN
        PERFORM citus_standin.node_not_found(node_id);
    END IF;
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'cannot assign TransactionIds during recovery' USING ERRCODE = 'XX000';
    END IF;
    IF node.noderole = 'primary' THEN
        PERFORM citus_standin.lock_group(node.groupid, force, lock_cooldown);
    END IF;
    UPDATE pg_dist_node n SET nodename = new_node_name, nodeport = new_node_port WHERE n.nodeid = node_id;
    -- As Citus: every metadata worker must be told; until the maintenance daemon did, they are out of sync.
    UPDATE pg_dist_node n SET metadatasynced = false
     WHERE n.hasmetadata AND n.groupid <> 0 AND n.noderole = 'primary' AND n.isactive;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_pause_node_within_txn(node_id integer, force boolean DEFAULT false,
                                                                  lock_cooldown integer DEFAULT 10000)
RETURNS void
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    node pg_dist_node;
BEGIN
    SELECT * INTO node FROM pg_dist_node n WHERE n.nodeid = node_id;
    IF NOT FOUND THEN
        PERFORM citus_standin.node_not_found(node_id);
    END IF;
    IF node.noderole = 'primary' THEN
        PERFORM citus_standin.lock_group(node.groupid, force, lock_cooldown);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_remove_node(nodename text, nodeport integer) RETURNS void
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    node pg_dist_node;
BEGIN
    PERFORM citus_standin.lock_pg_dist_node();
    SELECT * INTO node FROM pg_dist_node n WHERE n.nodename = $1 AND n.nodeport = $2;
    IF NOT FOUND THEN
        PERFORM citus_standin.node_does_not_exist($1, $2);
    END IF;
    PERFORM citus_standin.error_if_any_metadata_node_out_of_sync();
    IF node.noderole = 'primary' THEN
        PERFORM citus_standin.error_if_group_has_placements(node.groupid, $1, $2);
        -- the remaining placements have copies elsewhere (reference tables): Citus deletes them
        DELETE FROM pg_dist_placement p WHERE p.groupid = node.groupid;
    END IF;
    DELETE FROM pg_dist_node n WHERE n.nodeid = node.nodeid;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_disable_node(nodename text, nodeport integer,
                                                         synchronous boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    node pg_dist_node;
    first_worker integer;
BEGIN
    SELECT * INTO node FROM pg_dist_node n WHERE n.nodename = $1 AND n.nodeport = $2;
    IF NOT FOUND THEN
        PERFORM citus_standin.node_does_not_exist($1, $2);
    END IF;
    IF node.groupid = 0 THEN
        RAISE EXCEPTION 'cannot change "isactive" field of the coordinator node' USING ERRCODE = 'XX000';
    END IF;
    IF node.noderole = 'primary' THEN
        SELECT n.nodeid INTO first_worker FROM pg_dist_node n
         WHERE n.groupid <> 0 AND n.noderole = 'primary' AND n.isactive
         ORDER BY n.nodename COLLATE "C", n.nodeport
         LIMIT 1;
        IF first_worker = node.nodeid AND NOT synchronous THEN
            RAISE EXCEPTION 'disabling the first worker node in the metadata is not allowed'
            USING ERRCODE = '55000',
                  DETAIL = 'Citus uses the first worker node in the metadata for certain internal operations when '
                           'replicated tables are modified. Synchronous mode ensures that all nodes have the same view '
                           'of the first worker node, which is used for certain locking operations.',
                  HINT = format('You can force disabling node, SELECT citus_disable_node(%L, %s, synchronous:=true);',
                                $1, $2);
        END IF;
        PERFORM citus_standin.error_if_group_has_placements(node.groupid, $1, $2);
    END IF;
    UPDATE pg_dist_node n SET isactive = false WHERE n.nodeid = node.nodeid;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_activate_node(nodename text, nodeport integer) RETURNS integer
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    node pg_dist_node;
BEGIN
    SELECT * INTO node FROM pg_dist_node n WHERE n.nodename = $1 AND n.nodeport = $2;
    IF NOT FOUND THEN
        PERFORM citus_standin.node_does_not_exist($1, $2);
    END IF;
    IF node.noderole <> 'primary' THEN
        RETURN node.nodeid;     -- Citus: silent no-op on secondaries
    END IF;
    PERFORM citus_standin.error_if_any_metadata_node_out_of_sync();
    IF node.groupid <> 0 THEN
        PERFORM citus_standin.check_new_primary(node.nodeid, $1, $2);
    END IF;
    UPDATE pg_dist_node n SET isactive = true, hasmetadata = true, metadatasynced = true WHERE n.nodeid = node.nodeid;
    RETURN node.nodeid;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_set_coordinator_host(host text,
                                                                 port integer DEFAULT (current_setting('port'::text))::integer,
                                                                 node_role pg_catalog.noderole DEFAULT 'primary'::pg_catalog.noderole,
                                                                 node_cluster name DEFAULT 'default'::name)
RETURNS void
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    coord integer;
BEGIN
    SELECT n.nodeid INTO coord FROM pg_dist_node n WHERE n.groupid = 0 AND n.noderole = 'primary';
    IF NOT FOUND THEN
        PERFORM citus_add_node(host, port, 0, node_role, node_cluster);
    ELSE
        PERFORM citus_update_node(coord, host, port);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_get_active_worker_nodes(OUT node_name text, OUT node_port bigint)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.nodename, n.nodeport::bigint
      FROM pg_dist_node n
     WHERE n.groupid <> 0 AND n.isactive
       AND n.noderole = CASE WHEN current_setting('citus.use_secondary_nodes', true) = 'always'
                             THEN 'secondary'::noderole ELSE 'primary'::noderole END
     ORDER BY n.nodename COLLATE "C", n.nodeport
$$;

CREATE OR REPLACE FUNCTION pg_catalog.master_add_node(nodename text, nodeport integer,
                                                      groupid integer DEFAULT '-1'::integer,
                                                      noderole pg_catalog.noderole DEFAULT 'primary'::pg_catalog.noderole,
                                                      nodecluster name DEFAULT 'default'::name)
RETURNS integer
LANGUAGE sql STRICT
AS $$ SELECT pg_catalog.citus_add_node($1, $2, $3, $4, $5) $$;

CREATE OR REPLACE FUNCTION pg_catalog.master_update_node(node_id integer, new_node_name text, new_node_port integer,
                                                         force boolean DEFAULT false, lock_cooldown integer DEFAULT 10000)
RETURNS void
LANGUAGE sql STRICT
AS $$ SELECT pg_catalog.citus_update_node($1, $2, $3, $4, $5) $$;

-- ---------------------------------------------------------------------------------------------------------------------
-- Shard moves, the rebalancer and its background jobs (Citus 13: citus_rebalance_start & co.)
--
-- Real Citus runs each scheduled move in a background worker of its task queue monitor. PL/pgSQL has no background
-- worker, so citus_standin.run_background_tasks() (called every 0.5 s by the harness's syncer, standin_syncer.sh) plays
-- the monitor: each call finishes the running task (the move happens then: the placement changes group) or starts the
-- next runnable one. A move thus takes two calls (~1 s) and shows in get_rebalance_progress() while it runs.
-- The plan balances each table's shard COUNT over the active worker primaries with shouldhaveshards (a shard on a
-- group whose primary has shouldhaveshards = false goes first), as the default strategy by_shard_count does per
-- colocation group; the stand-in has no colocation groups (each table is its own), ignores threshold,
-- max_shard_moves, excluded_shard_list, rebalance_strategy and improvement_threshold, and sizes a shard as the local
-- table's size divided by its shard count. A move in shard_transfer_mode auto/force_logical fails in the task (and is
-- retried, 3 times, then the task is 'error' and the job 'failed') when wal_level is not logical, as the logical
-- replication of a real move does (the stand-in reads the coordinator's wal_level: all members share one here).

DO $$
BEGIN
    IF to_regtype('pg_catalog.citus_job_status') IS NULL THEN
        CREATE TYPE pg_catalog.citus_job_status AS ENUM ('scheduled', 'running', 'finished', 'cancelling', 'cancelled',
                                                         'failing', 'failed');
    END IF;
    IF to_regtype('pg_catalog.citus_task_status') IS NULL THEN
        CREATE TYPE pg_catalog.citus_task_status AS ENUM ('blocked', 'runnable', 'running', 'done', 'cancelling',
                                                          'error', 'unscheduled', 'cancelled');
    END IF;
END
$$;
CREATE SCHEMA IF NOT EXISTS citus;
DO $$
BEGIN
    IF to_regtype('citus.shard_transfer_mode') IS NULL THEN
        CREATE TYPE citus.shard_transfer_mode AS ENUM ('auto', 'force_logical', 'block_writes');
    END IF;
END
$$;
GRANT USAGE ON SCHEMA citus TO PUBLIC;

CREATE TABLE IF NOT EXISTS pg_catalog.pg_dist_background_job (
    job_id      bigserial NOT NULL,
    state       pg_catalog.citus_job_status DEFAULT 'scheduled' NOT NULL,
    job_type    name NOT NULL,
    description text NOT NULL,
    started_at  timestamptz,
    finished_at timestamptz,
    CONSTRAINT pg_dist_background_job_pkey PRIMARY KEY (job_id)
);
CREATE TABLE IF NOT EXISTS pg_catalog.pg_dist_background_task (
    job_id         bigint NOT NULL REFERENCES pg_catalog.pg_dist_background_job (job_id),
    task_id        bigserial NOT NULL,
    owner          regrole NOT NULL DEFAULT CURRENT_USER::regrole,
    pid            integer,
    status         pg_catalog.citus_task_status DEFAULT 'runnable' NOT NULL,
    command        text NOT NULL,
    retry_count    integer,
    not_before     timestamptz,
    message        text NOT NULL DEFAULT '',
    nodes_involved integer[] DEFAULT NULL,
    CONSTRAINT pg_dist_background_task_pkey PRIMARY KEY (task_id)
);
GRANT SELECT ON pg_catalog.pg_dist_background_job, pg_catalog.pg_dist_background_task TO PUBLIC;

-- a shard's size: the (local) table's size over its shard count
CREATE OR REPLACE FUNCTION citus_standin.shard_size(p_shardid bigint) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_total_relation_size(s.logicalrelid) / greatest((SELECT count(*) FROM pg_dist_shard x
                                                               WHERE x.logicalrelid = s.logicalrelid), 1)
      FROM pg_dist_shard s WHERE s.shardid = p_shardid
$$;

-- the moves of a rebalance (see above): (table, shard, size, source group, target group) in order
CREATE OR REPLACE FUNCTION citus_standin.rebalance_moves(rel regclass, drain_only boolean)
RETURNS TABLE (table_name regclass, shardid bigint, shard_size bigint, source_group integer, target_group integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    targets integer[];
    t regclass;
    sh bigint[];
    gr integer[];
    i integer;
    g integer;
    best integer;
    cnt integer;
    lo integer;
    hi integer;
    lo_n integer;
    hi_n integer;
BEGIN
    SELECT coalesce(array_agg(n.groupid ORDER BY n.groupid), '{}') INTO targets FROM pg_dist_node n
     WHERE n.groupid <> 0 AND n.noderole = 'primary' AND n.isactive AND n.shouldhaveshards;
    FOR t IN SELECT DISTINCT s.logicalrelid FROM pg_dist_shard s
              WHERE rel IS NULL OR s.logicalrelid = rel ORDER BY 1 LOOP
        SELECT array_agg(p.shardid ORDER BY p.shardid), array_agg(p.groupid ORDER BY p.shardid) INTO sh, gr
          FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid) WHERE s.logicalrelid = t;
        IF sh IS NULL OR cardinality(targets) = 0 THEN
            CONTINUE;
        END IF;
        -- 1. off the groups that should not have shards (drain)
        FOR i IN 1 .. cardinality(sh) LOOP
            CONTINUE WHEN gr[i] = ANY (targets);
            CONTINUE WHEN drain_only AND NOT EXISTS (SELECT 1 FROM pg_dist_node n WHERE n.groupid = gr[i]
                                                        AND n.noderole = 'primary' AND NOT n.shouldhaveshards);
            best := NULL;
            FOREACH g IN ARRAY targets LOOP
                SELECT count(*) INTO cnt FROM unnest(gr) x WHERE x = g;
                IF best IS NULL OR cnt < lo_n THEN best := g; lo_n := cnt; END IF;
            END LOOP;
            table_name := t; shardid := sh[i]; shard_size := citus_standin.shard_size(sh[i]);
            source_group := gr[i]; target_group := best;
            RETURN NEXT;
            gr[i] := best;
        END LOOP;
        CONTINUE WHEN drain_only;
        -- 2. even out the counts: the last shard of the fullest group to the emptiest
        LOOP
            lo := NULL; hi := NULL;
            FOREACH g IN ARRAY targets LOOP
                SELECT count(*) INTO cnt FROM unnest(gr) x WHERE x = g;
                IF lo IS NULL OR cnt < lo_n THEN lo := g; lo_n := cnt; END IF;
                IF hi IS NULL OR cnt > hi_n THEN hi := g; hi_n := cnt; END IF;
            END LOOP;
            EXIT WHEN hi_n - lo_n <= 1;
            FOR i IN REVERSE cardinality(sh) .. 1 LOOP
                IF gr[i] = hi THEN
                    table_name := t; shardid := sh[i]; shard_size := citus_standin.shard_size(sh[i]);
                    source_group := hi; target_group := lo;
                    RETURN NEXT;
                    gr[i] := lo;
                    EXIT;
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION citus_standin.primary_of(p_groupid integer) RETURNS pg_dist_node
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM pg_dist_node n WHERE n.groupid = p_groupid AND n.noderole = 'primary' $$;

DROP FUNCTION IF EXISTS pg_catalog.get_rebalance_table_shards_plan(regclass, real, integer, bigint[], boolean, name, real);
CREATE OR REPLACE FUNCTION pg_catalog.get_rebalance_table_shards_plan(
        relation regclass DEFAULT NULL,
        threshold real DEFAULT NULL,
        max_shard_moves integer DEFAULT 1000000,
        excluded_shard_list bigint[] DEFAULT '{}',
        drain_only boolean DEFAULT false,
        rebalance_strategy name DEFAULT NULL,
        improvement_threshold real DEFAULT NULL)
RETURNS TABLE (table_name regclass, shardid bigint, shard_size bigint, sourcename text, sourceport integer,
               targetname text, targetport integer)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.table_name, m.shardid, m.shard_size, (citus_standin.primary_of(m.source_group)).nodename,
           (citus_standin.primary_of(m.source_group)).nodeport, (citus_standin.primary_of(m.target_group)).nodename,
           (citus_standin.primary_of(m.target_group)).nodeport
      FROM citus_standin.rebalance_moves(relation, coalesce(drain_only, false)) m
$$;

CREATE OR REPLACE FUNCTION citus_standin.ongoing_rebalance() RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT j.job_id FROM pg_dist_background_job j
     WHERE j.job_type = 'rebalance' AND j.state IN ('scheduled', 'running', 'cancelling', 'failing')
     ORDER BY j.job_id DESC LIMIT 1
$$;

-- a table whose UPDATEs and DELETEs logical replication can publish (Citus' RelationCanPublishAllModifications)
CREATE OR REPLACE FUNCTION citus_standin.can_publish_all(rel regclass) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.relreplident = 'f'
        OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
        OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
      FROM pg_class c WHERE c.oid = rel
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_rebalance_start(
        rebalance_strategy name DEFAULT NULL,
        drain_only boolean DEFAULT false,
        shard_transfer_mode citus.shard_transfer_mode DEFAULT 'auto')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    running bigint := citus_standin.ongoing_rebalance();
    job bigint;
    n integer := 0;
    m record;
BEGIN
    IF drain_only IS NULL THEN
        RAISE EXCEPTION 'drain_only cannot be NULL' USING ERRCODE = '22004';
    END IF;
    IF shard_transfer_mode IS NULL THEN
        RAISE EXCEPTION 'shard_transfer_mode cannot be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_dist_shard) THEN
        RAISE NOTICE 'No tables to rebalance';
        RETURN NULL;
    END IF;
    IF running IS NOT NULL THEN
        RAISE EXCEPTION 'A rebalance is already running as job %', running USING ERRCODE = 'XX000',
            DETAIL = 'A rebalance was already scheduled as background job',
            HINT = 'To monitor progress, run: SELECT * FROM citus_rebalance_status();';
    END IF;
    IF to_regclass('pg_temp.standin_planned') IS NOT NULL THEN
        DROP TABLE pg_temp.standin_planned;
    END IF;
    CREATE TEMP TABLE standin_planned ON COMMIT DROP AS
        SELECT * FROM citus_standin.rebalance_moves(NULL, drain_only);
    IF NOT EXISTS (SELECT 1 FROM pg_temp.standin_planned) THEN
        RAISE NOTICE 'No moves available for rebalancing';
        RETURN NULL;
    END IF;
    IF shard_transfer_mode = 'auto' THEN
        FOR m IN SELECT DISTINCT p.table_name FROM pg_temp.standin_planned p
                  WHERE NOT citus_standin.can_publish_all(p.table_name) LOOP
            RAISE EXCEPTION 'cannot use logical replication to transfer shards of the relation % since it doesn''t have a REPLICA IDENTITY or PRIMARY KEY',
                  (SELECT c.relname FROM pg_class c WHERE c.oid = m.table_name) USING ERRCODE = '0A000',
                  DETAIL = 'UPDATE and DELETE commands on the shard will error out during logical replication unless there is a REPLICA IDENTITY or PRIMARY KEY.',
                  HINT = 'If you wish to continue without a replica identity set the shard_transfer_mode to ''force_logical'' or ''block_writes''.';
        END LOOP;
    END IF;
    INSERT INTO pg_dist_background_job (job_type, description) VALUES ('rebalance', 'Rebalance all colocation groups')
    RETURNING job_id INTO job;
    FOR m IN SELECT p.*, (citus_standin.primary_of(p.source_group)).nodeid AS src,
                    (citus_standin.primary_of(p.target_group)).nodeid AS tgt
               FROM pg_temp.standin_planned p LOOP
        INSERT INTO pg_dist_background_task (job_id, command, nodes_involved)
        VALUES (job, format('SELECT pg_catalog.citus_move_shard_placement(%s,%s,%s,%L)', m.shardid, m.src, m.tgt,
                            shard_transfer_mode), ARRAY[m.src, m.tgt]);
        n := n + 1;
    END LOOP;
    DROP TABLE pg_temp.standin_planned;
    RAISE NOTICE 'Scheduled % moves as job %', n, job USING
        DETAIL = 'Rebalance scheduled as background job',
        HINT = 'To monitor progress, run: SELECT * FROM citus_rebalance_status();';
    RETURN job;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_move_shard_placement(shard_id bigint, source_node_id integer,
                                                                 target_node_id integer,
                                                                 shard_transfer_mode citus.shard_transfer_mode DEFAULT 'auto')
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src pg_dist_node;
    tgt pg_dist_node;
BEGIN
    SELECT * INTO src FROM pg_dist_node n WHERE n.nodeid = source_node_id;
    IF NOT FOUND THEN PERFORM citus_standin.node_not_found(source_node_id); END IF;
    SELECT * INTO tgt FROM pg_dist_node n WHERE n.nodeid = target_node_id;
    IF NOT FOUND THEN PERFORM citus_standin.node_not_found(target_node_id); END IF;
    IF shard_transfer_mode <> 'block_writes' AND current_setting('wal_level') <> 'logical' THEN
        RAISE EXCEPTION 'logical decoding requires wal_level >= logical' USING ERRCODE = '55000';
    END IF;
    UPDATE pg_dist_placement p SET groupid = tgt.groupid WHERE p.shardid = shard_id AND p.groupid = src.groupid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'could not find placement matching "%:%"', src.nodename, src.nodeport
            USING ERRCODE = 'XX000', HINT = 'Confirm the placement still exists and try again.';
    END IF;
END
$$;

-- the task queue monitor, one step per call (see above); returns the number of tasks it touched
CREATE OR REPLACE FUNCTION citus_standin.run_background_tasks() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j record;
    t pg_dist_background_task;
    k integer := 0;
    err text;
BEGIN
    IF pg_is_in_recovery() OR NOT pg_try_advisory_xact_lock(1129878613, 0) THEN
        RETURN 0;
    END IF;
    FOR j IN SELECT * FROM pg_dist_background_job WHERE state IN ('scheduled', 'running', 'cancelling', 'failing')
              ORDER BY job_id FOR UPDATE LOOP
        IF j.state IN ('cancelling', 'failing') THEN
            UPDATE pg_dist_background_task x SET status = 'cancelled', pid = NULL
             WHERE x.job_id = j.job_id AND x.status IN ('cancelling', 'running');
            UPDATE pg_dist_background_job x
               SET state = CASE j.state WHEN 'cancelling' THEN 'cancelled' ELSE 'failed' END::citus_job_status,
                   finished_at = now()
             WHERE x.job_id = j.job_id;
            k := k + 1;
            CONTINUE;
        END IF;
        SELECT * INTO t FROM pg_dist_background_task x WHERE x.job_id = j.job_id AND x.status = 'running';
        IF FOUND THEN
            BEGIN
                EXECUTE t.command;
                UPDATE pg_dist_background_task x SET status = 'done', pid = NULL WHERE x.task_id = t.task_id;
            EXCEPTION WHEN OTHERS THEN
                err := SQLERRM;
                UPDATE pg_dist_background_task x
                   SET status = CASE WHEN coalesce(t.retry_count, 0) >= 3 THEN 'error' ELSE 'runnable' END::citus_task_status,
                       retry_count = coalesce(t.retry_count, 0) + 1, pid = NULL, message = 'ERROR:  ' || err || E'\n',
                       not_before = now()
                 WHERE x.task_id = t.task_id;
                IF coalesce(t.retry_count, 0) >= 3 THEN
                    UPDATE pg_dist_background_task x SET status = 'unscheduled'
                     WHERE x.job_id = j.job_id AND x.status IN ('runnable', 'blocked');
                    UPDATE pg_dist_background_job x SET state = 'failed', finished_at = now() WHERE x.job_id = j.job_id;
                END IF;
            END;
            k := k + 1;
            CONTINUE;
        END IF;
        SELECT * INTO t FROM pg_dist_background_task x WHERE x.job_id = j.job_id AND x.status = 'runnable'
         ORDER BY x.task_id LIMIT 1;
        IF FOUND THEN
            UPDATE pg_dist_background_task x SET status = 'running', pid = pg_backend_pid() WHERE x.task_id = t.task_id;
            UPDATE pg_dist_background_job x SET state = 'running', started_at = coalesce(x.started_at, now())
             WHERE x.job_id = j.job_id;
        ELSE
            UPDATE pg_dist_background_job x SET state = 'finished', finished_at = now(),
                   started_at = coalesce(x.started_at, now())
             WHERE x.job_id = j.job_id;
        END IF;
        k := k + 1;
    END LOOP;
    RETURN k;
END
$$;

-- one row per running move (Citus: per move of the ongoing rebalance sessions; progress 1 = being copied)
DROP FUNCTION IF EXISTS pg_catalog.get_rebalance_progress();
CREATE OR REPLACE FUNCTION pg_catalog.get_rebalance_progress()
RETURNS TABLE (sessionid integer, table_name regclass, shardid bigint, shard_size bigint, sourcename text,
               sourceport integer, targetname text, targetport integer, progress bigint, source_shard_size bigint,
               target_shard_size bigint, operation_type text, source_lsn pg_lsn, target_lsn pg_lsn, status text)
LANGUAGE sql STRICT SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.pid, s.logicalrelid::regclass, s.shardid, citus_standin.shard_size(s.shardid), src.nodename,
           src.nodeport, tgt.nodename, tgt.nodeport, 1::bigint, citus_standin.shard_size(s.shardid),
           citus_standin.shard_size(s.shardid) / 2, 'move'::text,
           CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END,
           CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END, 'Copying Data'::text
      FROM pg_dist_background_task t
      CROSS JOIN LATERAL regexp_match(t.command, 'citus_move_shard_placement\((\d+),(\d+),(\d+),') m
      JOIN pg_dist_shard s ON s.shardid = m[1]::bigint
      JOIN pg_dist_node src ON src.nodeid = m[2]::integer
      JOIN pg_dist_node tgt ON tgt.nodeid = m[3]::integer
     WHERE t.status = 'running'
     ORDER BY t.task_id
$$;

DROP FUNCTION IF EXISTS pg_catalog.citus_job_status(bigint, boolean);
CREATE OR REPLACE FUNCTION pg_catalog.citus_job_status(job_id bigint, raw boolean DEFAULT false)
RETURNS TABLE (job_id bigint, state pg_catalog.citus_job_status, job_type name, description text,
               started_at timestamptz, finished_at timestamptz, details jsonb)
LANGUAGE sql STRICT SET search_path = pg_catalog, pg_temp
AS $$
    SELECT j.job_id, j.state, j.job_type, j.description, j.started_at, j.finished_at,
           jsonb_build_object(
               'task_state_counts', (SELECT jsonb_object_agg(c.status, c.n) FROM
                                        (SELECT t.status, count(*) AS n FROM pg_dist_background_task t
                                          WHERE t.job_id = $1 GROUP BY t.status) c),
               'tasks', coalesce((SELECT jsonb_agg(jsonb_build_object(
                            'state', t.status, 'retried', coalesce(t.retry_count, 0), 'phase', p.status,
                            'size', CASE WHEN $2 THEN jsonb_build_object('source', p.source_shard_size,
                                                                          'target', p.target_shard_size)
                                         ELSE jsonb_build_object('source', pg_size_pretty(p.source_shard_size),
                                                                 'target', pg_size_pretty(p.target_shard_size)) END,
                            'hosts', jsonb_build_object('source', p.sourcename || ':' || p.sourceport,
                                                        'target', p.targetname || ':' || p.targetport),
                            'message', t.message, 'command', t.command, 'task_id', t.task_id) ORDER BY t.task_id)
                          FROM pg_dist_background_task t JOIN get_rebalance_progress() p ON p.sessionid = t.pid
                         WHERE t.job_id = $1 AND t.status = 'running'), '[]'::jsonb)
                        || coalesce((SELECT jsonb_agg(jsonb_build_object(
                            'state', t.status, 'retried', coalesce(t.retry_count, 0), 'message', t.message,
                            'command', t.command, 'task_id', t.task_id) ORDER BY t.task_id)
                          FROM pg_dist_background_task t
                         WHERE t.job_id = $1 AND (t.status = 'error' OR (t.status = 'runnable' AND t.retry_count > 0))),
                          '[]'::jsonb))
      FROM pg_dist_background_job j WHERE j.job_id = $1
$$;

DROP FUNCTION IF EXISTS pg_catalog.citus_rebalance_status(boolean);
CREATE OR REPLACE FUNCTION pg_catalog.citus_rebalance_status(raw boolean DEFAULT false)
RETURNS TABLE (job_id bigint, state pg_catalog.citus_job_status, job_type name, description text,
               started_at timestamptz, finished_at timestamptz, details jsonb)
LANGUAGE sql STRICT SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.* FROM (SELECT max(j.job_id) AS id FROM pg_dist_background_job j WHERE j.job_type = 'rebalance') l,
           citus_job_status(l.id, $1) s
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_rebalance_wait() RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint := citus_standin.ongoing_rebalance();
BEGIN
    IF job IS NULL THEN
        RAISE WARNING 'no ongoing rebalance that can be waited on';
        RETURN;
    END IF;
    WHILE EXISTS (SELECT 1 FROM pg_dist_background_job j WHERE j.job_id = job
                     AND j.state IN ('scheduled', 'running', 'cancelling', 'failing')) LOOP
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_rebalance_stop() RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint := citus_standin.ongoing_rebalance();
BEGIN
    IF job IS NULL THEN
        RAISE EXCEPTION 'no ongoing rebalance that can be stopped' USING ERRCODE = 'XX000';
    END IF;
    UPDATE pg_dist_background_task t SET status = 'cancelled'
     WHERE t.job_id = job AND t.status IN ('blocked', 'runnable');
    UPDATE pg_dist_background_task t SET status = 'cancelling' WHERE t.job_id = job AND t.status = 'running';
    UPDATE pg_dist_background_job j
       SET state = CASE WHEN EXISTS (SELECT 1 FROM pg_dist_background_task t WHERE t.job_id = job
                                         AND t.status = 'cancelling') THEN 'cancelling' ELSE 'cancelled' END::citus_job_status,
           finished_at = CASE WHEN EXISTS (SELECT 1 FROM pg_dist_background_task t WHERE t.job_id = job
                                               AND t.status = 'cancelling') THEN NULL ELSE now() END
     WHERE j.job_id = job;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.citus_set_node_property(nodename text, nodeport integer, property text,
                                                              value boolean) RETURNS void
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    node pg_dist_node;
BEGIN
    SELECT * INTO node FROM pg_dist_node n WHERE n.nodename = $1 AND n.nodeport = $2;
    IF NOT FOUND THEN
        PERFORM citus_standin.node_does_not_exist($1, $2);
    END IF;
    IF property <> 'shouldhaveshards' THEN
        RAISE EXCEPTION 'only the ''shouldhaveshards'' property can be set using this function' USING ERRCODE = 'XX000';
    END IF;
    UPDATE pg_dist_node n SET shouldhaveshards = value WHERE n.nodeid = node.nodeid;
END
$$;

CREATE OR REPLACE FUNCTION pg_catalog.master_set_node_property(nodename text, nodeport integer, property text,
                                                               value boolean) RETURNS void
LANGUAGE sql STRICT AS $$ SELECT pg_catalog.citus_set_node_property($1, $2, $3, $4) $$;

-- synchronous drain (Citus: shouldhaveshards := false in a separate transaction, then the moves in the foreground)
CREATE OR REPLACE FUNCTION pg_catalog.citus_drain_node(nodename text, nodeport integer,
                                                       shard_transfer_mode citus.shard_transfer_mode DEFAULT 'auto',
                                                       rebalance_strategy name DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m record;
BEGIN
    PERFORM citus_set_node_property($1, $2, 'shouldhaveshards', false);
    FOR m IN SELECT p.*, (citus_standin.primary_of(p.source_group)).nodeid AS src,
                    (citus_standin.primary_of(p.target_group)).nodeid AS tgt
               FROM citus_standin.rebalance_moves(NULL, true) p LOOP
        PERFORM citus_move_shard_placement(m.shardid, m.src, m.tgt, shard_transfer_mode);
    END LOOP;
END
$$;

-- Citus revokes the node-management functions from PUBLIC
-- Citus (11.0 and later) overloads pg_cancel_backend and pg_terminate_backend in pg_catalog with a global process id
-- (node id * 10^10 + pid). Reproduced for what it does to callers: `pg_catalog.pg_cancel_backend($1)` with an untyped
-- parameter is then ambiguous (42725 "function pg_catalog.pg_cancel_backend(unknown) is not unique"). The stand-in's
-- versions act on this node's backends only.
CREATE OR REPLACE FUNCTION pg_catalog.pg_cancel_backend(global_pid bigint) RETURNS boolean
    LANGUAGE sql AS $$ SELECT pg_catalog.pg_cancel_backend((global_pid % 10000000000)::integer) $$;
CREATE OR REPLACE FUNCTION pg_catalog.pg_terminate_backend(global_pid bigint, timeout bigint DEFAULT 0) RETURNS boolean
    LANGUAGE sql AS $$ SELECT pg_catalog.pg_terminate_backend((global_pid % 10000000000)::integer, timeout) $$;

REVOKE ALL ON FUNCTION
    pg_catalog.citus_add_node(text, integer, integer, pg_catalog.noderole, name),
    pg_catalog.citus_add_inactive_node(text, integer, integer, pg_catalog.noderole, name),
    pg_catalog.citus_add_secondary_node(text, integer, text, integer, name),
    pg_catalog.citus_update_node(integer, text, integer, boolean, integer),
    pg_catalog.citus_pause_node_within_txn(integer, boolean, integer),
    pg_catalog.citus_remove_node(text, integer),
    pg_catalog.citus_disable_node(text, integer, boolean),
    pg_catalog.citus_activate_node(text, integer),
    pg_catalog.citus_set_coordinator_host(text, integer, pg_catalog.noderole, name),
    pg_catalog.master_add_node(text, integer, integer, pg_catalog.noderole, name),
    pg_catalog.master_update_node(integer, text, integer, boolean, integer),
    pg_catalog.citus_set_node_property(text, integer, text, boolean),
    pg_catalog.master_set_node_property(text, integer, text, boolean),
    pg_catalog.citus_drain_node(text, integer, citus.shard_transfer_mode, name),
    pg_catalog.citus_move_shard_placement(bigint, integer, integer, citus.shard_transfer_mode)
FROM PUBLIC;
REVOKE ALL ON SCHEMA citus_standin FROM PUBLIC;

COMMIT;
