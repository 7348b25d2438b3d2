#!/usr/bin/env bash
# citusctl local test cluster: one etcd + four Patroni scopes (cn, wk1, wk2, and wk3, not registered in Citus),
# two members each,
# every member on its own loopback address with PostgreSQL on 5432 and the Patroni REST API on 8008.
# See tests/cluster/README.md. Run as root (Patroni/PostgreSQL run as user postgres).
#
#   cluster.sh start   --flavor patroni3|patroni4 --dir DIR [--net 127.0.N] [--citus 13|11.3]
#                      (--citus 11.3: the stand-in as Citus before 12.1, without citus_pause_node_within_txn;
#                       ignored when real Citus is installed: then the installed version decides)
#   cluster.sh stop    --dir DIR
#   cluster.sh status  --dir DIR
#   cluster.sh psql    --dir DIR MEMBER [psql args...]
#   cluster.sh kill-patroni --dir DIR MEMBER [--hard]
#   cluster.sh start-member --dir DIR MEMBER [--no-wait]
#   cluster.sh switchover   --dir DIR SCOPE [--candidate MEMBER]
#   cluster.sh wait-healthy --dir DIR [--timeout S]
#   cluster.sh vip          --dir DIR SCOPE rw|ro right|wrong   # re-point one VIP (haproxy), print where it lands
#   cluster.sh vip-target   --dir DIR SCOPE rw|ro               # print the member address a VIP lands on
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STANDIN_SQL=$REPO/tests/citus-standin/citus_standin.sql
CACHE=${CITUSCTL_TEST_CACHE:-/var/tmp/citusctl-test}
PGBIN=/usr/lib/postgresql/15/bin
PY=/usr/bin/python3
MEMBERS=(pg1 pg2 pg3 pg4 pg5 pg6 pg7 pg8)
# wk3 (pg7/pg8) runs with the cluster but is not registered in Citus: add-worker/remove-worker tests use it
SCOPES=(cn wk1 wk2 wk3)
HAPROXY=/usr/sbin/haproxy
START_TIMEOUT=${CITUSCTL_TEST_START_TIMEOUT:-90}

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

member_index() { echo "${1#pg}"; }
member_scope() {
    case $1 in pg1 | pg2) echo cn ;; pg3 | pg4) echo wk1 ;; pg5 | pg6) echo wk2 ;; pg7 | pg8) echo wk3 ;; *) die "unknown member '$1' (pg1..pg8)" ;; esac
}
scope_members() {
    case $1 in cn) echo "pg1 pg2" ;; wk1) echo "pg3 pg4" ;; wk2) echo "pg5 pg6" ;; wk3) echo "pg7 pg8" ;; *) die "unknown scope '$1' (cn, wk1, wk2, wk3)" ;; esac
}
member_addr() { member_scope "$1" >/dev/null; echo "$NET.$(member_index "$1")"; }
# VIPs (haproxy frontends, port 5432): cn NET.100/101, wk1 NET.110/111, wk2 NET.120/121, wk3 NET.130/131 (rw/ro)
vip_addr() { # SCOPE rw|ro
    local base
    case $1 in cn) base=100 ;; wk1) base=110 ;; wk2) base=120 ;; wk3) base=130 ;; *) die "unknown scope '$1' (cn, wk1, wk2, wk3)" ;; esac
    case $2 in rw) echo "$NET.$base" ;; ro) echo "$NET.$((base + 1))" ;; *) die "VIP kind must be rw or ro, not '$2'" ;; esac
}

# ---------------------------------------------------------------------------------------------------------------
# argument parsing: global options may appear anywhere; the rest are positional
FLAVOR= DIR= NET= HARD=0 NOWAIT=0 CANDIDATE= TIMEOUT= CITUS_MODE=13
CMD=${1:-}
[ -n "$CMD" ] || die "usage: cluster.sh start|stop|status|psql|kill-patroni|start-member|stop-etcd|start-etcd|switchover|wait-healthy|vip|vip-target --dir DIR ..."
shift
POS=()
while [ $# -gt 0 ]; do
    case $1 in
    --flavor) FLAVOR=$2; shift 2 ;;
    --flavor=*) FLAVOR=${1#*=}; shift ;;
    --dir) DIR=$2; shift 2 ;;
    --dir=*) DIR=${1#*=}; shift ;;
    --net) NET=$2; shift 2 ;;
    --net=*) NET=${1#*=}; shift ;;
    --candidate) CANDIDATE=$2; shift 2 ;;
    --citus) CITUS_MODE=$2; shift 2 ;;
    --citus=*) CITUS_MODE=${1#*=}; shift ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --hard) HARD=1; shift ;;
    --no-wait) NOWAIT=1; shift ;;
    --) shift; POS+=("$@"); break ;;
    *) POS+=("$1"); shift
       # everything after MEMBER belongs to psql
       if [ "$CMD" = psql ]; then POS+=("$@"); break; fi ;;
    esac
done
[ -n "$DIR" ] || die "--dir DIR is required"
[ "$(id -u)" = 0 ] || die "must run as root"
DIR=$(realpath -m "$DIR")

load_env() {
    [ -f "$DIR/env" ] || die "$DIR/env not found: was the cluster started with --dir $DIR?"
    # shellcheck disable=SC1091
    . "$DIR/env"
    NET=$CITUSCTL_TEST_NET
    FLAVOR=$CITUSCTL_TEST_FLAVOR
    set_flavor
}

