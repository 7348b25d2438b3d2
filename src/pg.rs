//! PostgreSQL connections with libpq's conventions: PGUSER, PGPASSWORD, PGSSLMODE,
//! PGSSLROOTCERT, PGPASSFILE / `~/.pgpass`, PGCONNECT_TIMEOUT, and sslmode semantics:
//! - `disable` never encrypts; `allow` tries plain first and TLS only when the server refuses
//!   it; `prefer` tries TLS first;
//! - `prefer`/`require` encrypt without checking the certificate, except that `require` with a
//!   root certificate (`sslrootcert`, PGSSLROOTCERT or `~/.postgresql/root.crt`) checks the chain
//!   as `verify-ca` does (libpq's rule);
//! - `verify-ca` checks the chain, `verify-full` the chain and the host name.
//!
//! The inventory's settings come first, then the environment, then libpq's defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode as PgSslMode;

use crate::secret::{Secret, SecretError, readable_by_others};
use crate::topology::{Endpoint, PostgresSettings, SslMode};

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to PostgreSQL at {endpoint}: {message}")]
    Connect { endpoint: Endpoint, message: String },
    #[error("PostgreSQL at {endpoint} did not answer within {}", humantime::format_duration(*.after))]
    Timeout { endpoint: Endpoint, after: Duration },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("PostgreSQL password: {0}")]
    Password(String),
    #[error("TLS set-up: {0}")]
    Tls(String),
    #[error("{message}")]
    Query {
        code: Option<String>,
        message: String,
    },
}

impl PgError {
    pub fn from_query(e: &tokio_postgres::Error) -> PgError {
        match e.as_db_error() {
            Some(db) => PgError::Query {
                code: Some(db.code().code().to_owned()),
                message: db.message().to_owned(),
            },
            None => PgError::Query {
                code: None,
                message: describe(e),
            },
        }
    }

    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Query { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// The inventory's `connect_timeout`, else PGCONNECT_TIMEOUT as libpq reads it (whole seconds,
/// below 2 raised to 2; 0 or garbage means unset: we keep a limit rather than wait forever).
fn connect_timeout(inventory: Option<Duration>, env: Option<&str>) -> Duration {
    inventory.unwrap_or_else(|| {
        env.and_then(|t| t.trim().parse::<u64>().ok())
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t.max(2)))
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    })
}

/// libpq: `require` with a root certificate at hand checks the chain, as `verify-ca`.
fn effective_sslmode(mode: SslMode, have_root_cert: bool) -> SslMode {
    match mode {
        SslMode::Require if have_root_cert => SslMode::VerifyCa,
        m => m,
    }
}

/// The client's own limit on a read of a few rows (observe, member checks): a server that
/// accepted the connection and then stopped answering is reported, never waited for.
pub const READ_LIMIT: Duration = Duration::from_secs(10);

/// One query with the client's own time limit (every await after a connect has one).
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, PgError> {
    bounded(limit, what, async {
        fut.await.map_err(|e| PgError::from_query(&e))
    })
    .await
}

/// Any PostgreSQL work (connect included) with the client's own time limit.
pub async fn bounded<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, PgError>>,
) -> Result<T, PgError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(PgError::Query {
            code: None,
            message: format!(
                "{what}: no answer within {}",
                humantime::format_duration(limit)
            ),
        }),
    }
}

/// The server's side of a writing session's bounds: TCP keepalives and `tcp_user_timeout` set
/// by the session itself (user-settable; the values are our own, not the server's hours-long
/// defaults), so that the server drops the session, and whatever it holds, within seconds of a
/// client that died or lost its network. Statement, lock and idle-in-transaction limits are the
/// caller's (`SET LOCAL`, per transaction).
pub const SERVER_KEEPALIVES: &str = "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
     SET tcp_keepalives_count = 3; SET tcp_user_timeout = 10000";

/// Name a writing session for people (`pg_stat_activity.application_name`) and set its
/// server-side keepalives ([`SERVER_KEEPALIVES`]), within the read limit.
pub async fn bound_session(
    c: &tokio_postgres::Client,
    application_name: &str,
) -> Result<(), PgError> {
    // Only letters, digits, spaces, '-' and '_': it is spliced into SQL.
    let name: String = application_name
        .chars()
        .filter(|ch| ch.is_ascii_alphanumeric() || matches!(*ch, '_' | '-' | ' '))
        .collect();
    within(
        READ_LIMIT,
        "setting the session up",
        c.batch_execute(&format!(
            "SET application_name = '{name}'; {SERVER_KEEPALIVES}"
        )),
    )
    .await
}

