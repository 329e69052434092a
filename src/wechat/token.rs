//! Access tokens for the WeChat API, fetched once and shared.
//!
//! WeChat gives one valid token per AppID at a time, and a careless refresh by one service knocks
//! out every other service's token. So: the `stable` endpoint by default (it hands every caller the
//! same token), a `file` mode for teams whose central token service owns the token, single flight
//! (one fetch however many tasks wait), and invalidation that drops a token only if it is still the
//! one that failed, so a late error never throws away a fresh token.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::wechat::WeChatError;
use crate::wechat::authorizer::{Authorizer, AuthorizerChain, RefreshTokenKeeper};
use crate::wechat::grant::{decode_token_answer, join, refresh_after};

/// How the bot gets its access token (`WECHAT_TOKEN_MODE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenMode {
    /// `POST /cgi-bin/stable_token`: safe beside other services using the same AppID.
    Stable,
    /// `GET /cgi-bin/token`: each fetch invalidates other services' tokens after 5 minutes.
    Classic,
    /// Read from a file another service keeps fresh (`WECHAT_ACCESS_TOKEN_FILE`).
    File(PathBuf),
    /// A third-party platform's authorizer token, bought with its component token and the
    /// owner's refresh token (`WECHAT_TOKEN_MODE=authorizer`).
    Authorizer(Authorizer),
    /// No token at all: inside WeChat Cloud Run with 开放接口服务 switched on, the platform adds
    /// the credential to calls made to `http://api.weixin.qq.com` (its "cloud call").
    CloudRun,
}

impl TokenMode {
    /// The mode's name as configured.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Classic => "classic",
            Self::File(_) => "file",
            Self::Authorizer(_) => "authorizer",
            Self::CloudRun => "cloudrun",
        }
    }

    /// Whether calls carry no token (Cloud Run's cloud call adds the credential).
    pub fn is_cloud_run(&self) -> bool {
        matches!(self, Self::CloudRun)
    }
}

/// A token handed to one call, with the generation that lets [`TokenProvider::invalidate`] tell
/// whether the cached token is still this one. In Cloud Run mode there is none to hand.
#[derive(Clone)]
pub struct AccessToken {
    secret: Option<SecretString>,
    generation: u64,
}

impl AccessToken {
    /// The token itself, for the query string (`None`: the call goes without one, through Cloud
    /// Run's cloud call). Never log it.
    pub fn expose(&self) -> Option<&str> {
        self.secret.as_ref().map(|s| s.expose_secret())
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessToken(generation {}, ***)", self.generation)
    }
}

struct Cached {
    token: AccessToken,
    /// When to fetch again (`None`: until a token error, as in file mode).
    refresh_at: Option<Instant>,
    /// The token file's modification time when it was read (file mode).
    file_mtime: Option<SystemTime>,
}

/// What `/status` and `check` show about the token, without the token.
#[derive(Clone, Debug)]
pub struct TokenState {
    /// The configured mode.
    pub mode: &'static str,
    /// Whether a token is cached now.
    pub cached: bool,
    /// Seconds until the cached token is refreshed, when known.
    pub refresh_in_secs: Option<u64>,
    /// Tokens fetched since start.
    pub fetches: u64,
}

/// Fetches, caches and shares the access token.
pub struct TokenProvider {
    http: reqwest::Client,
    base: Url,
    /// The plugin's name, for the metrics.
    name: String,
    appid: String,
    secret: SecretString,
    mode: TokenMode,
    /// The platform's chain, in authorizer mode.
    chain: Option<AuthorizerChain>,
    cache: Mutex<Option<Cached>>,
    generation: AtomicU64,
    fetches: AtomicU64,
}

impl TokenProvider {
    /// A provider for `appid` against `base` (WeChat's API root), sharing the client's HTTP pool.
    /// Only the WeChat client builds one, so every token chain runs on its client, which follows
    /// no redirect (a followed `stable_token` redirect would carry the AppSecret away).
    pub(crate) fn new(
        http: reqwest::Client,
        base: Url,
        name: String,
        appid: String,
        secret: SecretString,
        mode: TokenMode,
        keeper: Arc<dyn RefreshTokenKeeper>,
    ) -> Arc<Self> {
        let chain = match &mode {
            TokenMode::Authorizer(config) => {
                Some(AuthorizerChain::new(name.clone(), config.clone(), keeper))
            }
            _ => None,
        };
        Arc::new(Self {
            http,
            base,
            name,
            appid,
            secret,
            mode,
            chain,
            cache: Mutex::new(None),
            generation: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        })
    }

    /// The mode tokens come from.
    pub fn mode(&self) -> &TokenMode {
        &self.mode
    }