set_flavor() {
    case $FLAVOR in
    patroni3) PATRONI=/usr/bin/patroni; PATRONICTL=/usr/bin/patronictl; : "${NET:=127.0.1}" ;;
    patroni4) PATRONI=$CACHE/venv-patroni4/bin/patroni; PATRONICTL=$CACHE/venv-patroni4/bin/patronictl; : "${NET:=127.0.2}" ;;
    *) die "--flavor must be patroni3 or patroni4" ;;
    esac
    [[ $NET =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "--net must look like 127.0.N"
}

# ---------------------------------------------------------------------------------------------------------------
# process helpers: only ever signal PIDs we recorded, and only if /proc/PID/cmdline still matches
pid_alive() { # PID PATTERN
    local pid=$1 pat=$2
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pat"
}
# a child this script has just started: alive until it exits (a zombie not yet reaped counts as gone).
# Unlike pid_alive it does not look at the command line, which between fork and exec is still this
# script's own (checking it there made "etcd exited" a race on a loaded machine).
child_alive() { # PID
    local st
    [ -n "$1" ] && st=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]
}
pidfile_pid() { [ -f "$1" ] && head -n1 "$1" | tr -dc 0-9 || true; }
postmaster_pid() { pidfile_pid "$DIR/$1/data/postmaster.pid"; }
patroni_pid() { pidfile_pid "$DIR/pids/$1.pid"; }

