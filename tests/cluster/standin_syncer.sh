#!/usr/bin/env bash
# Test harness only: stands in for Citus's maintenance daemon, which resyncs metadata to the
# workers within a second or two of a change, to those it can reach: a worker that is down stays
# out of sync until it is back. Every 0.5 s, on each coordinator member (a no-op on a replica),
# it lists the out-of-sync workers, tries each (pg_isready, 1 s), and calls
# citus_standin.sync_metadata(ARRAY[the ones that answered]). It also plays Citus's background task queue
# monitor: citus_standin.run_background_tasks() advances a background rebalance by one step (start or finish a
# shard move). Started and stopped by cluster.sh.
#   standin_syncer.sh DIR NET        (password in $CITUS_PGPASSWORD)
DIR=$1 NET=$2
BIN=/usr/lib/postgresql/15/bin
while [ -d "$DIR" ]; do
    for a in "$NET.1" "$NET.2"; do
        conn="host=$a port=5432 user=postgres dbname=postgres sslmode=prefer application_name=citus-standin-syncer"
        # the task queue monitor's step (shard moves of a background rebalance): a no-op on a replica
        PGPASSWORD=$CITUS_PGPASSWORD PGCONNECT_TIMEOUT=2 "$BIN/psql" -XAtq "$conn" \
            -c "SELECT citus_standin.run_background_tasks()" >/dev/null 2>&1 || continue
        unsynced=$(PGPASSWORD=$CITUS_PGPASSWORD PGCONNECT_TIMEOUT=2 "$BIN/psql" -XAtq "$conn" -c \
            "SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE hasmetadata AND NOT coalesce(metadatasynced, false)
               AND isactive AND groupid <> 0 AND NOT pg_is_in_recovery()" 2>/dev/null) || continue
        [ -n "$unsynced" ] || continue
        up=()
        for n in $unsynced; do
            "$BIN/pg_isready" -q -t 1 -h "${n%:*}" -p "${n##*:}" && up+=("'$n'")
        done
        [ ${#up[@]} -gt 0 ] || continue
        PGPASSWORD=$CITUS_PGPASSWORD PGCONNECT_TIMEOUT=2 "$BIN/psql" -XAtq "$conn" \
            -c "SELECT citus_standin.sync_metadata(ARRAY[$(IFS=,; echo "${up[*]}")]::text[])" >/dev/null 2>&1
    done
    sleep 0.5
done