/// When neither the inventory nor PGCONNECT_TIMEOUT says.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Connection settings resolved once per command.
#[derive(Debug, Clone)]
pub struct PgParams {
    pub user: String,
    /// Resolved lazily: a missing password must not stop commands that only read Patroni.
    password: Result<Option<Secret>, std::sync::Arc<SecretError>>,
    sslmode: SslMode,
    sslrootcert: Option<PathBuf>,
    pub connect_timeout: Duration,
}

impl PgParams {
    pub fn resolve(s: &PostgresSettings) -> Result<PgParams, PgError> {
        let user = s
            .user
            .clone()
            .or_else(|| env_nonempty("PGUSER"))
            .or_else(|| env_nonempty("USER"))
            .unwrap_or_else(|| "postgres".into());
        let password = match &s.password {
            Some(src) => src.resolve().map(Some).map_err(std::sync::Arc::new),
            None => Ok(env_nonempty("PGPASSWORD").map(Secret::new)),
        };
        let sslmode = s
            .sslmode
            .or_else(|| env_nonempty("PGSSLMODE").and_then(|m| SslMode::parse(&m)))
            .unwrap_or(SslMode::Prefer);
        let sslrootcert = s
            .sslrootcert
            .clone()
            .or_else(|| env_nonempty("PGSSLROOTCERT").map(PathBuf::from))
            .or_else(|| {
                home()
                    .map(|h| h.join(".postgresql/root.crt"))
                    .filter(|p| p.exists())
            });
        let connect_timeout = connect_timeout(
            s.connect_timeout,
            env_nonempty("PGCONNECT_TIMEOUT").as_deref(),
        );
        let sslmode = effective_sslmode(sslmode, sslrootcert.is_some());
        Ok(PgParams {
            user,
            password,
            sslmode,
            sslrootcert,
            connect_timeout,
        })
    }

    fn password_for(&self, ep: &Endpoint, dbname: &str) -> Result<Option<Secret>, PgError> {
        match &self.password {
            Ok(Some(p)) => Ok(Some(p.clone())),
            Ok(None) => Ok(pgpass_lookup(ep, dbname, &self.user)),
            Err(e) => Err(PgError::Password(e.to_string())),
        }
    }
}

/// Connect to one database on one member; the connection task is spawned on the runtime.
pub async fn connect(
    params: &PgParams,
    ep: &Endpoint,
    dbname: &str,
) -> Result<tokio_postgres::Client, PgError> {
    if params.sslmode != SslMode::Allow {
        return connect_as(params, params.sslmode, ep, dbname).await;
    }
    // `allow`: plain first; when the server refuses a plain connection (pg_hba `hostssl`
    // only), once more with TLS, as libpq does.
    match connect_as(params, SslMode::Disable, ep, dbname).await {
        Err(PgError::Connect { message, .. }) if refused_plain(&message) => {
            connect_as(params, SslMode::Require, ep, dbname).await
        }
        r => r,
    }
}

/// The server's answer to a plain connection that only TLS may make (pg_hba.conf `hostssl`,
/// or a server that demands encryption).
fn refused_plain(message: &str) -> bool {
    message.contains("no encryption") || message.contains("SSL off")
}

async fn connect_as(
    params: &PgParams,
    sslmode: SslMode,
    ep: &Endpoint,
    dbname: &str,
) -> Result<tokio_postgres::Client, PgError> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&ep.host)
        .port(ep.port)
        .user(&params.user)
        .dbname(dbname)
        .application_name("citusctl")
        .connect_timeout(params.connect_timeout)
        // A server that vanishes (host down, network cut) ends the connection in ~11 s.
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3)
        .ssl_mode(match sslmode {
            SslMode::Disable | SslMode::Allow => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            _ => PgSslMode::Require,
        });
    if let Some(pw) = params.password_for(ep, dbname)? {
        cfg.password(pw.expose());
    }
    let tls = tls_connector(params)?;
    let fut = cfg.connect(tls);
    let (client, conn) = match tokio::time::timeout(params.connect_timeout, fut).await {
        Err(_) => {
            return Err(PgError::Timeout {
                endpoint: ep.clone(),
                after: params.connect_timeout,
            });
        }
        Ok(Err(e)) => {
            return Err(PgError::Connect {
                endpoint: ep.clone(),
                message: describe(&e),
            });
        }
        Ok(Ok(pair)) => pair,
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// The server's message without tokio-postgres' "db error: " wrapper, or the innermost cause.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_owned();
    }
    let mut cur: &dyn std::error::Error = e;
    let mut msg = e.to_string();
    while let Some(next) = cur.source() {
        msg = next.to_string();
        cur = next;
    }
    match msg.find(" (os error") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

