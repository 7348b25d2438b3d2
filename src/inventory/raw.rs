//! The inventory file as written: serde structs that mirror the YAML one to one.
//!
//! Nothing here is checked beyond YAML types and unknown keys; `validate` turns this into a
//! [`crate::topology::Topology`]. Every field keeps its source position (`Spanned`) so that a
//! semantic error can name the line and column of the value at fault.

use serde::Deserialize;
use serde_saphyr::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    pub name: S<String>,
    pub databases: Option<S<OneOrMany>>,
    pub postgres: Option<RawPostgres>,
    pub patroni: Option<RawPatroni>,
    pub coordinator: S<RawGroup>,
    #[serde(default)]
    pub workers: Vec<S<RawGroup>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    pub user: Option<S<String>>,
    pub password: Option<S<String>>,
    pub password_env: Option<S<String>>,
    pub password_file: Option<S<String>>,
    pub sslmode: Option<S<String>>,
    pub sslrootcert: Option<S<String>>,
    pub connect_timeout: Option<S<DurationText>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPatroni {
    pub port: Option<S<u16>>,
    pub scheme: Option<S<String>>,
    pub username: Option<S<String>>,
    pub password: Option<S<String>>,
    pub password_env: Option<S<String>>,
    pub password_file: Option<S<String>>,
    pub timeout: Option<S<DurationText>>,
    pub cacert: Option<S<String>>,
    pub insecure: Option<bool>,
}

/// A duration as `2s`, `500ms`, `1m` or a bare number of seconds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DurationText {
    Seconds(f64),
    Text(String),
}

/// The coordinator or one worker group (the coordinator has no `group` key: it is 0).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub scope: S<String>,
    pub group: Option<S<i64>>,
    pub vip: Option<S<RawVip>>,
    pub members: S<Vec<S<RawMember>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVip {
    pub rw: S<String>,
    pub ro: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    pub name: S<String>,
    pub host: S<String>,
    pub port: Option<S<u16>>,
    pub api: Option<S<String>>,
}
