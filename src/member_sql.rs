//! What a PostgreSQL server says about itself: is it writable, and which cluster is it
//! (`system_identifier`, shared by a primary and its physical replicas, distinct per group).

use crate::pg::{self, PgError, PgParams};
use crate::topology::Endpoint;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landing {
    pub in_recovery: bool,
    pub system_identifier: String,
    /// `inet_server_addr()`: the member a proxy VIP forwarded to (the VIP itself for an IP VIP).
    pub server_addr: Option<String>,
}

pub async fn landing(params: &PgParams, ep: &Endpoint, dbname: &str) -> Result<Landing, PgError> {
    let c = pg::connect(params, ep, dbname).await?;
    let row = pg::within(
        pg::READ_LIMIT,
        &format!("PostgreSQL at {ep}"),
        c.query_one(
            "SELECT pg_catalog.pg_is_in_recovery(), \
                    (SELECT system_identifier::text FROM pg_catalog.pg_control_system()), \
                    host(inet_server_addr())",
            &[],
        ),
    )
    .await?;
    Ok(Landing {
        in_recovery: row.get(0),
        system_identifier: row.get(1),
        server_addr: row.get(2),
    })
}

/// `pg_is_in_recovery()` of a member (to make sure a new primary row points at a writable one).
pub async fn is_writable(params: &PgParams, ep: &Endpoint, dbname: &str) -> Result<bool, PgError> {
    Ok(!landing(params, ep, dbname).await?.in_recovery)
}

/// What `check` and `version` read from every member, in one query (first inventory database).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemberFacts {
    pub in_recovery: bool,
    pub system_identifier: String,
    /// `server_version_num`, e.g. 150018.
    pub server_version_num: i32,
    /// `pg_extension.extversion` of citus in this database (None: not created here).
    pub citus_extversion: Option<String>,
    /// The citus extension's `default_version` on this host's disk (None: not installed here).
    pub citus_available: Option<String>,
    /// `citus_version()` when the extension exists (the loaded library's version).
    pub citus_library: Option<String>,
    /// The settings `check` compares: a few core ones and every `citus.*` the server knows.
    pub settings: std::collections::BTreeMap<String, String>,
    /// `pg_stat_replication`: (application_name, state) of each WAL sender.
    pub senders: Vec<(String, String)>,
    /// `pg_stat_wal_receiver.status` (None: no WAL receiver).
    pub receiver: Option<String>,
    /// Prepared transactions older than a minute: (gid, database, age in seconds).
    pub old_prepared: Vec<(String, String, f64)>,
    /// Sessions of Patroni's own Citus mode (`application_name = 'Patroni citus'`, Patroni's
    /// named connection of its `citus:` handler; 3.0 names it just `Patroni`): (database, client).
    pub patroni_citus: Vec<(String, String)>,
}

/// Citus settings read by name too: where the Citus library is not loaded, a `citus.*` set in
/// the configuration is a placeholder that `pg_settings` does not list, but the server holds it.
pub const CITUS_PLACEHOLDERS: &[&str] = &[
    "citus.node_connection_timeout",
    "citus.max_shared_pool_size",
    "citus.max_adaptive_executor_pool_size",
    "citus.shard_count",
    "citus.enable_ddl_propagation",
];

/// The settings compared across members (plus every `citus.*`).
pub const COMPARED_SETTINGS: &[&str] = &[
    "shared_preload_libraries",
    "max_prepared_transactions",
    "wal_level",
    "max_worker_processes",
    "max_connections",
];

const FACTS_SQL: &str = "\
SELECT pg_catalog.pg_is_in_recovery(),
  (SELECT system_identifier::text FROM pg_catalog.pg_control_system()),
  pg_catalog.current_setting('server_version_num')::int,
  (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'citus'),
  (SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'citus'),
  (SELECT coalesce(json_object_agg(name, setting), '{}')::text FROM (
     SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY($1) OR name LIKE 'citus.%'
     UNION ALL
     SELECT n, pg_catalog.current_setting(n, true) FROM pg_catalog.unnest($2::text[]) n
      WHERE pg_catalog.current_setting(n, true) IS NOT NULL
        AND n NOT IN (SELECT name FROM pg_catalog.pg_settings)) s),
  (SELECT coalesce(json_agg(json_build_array(coalesce(application_name, ''), coalesce(state, ''))), '[]')::text
     FROM pg_catalog.pg_stat_replication),
  (SELECT status FROM pg_catalog.pg_stat_wal_receiver),
  (SELECT coalesce(json_agg(json_build_array(gid, database,
            extract(epoch FROM now() - prepared)::float8)), '[]')::text
     FROM pg_catalog.pg_prepared_xacts WHERE prepared < now() - interval '1 minute'),
  (SELECT coalesce(json_agg(json_build_array(coalesce(datname, ''), coalesce(host(client_addr), 'local'))), '[]')::text
     FROM pg_catalog.pg_stat_activity WHERE application_name = 'Patroni citus')";

pub async fn facts(params: &PgParams, ep: &Endpoint, dbname: &str) -> Result<MemberFacts, PgError> {
    let what = format!("PostgreSQL at {ep}");
    let c = pg::connect(params, ep, dbname).await?;
    let names: Vec<String> = COMPARED_SETTINGS.iter().map(|s| (*s).to_owned()).collect();
    let row = pg::within(
        pg::READ_LIMIT,
        &what,
        c.query_one(FACTS_SQL, &[&names, &CITUS_PLACEHOLDERS]),
    )
    .await?;
    let json = |i: usize| -> serde_json::Value {
        serde_json::from_str(row.get::<_, &str>(i)).unwrap_or_default()
    };
    let settings = json(5)
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let pairs = |v: serde_json::Value| -> Vec<Vec<serde_json::Value>> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_array().cloned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let s = |p: &[serde_json::Value], i: usize| {
        p.get(i)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let citus_extversion: Option<String> = row.get(3);
    // The library answers only where the extension exists; a library that cannot load (not
    // preloaded, another version) is reported as its error text, never guessed.
    let citus_library = if citus_extversion.is_some() {
        Some(
            match pg::within(
                pg::READ_LIMIT,
                &what,
                c.query_one("SELECT pg_catalog.citus_version()", &[]),
            )
            .await
            {
                Ok(r) => r.get::<_, String>(0),
                Err(e) => format!("error: {e}"),
            },
        )
    } else {
        None
    };
    Ok(MemberFacts {
        in_recovery: row.get(0),
        system_identifier: row.get(1),
        server_version_num: row.get(2),
        citus_extversion,
        citus_available: row.get(4),
        citus_library,
        settings,
        senders: pairs(json(6)).iter().map(|p| (s(p, 0), s(p, 1))).collect(),
        receiver: row.get(7),
        old_prepared: pairs(json(8))
            .iter()
            .map(|p| {
                let age = p.get(2).and_then(serde_json::Value::as_f64);
                (s(p, 0), s(p, 1), age.unwrap_or_default())
            })
            .collect(),
        patroni_citus: pairs(json(9)).iter().map(|p| (s(p, 0), s(p, 1))).collect(),
    })
}
