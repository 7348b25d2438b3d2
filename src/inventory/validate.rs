//! Raw inventory -> [`Topology`]: every semantic check, each error pointing at its value.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::{Location, Spanned};
use url::Url;

use super::InventoryError;
use super::raw::{DurationText, OneOrMany, RawGroup, RawInventory, RawMember, RawVip};
use crate::secret::{Secret, SecretSource, readable_by_others};
use crate::topology::{
    COORDINATOR_GROUP, Endpoint, Group, GroupKind, Member, PatroniSettings, PostgresSettings,
    SslMode, Topology, Vips,
};

const DEFAULT_PG_PORT: u16 = 5432;
const DEFAULT_API_PORT: u16 = 8008;
const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

struct Ctx<'a> {
    file: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, at: &Location, field: &str, message: impl Into<String>) -> InventoryError {
        InventoryError {
            file: self.file.to_owned(),
            line: at.line(),
            column: at.column(),
            field: field.to_owned(),
            message: message.into(),
            hint: None,
        }
    }

    fn err_hint(
        &self,
        at: &Location,
        field: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> InventoryError {
        InventoryError {
            hint: Some(hint.into()),
            ..self.err(at, field, message)
        }
    }
}

pub fn validate(file: &Path, mut raw: RawInventory) -> Result<Topology, InventoryError> {
    let cx = Ctx { file };

    let name = raw.name.value.trim().to_owned();
    if name.is_empty() {
        return Err(cx.err(&raw.name.referenced, "name", "must not be empty"));
    }

    let databases = match raw.databases.take() {
        None => vec!["postgres".to_owned()],
        Some(d) => {
            let list = match d.value {
                OneOrMany::One(s) => vec![s],
                OneOrMany::Many(v) => v,
            };
            if list.is_empty() {
                return Err(cx.err(
                    &d.referenced,
                    "databases",
                    "must list at least one database",
                ));
            }
            let mut seen = HashSet::new();
            for db in &list {
                if db.is_empty() {
                    return Err(cx.err(&d.referenced, "databases", "a database name is empty"));
                }
                if !seen.insert(db) {
                    return Err(cx.err(
                        &d.referenced,
                        "databases",
                        format!("`{db}` is listed twice"),
                    ));
                }
            }
            list
        }
    };

    let pg = raw.postgres.take().unwrap_or_default();
    let postgres = PostgresSettings {
        user: pg.user.map(|u| u.value),
        password: secret_source(
            &cx,
            "postgres",
            pg.password,
            pg.password_env,
            pg.password_file,
        )?,
        sslmode: match pg.sslmode {
            None => None,
            Some(m) => Some(SslMode::parse(&m.value).ok_or_else(|| {
                cx.err(
                    &m.referenced,
                    "postgres.sslmode",
                    format!(
                        "`{}` is not an sslmode (expected disable, allow, prefer, require, \
                         verify-ca or verify-full)",
                        m.value
                    ),
                )
            })?),
        },
        sslrootcert: pg.sslrootcert.map(|p| PathBuf::from(p.value)),
        connect_timeout: match pg.connect_timeout {
            None => None,
            raw => Some(duration(
                &cx,
                "postgres.connect_timeout",
                raw,
                DEFAULT_PG_CONNECT_TIMEOUT,
            )?),
        },
    };

    let pt = raw.patroni.take().unwrap_or_default();
    let api_port = pt
        .port
        .as_ref()
        .map(|p| p.value)
        .unwrap_or(DEFAULT_API_PORT);
    if let Some(p) = &pt.port
        && p.value == 0
    {
        return Err(cx.err(&p.referenced, "patroni.port", "must be between 1 and 65535"));
    }
    let scheme = match pt.scheme {
        None => "http".to_owned(),
        Some(s) if s.value == "http" || s.value == "https" => s.value,
        Some(s) => {
            return Err(cx.err(
                &s.referenced,
                "patroni.scheme",
                format!("`{}` is not a scheme (expected http or https)", s.value),
            ));
        }
    };
    let patroni = PatroniSettings {
        username: pt.username.map(|u| u.value),
        password: secret_source(
            &cx,
            "patroni",
            pt.password,
            pt.password_env,
            pt.password_file,
        )?,
        timeout: duration(&cx, "patroni.timeout", pt.timeout, DEFAULT_API_TIMEOUT)?,
        cacert: pt.cacert.map(|p| PathBuf::from(p.value)),
        insecure: pt.insecure.unwrap_or(false),
    };

    let mut groups = Vec::with_capacity(1 + raw.workers.len());
    let defaults = MemberDefaults {
        scheme: &scheme,
        api_port,
    };
    groups.push(group(
        &cx,
        "coordinator",
        &raw.coordinator,
        GroupKind::Coordinator,
        &defaults,
    )?);
    for (i, w) in raw.workers.iter().enumerate() {
        groups.push(group(
            &cx,
            &format!("workers[{i}]"),
            w,
            GroupKind::Worker,
            &defaults,
        )?);
    }
    cross_checks(&cx, &raw, &groups)?;

    Ok(Topology {
        name,
        databases,
        postgres,
        patroni,
        groups,
    })
}