    /// A valid token: the cached one, or one fetched now. Concurrent callers wait for a single fetch.
    pub async fn token(&self) -> Result<AccessToken, WeChatError> {
        if self.mode.is_cloud_run() {
            return Ok(AccessToken {
                secret: None,
                generation: 0,
            });
        }
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && self.still_fresh(cached).await
        {
            return Ok(cached.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// Drops `failed` if it is still the cached token; a newer token stays.
    pub async fn invalidate(&self, failed: &AccessToken) {
        let mut cache = self.cache.lock().await;
        if cache
            .as_ref()
            .is_some_and(|c| c.token.generation == failed.generation)
        {
            tracing::info!(
                generation = failed.generation,
                "access token rejected; dropping it"
            );
            *cache = None;
        }
    }

    /// In authorizer mode, fetches the platform's component token — the ticket file and the
    /// platform's credentials — without trading the owner's refresh token; `Ok(false)` in any
    /// other mode.
    pub async fn component_token_ok(&self) -> Result<bool, WeChatError> {
        match &self.chain {
            Some(chain) => chain
                .component_ready(&self.http, &self.base)
                .await
                .map(|()| true),
            None => Ok(false),
        }
    }

    /// What the token looks like now, for `/status`.
    pub async fn state(&self) -> TokenState {
        let cache = self.cache.lock().await;
        let now = Instant::now();
        TokenState {
            mode: self.mode.name(),
            cached: cache.is_some(),
            refresh_in_secs: cache
                .as_ref()
                .and_then(|c| c.refresh_at)
                .map(|at| at.saturating_duration_since(now).as_secs()),
            fetches: self.fetches.load(Ordering::Relaxed),
        }
    }

    async fn still_fresh(&self, cached: &Cached) -> bool {
        if let Some(at) = cached.refresh_at {
            return Instant::now() < at;
        }
        match &self.mode {
            // Another service rewrote the file: take the new token now rather than after a failure.
            TokenMode::File(path) => {
                let mtime = tokio::fs::metadata(path)
                    .await
                    .and_then(|m| m.modified())
                    .ok();
                mtime.is_none() || mtime == cached.file_mtime
            }
            _ => true,
        }
    }

    async fn fetch(&self) -> Result<Cached, WeChatError> {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let result = match &self.mode {
            TokenMode::Stable => self.fetch_stable().await,
            TokenMode::Classic => self.fetch_classic().await,
            TokenMode::File(path) => {
                let read = self.read_file(path, generation).await;
                crate::telemetry::token_refresh(&self.name, "file", read.is_ok());
                return read;
            }
            TokenMode::Authorizer(_) => match &self.chain {
                Some(chain) => {
                    chain
                        .authorizer_token(&self.http, &self.base, &self.appid)
                        .await
                }
                None => Err(WeChatError::InvalidRequest(
                    "authorizer mode without its chain".into(),
                )),
            },
            TokenMode::CloudRun => {
                return Err(WeChatError::InvalidRequest(
                    "Cloud Run's cloud call needs no token".into(),
                ));
            }
        };
        crate::telemetry::token_refresh(&self.name, self.mode.name(), result.is_ok());
        let (token, expires_in) = result?;
        crate::redact::register_access_token(&token);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            mode = self.mode.name(),
            expires_in,
            "fetched a new access token"
        );
        Ok(Cached {
            token: AccessToken {
                secret: Some(SecretString::from(token)),
                generation,
            },
            refresh_at: Some(Instant::now() + refresh_after(expires_in)),
            file_mtime: None,
        })
    }

    async fn fetch_stable(&self) -> Result<(String, u64), WeChatError> {
        let url = join(&self.base, "cgi-bin/stable_token");
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret.expose_secret(),
            "force_refresh": false,
        });
        let response = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(WeChatError::from_reqwest)?;
        let (status, bytes) = super::read_body(response).await?;
        decode_token_answer(status, &bytes, "access_token").map(|a| (a.token, a.expires_in))
    }

    async fn fetch_classic(&self) -> Result<(String, u64), WeChatError> {
        let mut url = join(&self.base, "cgi-bin/token");
        url.query_pairs_mut()
            .append_pair("grant_type", "client_credential")
            .append_pair("appid", &self.appid)
            .append_pair("secret", self.secret.expose_secret());
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(WeChatError::from_reqwest)?;
        let (status, bytes) = super::read_body(response).await?;
        decode_token_answer(status, &bytes, "access_token").map(|a| (a.token, a.expires_in))
    }

    async fn read_file(&self, path: &PathBuf, generation: u64) -> Result<Cached, WeChatError> {
        let file_error = |reason: String| WeChatError::TokenFile {
            path: path.display().to_string(),
            reason,
        };
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| file_error(e.to_string()))?;
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| file_error(e.to_string()))?;
        let token = token_from_file_text(&text)
            .ok_or_else(|| file_error("holds no access token".to_owned()))?;
        crate::redact::register_access_token(&token);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        tracing::info!(path = %path.display(), "read the access token file");
        Ok(Cached {
            token: AccessToken {
                secret: Some(SecretString::from(token)),
                generation,
            },
            refresh_at: None,
            file_mtime: meta.modified().ok(),
        })
    }
}

/// Accepts a bare token (first non-empty line) or a JSON object with `access_token`, the two
/// shapes central token services write.
fn token_from_file_text(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(trimmed).ok()?;
        return value
            .get("access_token")
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
    }
    trimmed
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_text_shapes() {
        assert_eq!(token_from_file_text("\n  abc \n"), Some("abc".into()));
        assert_eq!(
            token_from_file_text(r#"{"access_token":"xyz","expires_in":7200}"#),
            Some("xyz".into())
        );
        assert_eq!(token_from_file_text("  \n"), None);
        assert_eq!(token_from_file_text(r#"{"nope":1}"#), None);
    }
}
