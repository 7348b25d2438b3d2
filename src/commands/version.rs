//! `citusctl version`: citusctl's own version, and every member's Patroni, PostgreSQL and Citus
//! versions. Changes nothing. Without an inventory it shows citusctl's line only.

use serde::Serialize;

use crate::context::Context;
use crate::exit::Exit;
use crate::output::{self, Format, Render, Table, tsv_field};

/// Show citusctl's version and every member's Patroni, PostgreSQL and Citus versions.
///
/// Patroni's from its REST API (GET /patroni), PostgreSQL's and Citus's from the member
/// itself (citus_version() where the extension exists). Without an inventory, only
/// citusctl's own version.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionReport {
    pub format_version: u32,
    pub citusctl: String,
    pub cluster: Option<String>,
    pub members: Vec<MemberVersions>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberVersions {
    pub scope: String,
    pub member: String,
    pub patroni: Option<String>,
    pub postgresql: Option<String>,
    /// The loaded Citus library (`citus_version()`), else the installed extension's version.
    pub citus: Option<String>,
    pub errors: Vec<String>,
}

pub async fn run(ctx: Option<Context>, args: Args) -> anyhow::Result<Exit> {
    let mut report = VersionReport {
        format_version: 1,
        citusctl: crate::version::version_line(),
        cluster: None,
        members: vec![],
    };
    if let Some(ctx) = ctx {
        let client = ctx.patroni_reader()?;
        let pg = ctx.pg_params()?;
        let (patroni, sql) = tokio::join!(
            crate::ops::doctor::patroni_statuses(&ctx.topo, &client),
            crate::ops::doctor::member_facts(&ctx.topo, &pg),
        );
        report.cluster = Some(ctx.topo.name.clone());
        for ((scope, member, p), s) in patroni.into_iter().zip(sql) {
            let mut errors = Vec::new();
            let p = p.map_err(|e| errors.push(format!("REST API: {e}"))).ok();
            let s = s.sql.map_err(|e| errors.push(e)).ok();
            let pg_num = s
                .as_ref()
                .map(|f| f.server_version_num as u32)
                .or_else(|| p.as_ref().and_then(|p| p.server_version));
            report.members.push(MemberVersions {
                scope,
                member,
                patroni: p.and_then(|p| p.patroni.and_then(|x| x.version)),
                postgresql: pg_num.map(|n| format!("{}.{}", n / 10000, n % 10000)),
                citus: s.and_then(|f| match (f.citus_library, f.citus_extversion) {
                    (Some(l), _) if !l.starts_with("error:") => {
                        Some(crate::doctor::short_citus_version(&l).to_owned())
                    }
                    (_, Some(e)) => Some(format!("extension {e}")),
                    (None, None) => f.citus_available.map(|a| format!("{a} (not created)")),
                    (Some(l), None) => Some(l),
                }),
                errors,
            });
        }
    }
    output::print(&output::render(&report, args.format))?;
    Ok(Exit::Ok)
}

impl Render for VersionReport {
    fn pretty(&self) -> String {
        let mut out = format!("{}\n", self.citusctl);
        let Some(cluster) = &self.cluster else {
            return out;
        };
        let mut t = Table::new(
            format!("Citus cluster: {cluster}"),
            &["Scope", "Member", "Patroni", "PostgreSQL", "Citus"],
        );
        let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
        for m in &self.members {
            t.row(vec![
                m.scope.clone(),
                m.member.clone(),
                dash(&m.patroni),
                dash(&m.postgresql),
                dash(&m.citus),
            ]);
        }
        out.push_str(&t.render());
        for m in &self.members {
            for e in &m.errors {
                out.push_str(&format!("{}: {e}\n", m.member));
            }
        }
        out
    }

    fn tsv(&self) -> String {
        let mut out = String::from("Scope\tMember\tPatroni\tPostgreSQL\tCitus\n");
        out.push_str(&format!("\tcitusctl\t\t\t{}\n", tsv_field(&self.citusctl)));
        let dash = |s: &Option<String>| tsv_field(s.as_deref().unwrap_or("-"));
        for m in &self.members {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                m.scope,
                m.member,
                dash(&m.patroni),
                dash(&m.postgresql),
                dash(&m.citus)
            ));
        }
        out
    }
}