struct MemberDefaults<'a> {
    scheme: &'a str,
    api_port: u16,
}

fn group(
    cx: &Ctx,
    path: &str,
    raw: &Spanned<RawGroup>,
    kind: GroupKind,
    defaults: &MemberDefaults,
) -> Result<Group, InventoryError> {
    let g = &raw.value;
    let scope = g.scope.value.trim().to_owned();
    if scope.is_empty() {
        return Err(cx.err(
            &g.scope.referenced,
            &format!("{path}.scope"),
            "must not be empty",
        ));
    }
    if !scope
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(cx.err(
            &g.scope.referenced,
            &format!("{path}.scope"),
            format!("`{scope}` is not a Patroni scope name (letters, digits, '-', '_', '.')"),
        ));
    }
    let group_id = match (kind, &g.group) {
        (GroupKind::Coordinator, None) => COORDINATOR_GROUP,
        (GroupKind::Coordinator, Some(id)) if id.value == 0 => COORDINATOR_GROUP,
        (GroupKind::Coordinator, Some(id)) => {
            return Err(cx.err(
                &id.referenced,
                &format!("{path}.group"),
                format!("the coordinator is always Citus group 0, not {}", id.value),
            ));
        }
        (GroupKind::Worker, None) => {
            return Err(cx.err_hint(
                &raw.referenced,
                &format!("{path}.group"),
                format!("worker `{scope}` has no `group` (its Citus groupid)"),
                "add e.g. `group: 1`; it must match pg_dist_node.groupid",
            ));
        }
        (GroupKind::Worker, Some(id)) if id.value == 0 => {
            return Err(cx.err(
                &id.referenced,
                &format!("{path}.group"),
                "group 0 is the coordinator's; a worker group needs an id of 1 or more",
            ));
        }
        (GroupKind::Worker, Some(id)) if id.value < 0 || id.value > i64::from(i32::MAX) => {
            return Err(cx.err(
                &id.referenced,
                &format!("{path}.group"),
                format!("{} is not a Citus group id (1 to {})", id.value, i32::MAX),
            ));
        }
        (GroupKind::Worker, Some(id)) => id.value as i32,
    };

    let vip = match &g.vip {
        None => None,
        Some(v) => Some(vips(cx, &format!("{path}.vip"), v)?),
    };

    if g.members.value.is_empty() {
        return Err(cx.err(
            &g.members.referenced,
            &format!("{path}.members"),
            format!("group `{scope}` has no members"),
        ));
    }
    let mut members = Vec::with_capacity(g.members.value.len());
    for (i, m) in g.members.value.iter().enumerate() {
        members.push(member(
            cx,
            &format!("{path}.members[{i}]"),
            &m.value,
            defaults,
        )?);
    }
    Ok(Group {
        scope,
        group_id,
        kind,
        vip,
        members,
    })
}

fn vips(cx: &Ctx, path: &str, raw: &Spanned<RawVip>) -> Result<Vips, InventoryError> {
    let rw = endpoint(cx, &format!("{path}.rw"), &raw.value.rw)?;
    let ro = match &raw.value.ro {
        None => None,
        Some(ro_raw) => {
            let ro = endpoint(cx, &format!("{path}.ro"), ro_raw)?;
            if ro == rw {
                return Err(cx.err_hint(
                    &ro_raw.referenced,
                    &format!("{path}.ro"),
                    format!("the read-only VIP {ro} equals the read-write VIP"),
                    "Citus keys pg_dist_node on (nodename, nodeport): the RW and RO VIPs must \
                     differ in address or port",
                ));
            }
            Some(ro)
        }
    };
    Ok(Vips { rw, ro })
}

