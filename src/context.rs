//! What every cluster command starts from: the validated inventory and its clients.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::inventory;
use crate::patroni::PatroniClient;
use crate::pg::PgParams;
use crate::topology::Topology;

pub struct Context {
    pub inventory_path: PathBuf,
    pub topo: Topology,
}

impl Context {
    pub fn load(explicit: Option<&Path>) -> Result<Context, inventory::InventoryError> {
        let path = inventory::locate(explicit)?;
        let topo = inventory::load(&path)?;
        Ok(Context {
            inventory_path: path,
            topo,
        })
    }

    /// A client for read-only calls: credentials are sent when they resolve, else not needed.
    pub fn patroni_reader(&self) -> anyhow::Result<PatroniClient> {
        let password = self
            .topo
            .patroni
            .password
            .as_ref()
            .and_then(|s| s.resolve().ok());
        Ok(PatroniClient::new(&self.topo.patroni, password)?)
    }

    /// A client for unsafe calls: the password must resolve.
    pub fn patroni_writer(&self) -> anyhow::Result<PatroniClient> {
        let password = match &self.topo.patroni.password {
            Some(s) => Some(s.resolve().context("Patroni REST API password")?),
            None => None,
        };
        Ok(PatroniClient::new(&self.topo.patroni, password)?)
    }

    /// The group with this scope, or a usage error naming the known ones.
    pub fn group(&self, scope: &str) -> Result<&crate::topology::Group, crate::UsageError> {
        self.topo.group_by_scope(scope).ok_or_else(|| {
            crate::UsageError(format!(
                "no group with scope `{scope}` in {} (known: {})",
                self.inventory_path.display(),
                self.topo.scopes().join(", ")
            ))
        })
    }

    /// Every scope named must exist.
    pub fn check_scopes(&self, scopes: &[String]) -> Result<(), crate::UsageError> {
        scopes.iter().try_for_each(|s| self.group(s).map(|_| ()))
    }

    pub fn pg_params(&self) -> anyhow::Result<PgParams> {
        PgParams::resolve(&self.topo.postgres).context("PostgreSQL connection settings")
    }
}