wait_gone() { # TIMEOUT_S PID PATTERN
    local deadline=$(($(date +%s) + $1))
    while pid_alive "$2" "$3"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

# ---------------------------------------------------------------------------------------------------------------
# REST and SQL helpers
rest_get() { curl -s -m 3 "http://$(member_addr "$1"):8008/$2"; }

scope_cluster_json() { # SCOPE: /cluster from the first member that answers
    local m out
    for m in $(scope_members "$1"); do
        if out=$(rest_get "$m" cluster 2>/dev/null) && [ -n "$out" ]; then echo "$out"; return 0; fi
    done
    return 1
}

scope_leader() { # SCOPE -> member name of the running leader (empty if none)
    scope_cluster_json "$1" 2>/dev/null | $PY -c '
import json, sys
try:
    c = json.load(sys.stdin)
except Exception:
    sys.exit(0)
for m in c.get("members", []):
    if m.get("role") in ("leader", "standby_leader") and m.get("state") == "running":
        print(m["name"]); break' || true
}

scope_healthy() { # SCOPE: one running leader and every other member streaming/running
    scope_cluster_json "$1" 2>/dev/null | $PY -c '
import json, sys
c = json.load(sys.stdin)
ms = c.get("members", [])
leaders = [m for m in ms if m.get("role") == "leader" and m.get("state") == "running"]
reps = [m for m in ms if m.get("role") != "leader" and m.get("state") in ("streaming", "running")]
sys.exit(0 if len(ms) == 2 and len(leaders) == 1 and len(reps) == 1 else 1)' 2>/dev/null
}

member_psql() { # MEMBER [psql args]: TCP as postgres with the password from DIR/env
    local m=$1; shift
    PGPASSWORD=$CITUS_PGPASSWORD PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -X -v ON_ERROR_STOP=1 \
        "host=$(member_addr "$m") port=5432 user=postgres dbname=postgres sslmode=prefer application_name=citusctl-test" "$@"
}

sql_value() { member_psql "$1" -Atq -c "$2"; }

wait_writable() { # MEMBER TIMEOUT_S
    local deadline=$(($(date +%s) + $2))
    while [ "$(sql_value "$1" 'SELECT pg_is_in_recovery()' 2>/dev/null)" != f ]; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

tail_logs() {
    local f
    for f in "$DIR"/etcd.log "$DIR"/pg?/patroni.log; do
        [ -f "$f" ] || continue
        echo "---- tail $f" >&2
        tail -n 15 "$f" >&2
    done
    for f in "$DIR"/pg?/log/*.log; do
        [ -f "$f" ] || continue
        echo "---- tail $f" >&2
        tail -n 5 "$f" >&2
    done
}

wait_healthy() { # TIMEOUT_S
    local deadline=$(($(date +%s) + $1)) s ok
    while :; do
        ok=1
        for s in "${SCOPES[@]}"; do scope_healthy "$s" || { ok=0; break; }; done
        [ $ok = 0 ] || return 0
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "timeout after $1 s waiting for every scope to have a leader and a streaming replica"
            print_status >&2 || true
            tail_logs
            return 1
        fi
        sleep 0.5
    done
}

print_status() {
    local s
    for s in "${SCOPES[@]}"; do
        scope_cluster_json "$s" 2>/dev/null | S=$s $PY -c '
import json, os, sys
c = json.load(sys.stdin)
for m in c.get("members", []):
    print("%-4s %-4s %-15s %-14s %-10s tl=%-3s lag=%s" % (os.environ["S"], m["name"], m.get("host", "?"), m.get("role"),
          m.get("state"), m.get("timeline", "-"), m.get("lag", "-")))' || echo "$s  (no REST API answers)"
    done
}

# ---------------------------------------------------------------------------------------------------------------
# configuration files
random_password() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

write_member_config() { # MEMBER
    local m=$1 addr scope d
    addr=$(member_addr "$m"); scope=$(member_scope "$m"); d=$DIR/$m
    install -d -o postgres -g postgres -m 700 "$d" "$d/sock" "$d/log"
    cat >"$d/patroni.yml" <<EOF
# generated by tests/cluster/cluster.sh ($FLAVOR)
scope: $scope
name: $m
restapi:
  listen: $addr:8008
  connect_address: $addr:8008
  authentication:
    username: patroni
    password: $PATRONI_PASSWORD
ctl:
  authentication:
    username: patroni
    password: $PATRONI_PASSWORD
etcd3:
  hosts: [$NET.250:2379]
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    maximum_lag_on_failover: 1073741824
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 100
        max_prepared_transactions: 20
        max_wal_senders: 10
        max_replication_slots: 10
        # logical: Citus moves shards (rebalance, drain) with logical replication
        wal_level: logical
        hot_standby: 'on'
        wal_log_hints: 'on'
        wal_keep_size: 128MB
        ssl: 'on'
        ssl_cert_file: /etc/ssl/certs/ssl-cert-snakeoil.pem
        ssl_key_file: /etc/ssl/private/ssl-cert-snakeoil.key
        password_encryption: scram-sha-256
        logging_collector: 'on'
        log_filename: postgresql.log
        log_line_prefix: '%m [%p] %q%u@%d '
        shared_preload_libraries: '$SHARED_PRELOAD'
        # declared so that ALTER SYSTEM SET citus.use_secondary_nodes works without the Citus library too
        # (PostgreSQL 15 refuses ALTER SYSTEM of a placeholder GUC that the session does not know); Citus' default
        citus.use_secondary_nodes: never
        # likewise, so that a test can change one member's Citus setting (Citus 13's default)
        citus.node_connection_timeout: 30000
        shared_buffers: 32MB
        fsync: 'off'
        full_page_writes: 'on'
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
postgresql:
  listen: $addr:5432
  connect_address: $addr:5432
  data_dir: $d/data
  bin_dir: $PGBIN
  pgpass: $d/pgpass
  authentication:
    superuser:
      username: postgres
      password: $CITUS_PGPASSWORD
    replication:
      username: replicator
      password: $REPL_PASSWORD
  parameters:
    unix_socket_directories: $d/sock
    log_directory: $d/log
    # Citus connects to its own node through this name (default localhost, where nothing listens here)
    citus.local_hostname: $addr
  pg_hba:
    - local all postgres peer
    - host replication replicator 127.0.0.0/8 scram-sha-256
    - host all all 127.0.0.0/8 scram-sha-256
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
EOF
    chown postgres:postgres "$d/patroni.yml"
    chmod 600 "$d/patroni.yml"
}

write_env_and_inventory() {
    local citus=$1
    umask 077
    cat >"$DIR/env" <<EOF
export CITUS_PGPASSWORD=$CITUS_PGPASSWORD
export PATRONI_PASSWORD=$PATRONI_PASSWORD
export REPL_PASSWORD=$REPL_PASSWORD
export CITUSCTL_TEST_NET=$NET
export CITUSCTL_TEST_FLAVOR=$FLAVOR
export CITUSCTL_TEST_DIR=$DIR
export CITUSCTL_PATRONICTL=$PATRONICTL
export CITUSCTL_PATRONICTL_CONFIG=$DIR/patronictl.yml
export CITUSCTL_CITUS=$citus
export CITUSCTL_CITUS_MODE=$CITUS_MODE
export CITUSCTL_VIPS=1
EOF
    chmod 600 "$DIR/env"
    cat >"$DIR/patronictl.yml" <<EOF
etcd3:
  hosts: [$NET.250:2379]
ctl:
  authentication:
    username: patroni
    password: $PATRONI_PASSWORD
EOF
    chmod 600 "$DIR/patronictl.yml"
    umask 022
    cat >"$DIR/inventory.yml" <<EOF
name: test-$FLAVOR
databases: [postgres]
postgres:
  user: postgres
  password_env: CITUS_PGPASSWORD
  sslmode: prefer
patroni:
  port: 8008
  scheme: http
  username: patroni
  password_env: PATRONI_PASSWORD
  timeout: 2s
coordinator:
  scope: cn
  members:
    - { name: pg1, host: $NET.1 }
    - { name: pg2, host: $NET.2 }
workers:
  - scope: wk1
    group: 1
    members:
      - { name: pg3, host: $NET.3 }
      - { name: pg4, host: $NET.4 }
  - scope: wk2
    group: 2
    members:
      - { name: pg5, host: $NET.5 }
      - { name: pg6, host: $NET.6 }
EOF
    # the same with a VIP pair per group (haproxy, see write_haproxy_cfg)
    local s out=$DIR/inventory-vip.yml.tmp line
    while IFS= read -r line; do
        printf '%s\n' "$line"
        if [[ $line =~ ^([\ -]*)scope:\ (cn|wk1|wk2)$ ]]; then
            s=${BASH_REMATCH[2]}
            printf '%*svip: { rw: %s, ro: %s }\n' "${#BASH_REMATCH[1]}" '' "$(vip_addr "$s" rw)" "$(vip_addr "$s" ro)"
        fi
    done <"$DIR/inventory.yml" >"$out"
    mv -f "$out" "$DIR/inventory-vip.yml"
    # the same plus wk3 (running, not registered in Citus at start: add-worker/remove-worker tests)
    { cat "$DIR/inventory.yml"; cat <<EOF
  - scope: wk3
    group: 3
    members:
      - { name: pg7, host: $NET.7 }
      - { name: pg8, host: $NET.8 }
EOF
    } >"$DIR/inventory-wk3.yml"
}

# ---------------------------------------------------------------------------------------------------------------
# starting processes
start_etcd() {
    local pid
    pid=$(pidfile_pid "$DIR/pids/etcd.pid")
    if pid_alive "$pid" etcd; then return 0; fi
    mkdir -p "$DIR/etcd"
    chmod 700 "$DIR/etcd"
    setsid /usr/bin/etcd --name citusctl-test --data-dir "$DIR/etcd" \
        --listen-client-urls "http://$NET.250:2379" --advertise-client-urls "http://$NET.250:2379" \
        --listen-peer-urls "http://$NET.250:2380" --initial-advertise-peer-urls "http://$NET.250:2380" \
        --initial-cluster "citusctl-test=http://$NET.250:2380" --initial-cluster-state new \
        --initial-cluster-token "citusctl-test-$NET" --enable-v2=false \
        >>"$DIR/etcd.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$DIR/pids/etcd.pid"
    local deadline=$(($(date +%s) + 20))
    until curl -s -m 1 "http://$NET.250:2379/health" | grep -q '"health":"true"'; do
        child_alive "$pid" || { tail -n 20 "$DIR/etcd.log" >&2; die "etcd exited (log: $DIR/etcd.log)"; }
        [ "$(date +%s)" -lt "$deadline" ] || { tail -n 20 "$DIR/etcd.log" >&2; die "etcd not healthy after 20 s"; }
        sleep 0.1
    done
}

start_patroni() { # MEMBER
    local m=$1 pid
    pid=$(patroni_pid "$m")
    if pid_alive "$pid" patroni; then return 0; fi
    # a postmaster left behind without its Patroni (e.g. after a hard kill) must go first
    pid=$(postmaster_pid "$m")
    if pid_alive "$pid" postgres; then
        kill -QUIT "$pid" 2>/dev/null || true
        wait_gone 10 "$pid" postgres || kill -KILL "$pid" 2>/dev/null || true
    fi
    # HOME is the member's own directory: libpq inside the server (Citus, dblink) looks for
    # ~/.postgresql/postgresql.crt there, and root's home is not readable by postgres.
    (cd "$DIR/$m" && HOME="$DIR/$m" USER=postgres LOGNAME=postgres exec setsid setpriv --reuid=postgres --regid=postgres --init-groups -- \
        "$PATRONI" "$DIR/$m/patroni.yml" >>"$DIR/$m/patroni.log" 2>&1 </dev/null) &
    echo $! >"$DIR/pids/$m.pid"
}

wait_member_running() { # MEMBER TIMEOUT_S
    local m=$1 deadline=$(($(date +%s) + $2))
    until rest_get "$m" patroni 2>/dev/null | grep -q '"state": *"running"'; do
        # (between fork and exec the child's command line is still this script's)
        pid_alive "$(patroni_pid "$m")" patroni || pid_alive "$(patroni_pid "$m")" cluster.sh || { tail -n 30 "$DIR/$m/patroni.log" >&2; die "patroni of $m exited"; }
        [ "$(date +%s)" -lt "$deadline" ] || { tail -n 30 "$DIR/$m/patroni.log" >&2; die "$m not running after $2 s"; }
        sleep 0.3
    done
}

# The stand-in's metadata sync (Citus's maintenance daemon does this on real Citus).
start_syncer() {
    pid_alive "$(pidfile_pid "$DIR/pids/syncer.pid")" "standin_syncer.sh $DIR" && return 0
    (CITUS_PGPASSWORD=$CITUS_PGPASSWORD exec setsid bash "$HERE/standin_syncer.sh" "$DIR" "$NET" >/dev/null 2>&1 </dev/null) &
    echo $! >"$DIR/pids/syncer.pid"
}
stop_syncer() {
    local pid
    pid=$(pidfile_pid "$DIR/pids/syncer.pid")
    if pid_alive "$pid" "standin_syncer.sh $DIR"; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone 5 "$pid" "standin_syncer.sh" || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/pids/syncer.pid"
}

setup_citus() { # real|standin
    local citus=$1 cn w1 w2 w3 l
    cn=$(scope_leader cn); w1=$(scope_leader wk1); w2=$(scope_leader wk2); w3=$(scope_leader wk3)
    [ -n "$cn" ] && [ -n "$w1" ] && [ -n "$w2" ] && [ -n "$w3" ] ||
        die "no leader in some scope (cn='$cn' wk1='$w1' wk2='$w2' wk3='$w3')"
    for l in "$cn" "$w1" "$w2" "$w3"; do
        wait_writable "$l" 30 || die "leader $l is not writable"
    done
    if [ "$citus" = standin ]; then
        # idempotent: (re)creates what is missing and refreshes the functions
        member_psql "$cn" -q -f "$STANDIN_SQL" >/dev/null
        if [ "$CITUS_MODE" = 11.3 ]; then
            # Citus 11.3 has no pause function (it came in 12.1): pauses take the rename path
            member_psql "$cn" -q >/dev/null <<'EOF'
DROP FUNCTION IF EXISTS pg_catalog.citus_pause_node_within_txn(integer, boolean, integer);
CREATE OR REPLACE FUNCTION pg_catalog.citus_version() RETURNS text LANGUAGE sql STABLE
AS $$ SELECT 'Citus 11.3 stand-in (citusctl test harness, not Citus; no citus_pause_node_within_txn) on PostgreSQL ' || current_setting('server_version') $$;
EOF
        fi
        start_syncer
    fi
    if [ "$(sql_value "$cn" "SELECT count(*) FROM pg_class WHERE oid = to_regclass('pg_catalog.pg_dist_node')")" = 1 ] &&
        [ "$(sql_value "$cn" 'SELECT count(*) FROM pg_catalog.pg_dist_node')" != 0 ]; then
        log "pg_dist_node already populated: leaving the Citus metadata as it is"
        return 0
    fi
    if [ "$citus" = real ]; then
        # wk3 too (Citus must be installed on a node before citus_add_node), but it is not registered
        for l in "$cn" "$w1" "$w2" "$w3"; do
            member_psql "$l" -q -c 'CREATE EXTENSION IF NOT EXISTS citus' \
                -c "INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, 'postgres', 'password=$CITUS_PGPASSWORD') ON CONFLICT DO NOTHING" >/dev/null
        done
    else
        member_psql "$cn" -q -c "INSERT INTO pg_catalog.pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, 'postgres', 'password=$CITUS_PGPASSWORD') ON CONFLICT DO NOTHING" >/dev/null
    fi
    member_psql "$cn" -q -v cn="$(member_addr "$cn")" -v w1="$(member_addr "$w1")" -v w2="$(member_addr "$w2")" >/dev/null <<'EOF'
SELECT citus_set_coordinator_host(:'cn', 5432);
SELECT citus_add_node(:'w1', 5432, 1, 'primary');
SELECT citus_add_node(:'w2', 5432, 2, 'primary');
EOF
    # one distributed table, so that every worker group holds shards (citus_remove_node of a worker primary
    # then fails as on a real cluster with data; a newly added group stays empty and removable)
    member_psql "$cn" -q -c 'CREATE TABLE IF NOT EXISTS public.citusctl_test_events (id bigint PRIMARY KEY, note text)' >/dev/null
    if [ "$citus" = real ]; then
        member_psql "$cn" -q -c "SELECT create_distributed_table('public.citusctl_test_events', 'id', shard_count => 8)" >/dev/null
    else
        member_psql "$cn" -q -c "SELECT citus_standin.create_distributed_table('public.citusctl_test_events', 8)" >/dev/null
    fi
}

# ---------------------------------------------------------------------------------------------------------------
# VIPs: one haproxy process per cluster, a TCP frontend per VIP on its own loopback address (port 5432).
# Health checks live in two check-only backends per scope (SCOPE_is_primary: GET /primary, SCOPE_is_replica:
# GET /replica, on Patroni's REST API, port 8008); the VIP servers `track` them, so each member is checked twice per
# interval whatever the VIPs do, and re-pointing a VIP (cluster.sh vip ... wrong) only changes what it tracks.
#   RW VIP: every member, tracking SCOPE_is_primary (SCOPE_is_replica when `wrong`)
#   RO VIP: every member tracking SCOPE_is_replica (SCOPE_is_primary when `wrong`), plus every member again as a
#           `backup` server tracking SCOPE_is_primary: the leader takes read-only sessions only when no replica is up
# DIR/vip.state holds the VIPs currently set `wrong` ("SCOPE KIND" lines); `start` resets it.
vip_mode() { # SCOPE KIND -> right|wrong
    if [ -f "$DIR/vip.state" ] && grep -qx "$1 $2" "$DIR/vip.state"; then echo wrong; else echo right; fi
}

write_haproxy_cfg() {
    local s m rwchk rochk f=$DIR/haproxy.cfg.tmp
    {
        cat <<HDR
# generated by tests/cluster/cluster.sh: VIPs of the $FLAVOR test cluster on $NET (see tests/cluster/README.md)
# run: $HAPROXY -f $DIR/haproxy.cfg -db   (backgrounded by cluster.sh, PID in $DIR/pids/haproxy.pid)
global
    maxconn 2000
    # a reload (cluster.sh vip) lets the old process finish its sessions for at most this long
    hard-stop-after 2s
    stats socket $DIR/haproxy.sock mode 600 level admin
    log stderr format iso local0 notice

defaults
    mode tcp
    log global
    option dontlognull
    timeout connect 1s
    timeout client 1h
    timeout server 1h
    timeout check 1s
    # no retries: haproxy would wait min(timeout connect, 1 s) before each retry, so a client that came in while a
    # demoting leader still passed its check (Patroni answers /primary 200 until the demote is done) would hang for
    # seconds; without retries it gets an error at once and its next attempt goes to whatever is up by then
    retries 0
    default-server inter 300ms fall 1 rise 1
HDR
        for s in "${SCOPES[@]}"; do
            printf '\n# ---- %s\n' "$s"
            printf 'backend %s_is_primary\n    option httpchk GET /primary\n    http-check expect status 200\n' "$s"
            for m in $(scope_members "$s"); do
                printf '    server %s %s:5432 check port 8008 inter 300ms fall 1 rise 1\n' "$m" "$(member_addr "$m")"
            done
            printf 'backend %s_is_replica\n    option httpchk GET /replica\n    http-check expect status 200\n' "$s"
            for m in $(scope_members "$s"); do
                printf '    server %s %s:5432 check port 8008 inter 300ms fall 1 rise 1\n' "$m" "$(member_addr "$m")"
            done
            rwchk=primary; [ "$(vip_mode "$s" rw)" = right ] || rwchk=replica
            printf 'listen %s_rw  # %s\n    bind %s:5432\n' "$s" "$(vip_mode "$s" rw)" "$(vip_addr "$s" rw)"
            for m in $(scope_members "$s"); do
                printf '    server %s %s:5432 track %s_is_%s/%s on-marked-down shutdown-sessions\n' \
                    "$m" "$(member_addr "$m")" "$s" "$rwchk" "$m"
            done
            rochk=replica; [ "$(vip_mode "$s" ro)" = right ] || rochk=primary
            printf 'listen %s_ro  # %s\n    bind %s:5432\n' "$s" "$(vip_mode "$s" ro)" "$(vip_addr "$s" ro)"
            for m in $(scope_members "$s"); do
                printf '    server %s %s:5432 track %s_is_%s/%s on-marked-down shutdown-sessions on-marked-up shutdown-backup-sessions\n' \
                    "$m" "$(member_addr "$m")" "$s" "$rochk" "$m"
            done
            for m in $(scope_members "$s"); do
                printf '    server %s_leader %s:5432 backup track %s_is_primary/%s on-marked-down shutdown-sessions\n' \
                    "$m" "$(member_addr "$m")" "$s" "$m"
            done
        done
    } >"$f"
    "$HAPROXY" -c -f "$f" >"$f.check" 2>&1 || { cat "$f.check" >&2; die "haproxy rejects the generated $f"; }
    rm -f "$f.check"
    mv -f "$f" "$DIR/haproxy.cfg"
}

haproxy_cli() { # COMMAND: one command on the stats socket, answer on stdout
    HASOCK=$DIR/haproxy.sock $PY -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(2)
s.connect(os.environ["HASOCK"])
s.sendall((sys.argv[1] + "\n").encode())
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())' "$1"
}

haproxy_checked() { # PID: the haproxy process PID answers on the socket and every health check has run once
    local info
    info=$(haproxy_cli 'show info' 2>/dev/null) || return 1
    grep -qx "Pid: $1" <<<"$info" || return 1
    haproxy_cli 'show stat' 2>/dev/null | $PY -c '
import csv, sys
rows = [r for r in csv.DictReader(l.lstrip("# ") for l in sys.stdin) if r.get("pxname", "").endswith(("_is_primary", "_is_replica"))]
srv = [r for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")]
sys.exit(0 if srv and all(r["check_status"] and not r["check_status"].startswith("INI") for r in srv) else 1)'
}

start_haproxy() { # (re)start haproxy on DIR/haproxy.cfg; a running one hands over gracefully (-sf)
    local old pid sf=() deadline
    write_haproxy_cfg
    old=$(pidfile_pid "$DIR/pids/haproxy.pid")
    if pid_alive "$old" "haproxy -f $DIR/haproxy.cfg"; then
        sf=(-sf "$old")
        echo "$old" >"$DIR/pids/haproxy-old.pid"
    fi
    # haproxy.log gets each event twice: haproxy's own "[WARNING] (PID)" line, and the `log stderr` line with a
    # timestamp (-q would silence both)
    # (9>&-: the vip.lock descriptor must not live on in haproxy)
    setsid "$HAPROXY" -f "$DIR/haproxy.cfg" -db "${sf[@]}" >>"$DIR/haproxy.log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$DIR/pids/haproxy.pid"
    deadline=$(($(date +%s) + 10))
    until haproxy_checked "$pid"; do
        child_alive "$pid" || { tail -n 20 "$DIR/haproxy.log" >&2; die "haproxy exited (log: $DIR/haproxy.log)"; }
        [ "$(date +%s)" -lt "$deadline" ] || { tail -n 20 "$DIR/haproxy.log" >&2; die "haproxy not ready after 10 s"; }
        sleep 0.1
    done
}

stop_haproxy() {
    local f pid
    for f in haproxy haproxy-old; do
        pid=$(pidfile_pid "$DIR/pids/$f.pid")
        if pid_alive "$pid" "haproxy -f $DIR/haproxy.cfg"; then
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone 5 "$pid" haproxy || kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$DIR/pids/$f.pid"
    done
    rm -f "$DIR/haproxy.sock"
}

vip_psql() { # SCOPE KIND [psql args]: through the VIP
    local addr; addr=$(vip_addr "$1" "$2"); shift 2
    PGPASSWORD=$CITUS_PGPASSWORD PGCONNECT_TIMEOUT=2 "$PGBIN/psql" -X -v ON_ERROR_STOP=1 \
        "host=$addr port=5432 user=postgres dbname=postgres sslmode=prefer application_name=citusctl-test-vip" "$@"
}

vip_lands() { # SCOPE KIND -> "t|f ADDRESS" (pg_is_in_recovery, inet_server_addr) of the member behind the VIP
    vip_psql "$1" "$2" -Atq -F ' ' -c 'SELECT pg_is_in_recovery(), host(inet_server_addr())' 2>/dev/null
}

wait_vips() { # TIMEOUT_S: every RW VIP on a writable leader, every RO VIP on a replica
    local deadline=$(($(date +%s) + $1)) s got
    for s in "${SCOPES[@]}"; do
        until got=$(vip_lands "$s" rw) && [ "${got%% *}" = f ]; do
            [ "$(date +%s)" -lt "$deadline" ] || { log "RW VIP $(vip_addr "$s" rw) of $s lands on '${got:-nothing}'"; return 1; }
            sleep 0.1
        done
        until got=$(vip_lands "$s" ro) && [ "${got%% *}" = t ]; do
            [ "$(date +%s)" -lt "$deadline" ] || { log "RO VIP $(vip_addr "$s" ro) of $s lands on '${got:-nothing}'"; return 1; }
            sleep 0.1
        done
    done
}

scope_roles() { # SCOPE -> "LEADER_ADDR REPLICA_ADDRS..." from /cluster (running leader, running/streaming replicas)
    scope_cluster_json "$1" 2>/dev/null | $PY -c '
import json, sys
try:
    c = json.load(sys.stdin)
except Exception:
    sys.exit(0)
ms = c.get("members", [])
lead = [m["host"] for m in ms if m.get("role") == "leader" and m.get("state") == "running"]
reps = [m["host"] for m in ms if m.get("role") != "leader" and m.get("state") in ("streaming", "running")]
print(" ".join((lead[:1] or ["-"]) + reps))' || true
}

cmd_vip() {
    local scope=${POS[0]:-} kind=${POS[1]:-} mode=${POS[2]:-} deadline roles leader reps want got=
    [ -n "$mode" ] || die "usage: cluster.sh vip --dir DIR SCOPE rw|ro right|wrong"
    case $mode in right | wrong) ;; *) die "VIP mode must be right or wrong, not '$mode'" ;; esac
    load_env
    vip_addr "$scope" "$kind" >/dev/null
    # one re-pointing at a time (vip.state + reload)
    exec 9>"$DIR/vip.lock"
    flock -w 30 9 || die "another cluster.sh vip holds $DIR/vip.lock"
    touch "$DIR/vip.state"
    grep -vx "$scope $kind" "$DIR/vip.state" >"$DIR/vip.state.tmp" || true
    [ "$mode" = right ] || echo "$scope $kind" >>"$DIR/vip.state.tmp"
    mv -f "$DIR/vip.state.tmp" "$DIR/vip.state"
    start_haproxy
    # where the VIP must land now: rw right -> leader, rw wrong -> a replica,
    # ro right -> a replica (the leader if none is up), ro wrong -> leader
    deadline=$(($(date +%s) + ${TIMEOUT:-10}))
    while :; do
        roles=$(scope_roles "$scope"); leader=${roles%% *}; reps=${roles#"$leader"}
        case $kind/$mode in
        rw/right | ro/wrong) want=$leader ;;
        rw/wrong) want=$reps ;;
        ro/right) want=${reps:-$leader} ;;
        esac
        got=$(vip_lands "$scope" "$kind" || true)
        if [ -n "$got" ] && [[ " $want " == *" ${got#* } "* ]]; then break; fi
        [ "$(date +%s)" -lt "$deadline" ] ||
            die "$kind VIP $(vip_addr "$scope" "$kind") of $scope lands on '${got:-nothing}', want one of:$want (leader first: $roles)"
        sleep 0.1
    done
    echo "${got#* }"
}

cmd_vip_target() {
    local scope=${POS[0]:-} kind=${POS[1]:-} got
    [ -n "$kind" ] || die "usage: cluster.sh vip-target --dir DIR SCOPE rw|ro"
    load_env
    vip_addr "$scope" "$kind" >/dev/null
    got=$(vip_lands "$scope" "$kind") || die "$kind VIP $(vip_addr "$scope" "$kind") of $scope does not answer"
    echo "${got#* }"
}

# ---------------------------------------------------------------------------------------------------------------
cmd_start() {
    local t0 m citus s k
    t0=$(now)
    set_flavor
    [ -x "$PATRONI" ] || die "$PATRONI not found: run tests/cluster/install.sh"
    mkdir -p "$DIR/pids"
    chmod 755 "$DIR"
    as_postgres test -x "$DIR" || die "user postgres cannot enter $DIR (check the permissions of its parents)"
    [ ${#DIR} -le 80 ] || die "--dir path too long for PostgreSQL's unix sockets (max 80 characters): $DIR"

    if [ -f "$DIR/env" ]; then
        # restart of an existing cluster: keep passwords and data
        # shellcheck disable=SC1091
        . "$DIR/env"
        [ "$CITUSCTL_TEST_FLAVOR" = "$FLAVOR" ] || die "$DIR holds a $CITUSCTL_TEST_FLAVOR cluster"
        [ "$CITUSCTL_TEST_NET" = "$NET" ] || die "$DIR holds a cluster on $CITUSCTL_TEST_NET"
        CITUS_MODE=${CITUSCTL_CITUS_MODE:-$CITUS_MODE}
    else
        CITUS_PGPASSWORD=$(random_password)
        PATRONI_PASSWORD=$(random_password)
        REPL_PASSWORD=$(random_password)
    fi
    # port collisions: something else already on our addresses?
    for m in "${MEMBERS[@]}"; do
        if ! pid_alive "$(patroni_pid "$m")" patroni && curl -s -m 1 -o /dev/null "http://$(member_addr "$m"):8008/"; then
            die "something already listens on $(member_addr "$m"):8008 (another cluster on --net $NET?)"
        fi
    done
    if ! pid_alive "$(pidfile_pid "$DIR/pids/etcd.pid")" etcd && timeout 1 bash -c "exec 3<>/dev/tcp/$NET.250/2379" 2>/dev/null; then
        die "something already listens on $NET.250:2379, etcd's address (another cluster on --net $NET?)"
    fi
    if ! pid_alive "$(pidfile_pid "$DIR/pids/haproxy.pid")" "haproxy -f $DIR/haproxy.cfg"; then
        for s in "${SCOPES[@]}"; do
            for k in rw ro; do
                if timeout 1 bash -c "exec 3<>/dev/tcp/$(vip_addr "$s" "$k")/5432" 2>/dev/null; then
                    die "something already listens on $(vip_addr "$s" "$k"):5432 (another cluster on --net $NET?)"
                fi
            done
        done
    fi
    case $CITUS_MODE in 13 | 11.3) ;; *) die "--citus must be 13 or 11.3, not '$CITUS_MODE'" ;; esac
    if [ -f /usr/share/postgresql/15/extension/citus.control ]; then
        citus=real; SHARED_PRELOAD=citus
        CITUS_MODE=$(sed -n "s/^default_version = '\([0-9]*\.[0-9]*\).*/\1/p" /usr/share/postgresql/15/extension/citus.control)
    else
        citus=standin; SHARED_PRELOAD=
    fi
    write_env_and_inventory "$citus"
    for m in "${MEMBERS[@]}"; do write_member_config "$m"; done

    start_etcd
    # haproxy first: its health checks settle while Patroni bootstraps (all VIPs `right` again after a start)
    rm -f "$DIR/vip.state"
    start_haproxy
    # the first member of each scope bootstraps it (deterministic leaders pg1/pg3/pg5 on a fresh cluster) ...
    for m in pg1 pg3 pg5 pg7; do start_patroni "$m"; done
    for m in pg1 pg3 pg5 pg7; do wait_member_running "$m" "$START_TIMEOUT"; done
    # ... then the replicas clone from them
    for m in pg2 pg4 pg6 pg8; do start_patroni "$m"; done
    wait_healthy "$START_TIMEOUT" || die "cluster did not become healthy (logs above; stop it with: $0 stop --dir $DIR)"
    setup_citus "$citus"
    wait_vips 30 || { tail -n 20 "$DIR/haproxy.log" >&2; die "VIPs not on their roles (stop the cluster with: $0 stop --dir $DIR)"; }

    echo "cluster $FLAVOR ($citus Citus $CITUS_MODE) up in $(elapsed "$t0") s, dir $DIR"
    print_status
    echo "  VIPs (haproxy, $DIR/haproxy.cfg): cn rw $(vip_addr cn rw) ro $(vip_addr cn ro), wk1 rw $(vip_addr wk1 rw) ro $(vip_addr wk1 ro), wk2 rw $(vip_addr wk2 rw) ro $(vip_addr wk2 ro), wk3 rw $(vip_addr wk3 rw) ro $(vip_addr wk3 ro)"
    echo "  source $DIR/env; inventory $DIR/inventory.yml (with VIPs: $DIR/inventory-vip.yml; with wk3: $DIR/inventory-wk3.yml)"
    echo "  \$CITUSCTL_PATRONICTL -c $DIR/patronictl.yml list cn wk1 wk2 wk3"
}

cmd_stop() {
    local t0 m pid pids=()
    t0=$(now)
    [ -d "$DIR" ] || return 0
    stop_syncer
    stop_haproxy
    for m in "${MEMBERS[@]}"; do
        pid=$(patroni_pid "$m")
        if pid_alive "$pid" patroni; then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
    done
    for pid in "${pids[@]}"; do
        if ! wait_gone 30 "$pid" patroni; then
            log "patroni $pid still alive after 30 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for m in "${MEMBERS[@]}"; do
        pid=$(postmaster_pid "$m")
        if pid_alive "$pid" postgres; then
            log "postmaster $pid of $m survived its Patroni: immediate shutdown"
            kill -QUIT "$pid" 2>/dev/null || true
            wait_gone 10 "$pid" postgres || kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$DIR/pids/$m.pid"
    done
    pid=$(pidfile_pid "$DIR/pids/etcd.pid")
    if pid_alive "$pid" etcd; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone 10 "$pid" etcd || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/pids/etcd.pid"
    echo "stopped in $(elapsed "$t0") s"
}

cmd_kill_patroni() {
    local m=${POS[0]:?MEMBER required} pid ppid
    load_env
    member_scope "$m" >/dev/null
    pid=$(patroni_pid "$m")
    ppid=$(postmaster_pid "$m")
    if [ $HARD = 1 ]; then
        # crash: Patroni gone without releasing the leader key, PostgreSQL killed (failover after ttl)
        pid_alive "$pid" patroni && kill -KILL "$pid" 2>/dev/null || true
        pid_alive "$ppid" postgres && kill -QUIT "$ppid" 2>/dev/null || true
    else
        # clean stop: Patroni shuts PostgreSQL down and releases the leader key (a replica takes over at once)
        pid_alive "$pid" patroni && kill -TERM "$pid" 2>/dev/null || true
    fi
    wait_gone 30 "$pid" patroni || { kill -KILL "$pid" 2>/dev/null || true; }
    wait_gone 15 "$ppid" postgres || { kill -KILL "$ppid" 2>/dev/null || true; }
    rm -f "$DIR/pids/$m.pid"
}

cmd_start_member() {
    local m=${POS[0]:?MEMBER required}
    load_env
    member_scope "$m" >/dev/null
    start_patroni "$m"
    [ $NOWAIT = 1 ] || wait_member_running "$m" "${TIMEOUT:-60}"
}

cmd_switchover() {
    local scope=${POS[0]:?SCOPE required} leader body code deadline new=
    load_env
    scope_members "$scope" >/dev/null
    leader=$(scope_leader "$scope")
    [ -n "$leader" ] || die "scope $scope has no running leader"
    if [ -n "$CANDIDATE" ]; then
        body="{\"leader\": \"$leader\", \"candidate\": \"$CANDIDATE\"}"
    else
        body="{\"leader\": \"$leader\"}"
    fi
    # Patroni may answer 503 "Switchover failed" or 412 "no good candidates" when a member that
    # just rejoined is not yet a usable candidate in its eyes (seen with 3.0.2): ask again (up to
    # 10 times, 2 s apart) while the leader has not changed.
    local attempt
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        code=$(curl -s -m 40 -o "$DIR/switchover.out" -w '%{http_code}' -u "patroni:$PATRONI_PASSWORD" \
            -H 'Content-Type: application/json' -d "$body" "http://$(member_addr "$leader"):8008/switchover" || true)
        echo "POST /switchover $body -> HTTP $code: $(cat "$DIR/switchover.out" 2>/dev/null)"
        case $code in 200 | 503 | 412) ;; *) die "switchover refused" ;; esac
        if [ "$code" = 412 ] && ! grep -q 'no good candidates' "$DIR/switchover.out"; then die "switchover refused"; fi
        deadline=$(($(date +%s) + 10))
        [ "$code" = 412 ] && deadline=$(date +%s)
        while :; do
            new=$(scope_leader "$scope")
            [ -n "$new" ] && [ "$new" != "$leader" ] && break 2
            [ "$(date +%s)" -lt "$deadline" ] || break
            sleep 0.2
        done
        [ "$code" = 503 ] || [ "$code" = 412 ] || break
        [ "$attempt" -lt 10 ] || die "switchover refused: $(cat "$DIR/switchover.out")"
        log "leader of $scope unchanged after HTTP $code: asking again ($attempt/10)"
        sleep 2
    done
    deadline=$(($(date +%s) + ${TIMEOUT:-60}))
    while :; do
        new=$(scope_leader "$scope")
        if [ -n "$new" ] && [ "$new" != "$leader" ] && wait_writable "$new" 1; then break; fi
        [ "$(date +%s)" -lt "$deadline" ] || die "no writable new leader in $scope"
        sleep 0.2
    done
    echo "$scope: new leader $new ($(member_addr "$new")) is writable"
}

case $CMD in
start) cmd_start ;;
stop) cmd_stop ;;
status) load_env; print_status ;;
wait-healthy) load_env; wait_healthy "${TIMEOUT:-$START_TIMEOUT}" ;;
psql)
    load_env
    [ ${#POS[@]} -ge 1 ] || die "psql --dir DIR MEMBER [psql args]"
    m=${POS[0]}
    member_psql "$m" "${POS[@]:1}" ;;
kill-patroni) cmd_kill_patroni ;;
# etcd down and back (the DCS outage of the fault suite); its data stays
stop-etcd)
    load_env
    pid=$(pidfile_pid "$DIR/pids/etcd.pid")
    pid_alive "$pid" etcd && kill -KILL "$pid" 2>/dev/null || true
    wait_gone 10 "$pid" etcd || die "etcd did not stop"
    rm -f "$DIR/pids/etcd.pid" ;;
start-etcd) load_env; start_etcd ;;
start-member) cmd_start_member ;;
switchover) cmd_switchover ;;
vip) cmd_vip ;;
vip-target) cmd_vip_target ;;
*) die "unknown command '$CMD'" ;;
esac