/// `host`, `host:port`, or `[v6]:port`.
fn endpoint(cx: &Ctx, path: &str, raw: &Spanned<String>) -> Result<Endpoint, InventoryError> {
    let s = raw.value.trim();
    let bad = |why: &str| {
        cx.err(
            &raw.referenced,
            path,
            format!("`{s}` is not an address: {why}"),
        )
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or_else(|| bad("missing `]`"))?;
        match tail.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if tail.is_empty() => (h, None),
            None => return Err(bad("unexpected text after `]`")),
        }
    } else if s.matches(':').count() == 1 {
        let (h, p) = s.split_once(':').unwrap_or((s, ""));
        (h, Some(p))
    } else {
        (s, None)
    };
    check_host(host).map_err(|why| bad(&why))?;
    let port = match port {
        None => DEFAULT_PG_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
    };
    Ok(Endpoint::new(host, port))
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '@' || c == ',')
    {
        return Err("a host name cannot contain spaces, '/', '@' or ','".into());
    }
    Ok(())
}

fn member(
    cx: &Ctx,
    path: &str,
    m: &RawMember,
    defaults: &MemberDefaults,
) -> Result<Member, InventoryError> {
    let name = m.name.value.trim().to_owned();
    if name.is_empty() {
        return Err(cx.err(
            &m.name.referenced,
            &format!("{path}.name"),
            "must not be empty",
        ));
    }
    let host = m.host.value.trim().to_owned();
    check_host(&host).map_err(|why| {
        cx.err(
            &m.host.referenced,
            &format!("{path}.host"),
            format!("`{host}`: {why}"),
        )
    })?;
    let port = match &m.port {
        None => DEFAULT_PG_PORT,
        Some(p) if p.value == 0 => {
            return Err(cx.err(
                &p.referenced,
                &format!("{path}.port"),
                "must be between 1 and 65535",
            ));
        }
        Some(p) => p.value,
    };
    let api = match &m.api {
        Some(a) => parse_api_url(&a.value).map_err(|why| {
            cx.err(
                &a.referenced,
                &format!("{path}.api"),
                format!("`{}`: {why}", a.value),
            )
        })?,
        None => {
            let host_part = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            parse_api_url(&format!(
                "{}://{}:{}",
                defaults.scheme, host_part, defaults.api_port
            ))
            .map_err(|why| cx.err(&m.host.referenced, &format!("{path}.host"), why))?
        }
    };
    Ok(Member {
        name,
        pg: Endpoint::new(host, port),
        api,
    })
}

fn parse_api_url(s: &str) -> Result<Url, String> {
    let mut url = Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "the scheme must be http or https, not {}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put credentials in patroni.username / password_env, not in the URL".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query or fragment".into());
    }
    // Patroni's api_url in /cluster ends in /patroni; accept that and keep the base.
    let path = url
        .path()
        .trim_end_matches('/')
        .trim_end_matches("/patroni")
        .to_owned();
    url.set_path(&format!("{path}/"));
    Ok(url)
}

fn secret_source(
    cx: &Ctx,
    section: &str,
    inline: Option<Spanned<String>>,
    env: Option<Spanned<String>>,
    file: Option<Spanned<String>>,
) -> Result<Option<SecretSource>, InventoryError> {
    let given = [inline.is_some(), env.is_some(), file.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if given > 1 {
        let at = inline
            .as_ref()
            .map(|s| s.referenced)
            .or(env.as_ref().map(|s| s.referenced))
            .or(file.as_ref().map(|s| s.referenced))
            .unwrap_or(Location::UNKNOWN);
        return Err(cx.err(
            &at,
            &format!("{section}.password"),
            "give only one of password, password_env and password_file",
        ));
    }
    if let Some(p) = inline {
        if readable_by_others(cx.file) {
            return Err(cx.err_hint(
                &p.referenced,
                &format!("{section}.password"),
                "an inline password in a file that others can read is refused",
                format!(
                    "chmod 600 {} or use {section}.password_env / password_file",
                    cx.file.display()
                ),
            ));
        }
        return Ok(Some(SecretSource::Inline(Secret::new(p.value))));
    }
    if let Some(e) = env {
        let name = e.value.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(cx.err(
                &e.referenced,
                &format!("{section}.password_env"),
                format!("`{name}` is not an environment variable name"),
            ));
        }
        return Ok(Some(SecretSource::Env(name.to_owned())));
    }
    if let Some(f) = file {
        if f.value.trim().is_empty() {
            return Err(cx.err(
                &f.referenced,
                &format!("{section}.password_file"),
                "must not be empty",
            ));
        }
        return Ok(Some(SecretSource::File(PathBuf::from(f.value.trim()))));
    }
    Ok(None)
}

