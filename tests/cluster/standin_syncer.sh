#!/usr/bin/env bash
# Test harness only: stands in for Citus's maintenance daemon, which resyncs metadata to the
# workers within a second or two of a change. Every 0.5 s it calls citus_standin.sync_metadata()
# on the coordinator members (a no-op on a replica). Started and stopped by cluster.sh (by PID).
#   standin_syncer.sh DIR NET        (password in $CITUS_PGPASSWORD)
DIR=$1 NET=$2
while [ -d "$DIR" ]; do
    for a in "$NET.1" "$NET.2"; do
        PGPASSWORD=$CITUS_PGPASSWORD PGCONNECT_TIMEOUT=2 /usr/lib/postgresql/15/bin/psql -XAtq \
            "host=$a port=5432 user=postgres dbname=postgres sslmode=prefer application_name=citus-standin-syncer" \
            -c 'SELECT citus_standin.sync_metadata()' >/dev/null 2>&1
    done
    sleep 0.5
done