fn tls_connector(params: &PgParams) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Tls(e.to_string()))?;
    let config = match params.sslmode {
        SslMode::Disable | SslMode::Allow | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth(),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let path = params.sslrootcert.as_deref().ok_or_else(|| {
                PgError::Tls(
                    "sslmode verify-ca/verify-full needs a root certificate: set \
                     postgres.sslrootcert or PGSSLROOTCERT"
                        .into(),
                )
            })?;
            let roots = load_roots(path)?;
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| PgError::Tls(e.to_string()))?;
            if params.sslmode == SslMode::VerifyFull {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                    .with_no_client_auth()
            }
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn load_roots(path: &Path) -> Result<rustls::RootCertStore, PgError> {
    let pem = std::fs::read(path)
        .map_err(|e| PgError::Tls(format!("cannot read {}: {e}", path.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| PgError::Tls(format!("{}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| PgError::Tls(format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(PgError::Tls(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(roots)
}

/// sslmode prefer/require: encryption without authentication, exactly as libpq does.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// sslmode verify-ca: the chain must verify; the name need not match.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// `~/.pgpass` (or PGPASSFILE) lookup, ignored when readable by others, as libpq does.
fn pgpass_lookup(ep: &Endpoint, dbname: &str, user: &str) -> Option<Secret> {
    let path = env_nonempty("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".pgpass")))?;
    let text = std::fs::read_to_string(&path).ok()?;
    if readable_by_others(&path) {
        tracing::warn!(
            "password file {} has group or world access; permissions should be u=rw (0600) or less: ignored",
            path.display()
        );
        return None;
    }
    pgpass_match(&text, &ep.host, ep.port, dbname, user)
}

fn pgpass_match(text: &str, host: &str, port: u16, dbname: &str, user: &str) -> Option<Secret> {
    let port = port.to_string();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() < 5 {
            continue;
        }
        let want = [host, port.as_str(), dbname, user];
        if fields[..4]
            .iter()
            .zip(want)
            .all(|(f, w)| f == "*" || f == w)
        {
            return Some(Secret::new(fields[4].clone()));
        }
    }
    None
}

/// Split on unescaped `:`; `\:` and `\\` are escapes; the password field takes the rest.
fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().unwrap().push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_timeout_inventory_first_then_libpqs_env() {
        let s = Duration::from_secs;
        assert_eq!(connect_timeout(Some(s(7)), Some("1")), s(7));
        assert_eq!(connect_timeout(None, Some("10")), s(10));
        assert_eq!(connect_timeout(None, Some("1")), s(2));
        assert_eq!(connect_timeout(None, Some("0")), DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(connect_timeout(None, Some("soon")), DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(connect_timeout(None, None), DEFAULT_CONNECT_TIMEOUT);
    }

    #[test]
    fn sslmodes_as_libpq_means_them() {
        assert_eq!(SslMode::parse("allow"), Some(SslMode::Allow));
        assert_eq!(effective_sslmode(SslMode::Require, true), SslMode::VerifyCa);
        assert_eq!(effective_sslmode(SslMode::Require, false), SslMode::Require);
        assert_eq!(effective_sslmode(SslMode::Prefer, true), SslMode::Prefer);
        assert_eq!(effective_sslmode(SslMode::Allow, true), SslMode::Allow);
        assert!(refused_plain(
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"u\", database \"d\", no encryption"
        ));
        assert!(!refused_plain(
            "password authentication failed for user \"u\""
        ));
    }

    #[test]
    fn pgpass_wildcards_and_escapes() {
        let text = "# comment\n10.0.0.1:5432:app:alice:one\n*:*:*:postgres:pa\\:ss\\\\w\n";
        let pw = pgpass_match(text, "10.0.0.1", 5432, "app", "alice").unwrap();
        assert_eq!(pw.expose(), "one");
        let pw = pgpass_match(text, "10.9.9.9", 6432, "x", "postgres").unwrap();
        assert_eq!(pw.expose(), "pa:ss\\w");
        assert!(pgpass_match(text, "10.0.0.1", 5432, "app", "bob").is_none());
    }
}