fn duration(
    cx: &Ctx,
    field: &str,
    raw: Option<Spanned<DurationText>>,
    default: Duration,
) -> Result<Duration, InventoryError> {
    let Some(raw) = raw else { return Ok(default) };
    let d = match &raw.value {
        DurationText::Seconds(s) if s.is_finite() && *s > 0.0 => Some(Duration::from_secs_f64(*s)),
        DurationText::Seconds(_) => None,
        DurationText::Text(t) => humantime::parse_duration(t.trim()).ok(),
    };
    match d {
        Some(d) if !d.is_zero() && d <= Duration::from_secs(600) => Ok(d),
        _ => Err(cx.err(
            &raw.referenced,
            field,
            "expected a duration such as `2s`, `500ms` or `1m` (more than 0, at most 10m)",
        )),
    }
}

/// Checks that span groups: unique scopes, group ids, member names, addresses.
fn cross_checks(cx: &Ctx, raw: &RawInventory, groups: &[Group]) -> Result<(), InventoryError> {
    let raw_groups: Vec<(String, &RawGroup)> =
        std::iter::once(("coordinator".to_owned(), &raw.coordinator.value))
            .chain(
                raw.workers
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (format!("workers[{i}]"), &w.value)),
            )
            .collect();

    let mut scopes: HashMap<&str, usize> = HashMap::new();
    let mut ids: HashMap<i32, usize> = HashMap::new();
    let mut names: HashMap<&str, String> = HashMap::new();
    let mut addrs: HashMap<Endpoint, String> = HashMap::new();
    for (gi, (g, (path, rg))) in groups.iter().zip(raw_groups.iter()).enumerate() {
        if let Some(prev) = scopes.insert(&g.scope, gi) {
            return Err(cx.err(
                &rg.scope.referenced,
                &format!("{path}.scope"),
                format!(
                    "scope `{}` is already used by {}",
                    g.scope, raw_groups[prev].0
                ),
            ));
        }
        if let Some(prev) = ids.insert(g.group_id, gi) {
            let at = rg
                .group
                .as_ref()
                .map(|s| s.referenced)
                .unwrap_or(rg.scope.referenced);
            return Err(cx.err(
                &at,
                &format!("{path}.group"),
                format!(
                    "group {} is already used by `{}`",
                    g.group_id, groups[prev].scope
                ),
            ));
        }
        for (mi, (m, rm)) in g.members.iter().zip(rg.members.value.iter()).enumerate() {
            let mpath = format!("{path}.members[{mi}]");
            if let Some(prev) = names.insert(&m.name, g.scope.clone()) {
                return Err(cx.err(
                    &rm.value.name.referenced,
                    &format!("{mpath}.name"),
                    format!("member name `{}` is already used in scope `{prev}`", m.name),
                ));
            }
            if let Some(prev) = addrs.insert(m.pg.clone(), format!("member `{}`", m.name)) {
                return Err(cx.err(
                    &rm.value.host.referenced,
                    &format!("{mpath}.host"),
                    format!("address {} is already used by {prev}", m.pg),
                ));
            }
        }
    }
    // VIPs must not collide with members or other VIPs: pg_dist_node is unique on them.
    for (g, (path, rg)) in groups.iter().zip(raw_groups.iter()) {
        if let (Some(v), Some(rv)) = (&g.vip, &rg.vip) {
            let mut check = |ep: &Endpoint, at: Location, field: String, what: String| {
                if let Some(prev) = addrs.insert(ep.clone(), what) {
                    return Err(cx.err(
                        &at,
                        &field,
                        format!("address {ep} is already used by {prev}"),
                    ));
                }
                Ok(())
            };
            check(
                &v.rw,
                rv.value.rw.referenced,
                format!("{path}.vip.rw"),
                format!("the RW VIP of `{}`", g.scope),
            )?;
            if let (Some(ro), Some(rro)) = (&v.ro, &rv.value.ro) {
                check(
                    ro,
                    rro.referenced,
                    format!("{path}.vip.ro"),
                    format!("the RO VIP of `{}`", g.scope),
                )?;
            }
        }
    }
    Ok(())
}
