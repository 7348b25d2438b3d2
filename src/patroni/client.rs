//! A thin client for the Patroni REST API: one timeout on every call, no retries of writes.

use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

use super::model::{ClusterDoc, PatroniStatus};
use crate::secret::Secret;
use crate::topology::PatroniSettings;

/// Patroni documents are small; anything bigger is not Patroni.
const MAX_BODY: usize = 4 << 20;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ApiError {
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("HTTP {status}: not authorised (check patroni.username and its password)")]
    Unauthorized { status: u16 },
    #[error("not a Patroni answer: {0}")]
    BadResponse(String),
    /// The member answers for another Patroni cluster: the inventory points at the wrong host.
    #[error("answers for Patroni scope {got}, not {want}: check the inventory")]
    WrongScope { got: String, want: String },
}

impl ApiError {
    /// Short form for a table cell.
    pub fn short(&self) -> String {
        match self {
            ApiError::Timeout(_) => "no answer".into(),
            ApiError::Connect(_) => "unreachable".into(),
            ApiError::Status { status, .. } => format!("HTTP {status}"),
            ApiError::Unauthorized { status } => format!("HTTP {status} (auth)"),
            ApiError::BadResponse(_) => "bad answer".into(),
            ApiError::WrongScope { .. } => "wrong scope".into(),
        }
    }
}

#[derive(Clone)]
pub struct PatroniClient {
    http: reqwest::Client,
    auth: Option<(String, Secret)>,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error("cannot read the Patroni CA certificate {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the Patroni CA certificate {path} is not PEM: {message}")]
    CaPem {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("cannot set up the HTTP client: {0}")]
    Build(String),
}

impl PatroniClient {
    /// `password`: already resolved (resolution errors belong to the caller, who knows
    /// whether the command needs it at all).
    pub fn new(
        settings: &PatroniSettings,
        password: Option<Secret>,
    ) -> Result<Self, ClientSetupError> {
        let mut b = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .no_proxy()
            .user_agent(concat!("citusctl/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(2);
        if let Some(path) = &settings.cacert {
            let pem = std::fs::read(path).map_err(|source| ClientSetupError::CaFile {
                path: path.clone(),
                source,
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ClientSetupError::CaPem {
                    path: path.clone(),
                    message: e.to_string(),
                }
            })? {
                b = b.add_root_certificate(cert);
            }
        }
        if settings.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        let http = b
            .build()
            .map_err(|e| ClientSetupError::Build(e.to_string()))?;
        let auth = match (&settings.username, password) {
            (Some(u), Some(p)) => Some((u.clone(), p)),
            (Some(u), None) => Some((u.clone(), Secret::new(""))),
            _ => None,
        };
        Ok(PatroniClient {
            http,
            auth,
            timeout: settings.timeout,
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `GET /cluster` on one member.
    pub async fn cluster(&self, api: &Url) -> Result<ClusterDoc, ApiError> {
        let body = self.get(api, "cluster").await?;
        serde_json::from_slice(&body).map_err(|e| ApiError::BadResponse(format!("/cluster: {e}")))
    }

    /// `GET /patroni`: the member's own status (its Patroni version, role, PostgreSQL version).
    pub async fn patroni_status(&self, api: &Url) -> Result<PatroniStatus, ApiError> {
        let body = self.get(api, "patroni").await?;
        serde_json::from_slice(&body).map_err(|e| ApiError::BadResponse(format!("/patroni: {e}")))
    }

    /// `GET /config`: the scope's dynamic configuration as Patroni keeps it in the DCS (any
    /// member answers for the whole scope). Always a JSON object.
    pub async fn config(&self, api: &Url) -> Result<serde_json::Value, ApiError> {
        let body = self.get(api, "config").await?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadResponse(format!("/config: {e}")))?;
        if !v.is_object() {
            return Err(ApiError::BadResponse("/config: not a JSON object".into()));
        }
        Ok(v)
    }

    /// `GET /history`: `[timeline, lsn, reason, timestamp, new_leader?]` rows.
    pub async fn history(&self, api: &Url) -> Result<Vec<serde_json::Value>, ApiError> {
        let body = self.get(api, "history").await?;
        serde_json::from_slice(&body).map_err(|e| ApiError::BadResponse(format!("/history: {e}")))
    }

    /// An unsafe call (POST/PATCH/DELETE). Never retried. Returns the status and Patroni's
    /// plain-text reply, whatever the status: callers decide what a refusal means.
    pub async fn send(
        &self,
        method: reqwest::Method,
        api: &Url,
        path: &str,
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<(u16, String), ApiError> {
        let url = api
            .join(path)
            .map_err(|e| ApiError::BadResponse(e.to_string()))?;
        let mut req = self.http.request(method, url).timeout(timeout);
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p.expose()));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                ApiError::Timeout(timeout)
            } else {
                self.classify(e)
            }
        })?;
        let status = resp.status().as_u16();
        let body = read_body(resp).await.map_err(|e| self.classify(e))?;
        if status == 401 || status == 403 {
            return Err(ApiError::Unauthorized { status });
        }
        let text: String = String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(1000)
            .collect();
        Ok((status, text))
    }

    async fn get(&self, api: &Url, path: &str) -> Result<Vec<u8>, ApiError> {
        let url = api
            .join(path)
            .map_err(|e| ApiError::BadResponse(e.to_string()))?;
        let mut req = self.http.get(url);
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p.expose()));
        }
        let resp = req.send().await.map_err(|e| self.classify(e))?;
        let status = resp.status();
        let body = read_body(resp).await.map_err(|e| self.classify(e))?;
        check_status(status, &body)?;
        Ok(body)
    }

    fn classify(&self, e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            return ApiError::Timeout(self.timeout);
        }
        let msg = innermost(&e);
        if e.is_connect() {
            ApiError::Connect(msg)
        } else {
            ApiError::BadResponse(msg)
        }
    }
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            break;
        }
    }
    Ok(body)
}

fn check_status(status: StatusCode, body: &[u8]) -> Result<(), ApiError> {
    if status.is_success() {
        return Ok(());
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(ApiError::Unauthorized {
            status: status.as_u16(),
        });
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.trim().chars().take(300).collect();
    Err(ApiError::Status {
        status: status.as_u16(),
        body: text,
    })
}

/// The most specific message in an error chain ("Connection refused", not "error sending request").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let msg = cur.to_string();
    // io::Error's text carries "(os error 111)"; keep it short like libpq.
    match msg.find(" (os error") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}
