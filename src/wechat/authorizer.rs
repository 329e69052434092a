//! A third-party platform (第三方平台) calling for the plugin's owner, who never hands over an
//! AppSecret: the platform's `component_verify_ticket` (written to a file by the platform's own
//! receiver) buys a component token, which with the owner's refresh token buys the authorizer
//! token that `/wxa/devplugin` accepts like the account's own. The component token is fetched
//! once and cached until shortly before it expires; the ticket file is read at each fetch, so a
//! replaced ticket is taken as soon as it is needed. WeChat may return a new refresh token with
//! each authorizer token: the one returned is used from then on and handed to a
//! [`RefreshTokenKeeper`], which keeps it across restarts.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::wechat::WeChatError;
use crate::wechat::errcode::REFRESH_TOKEN_INVALID;
use crate::wechat::grant::{TokenAnswer, decode_token_answer, join, refresh_after};

/// The platform's credentials (`WECHAT_TOKEN_MODE=authorizer`).
#[derive(Clone, Debug)]
pub struct Authorizer {
    /// The platform's component AppID (`WECHAT_COMPONENT_APPID`).
    pub component_appid: String,
    /// Its component AppSecret (`WECHAT_COMPONENT_SECRET`).
    pub component_secret: SecretString,
    /// Where the platform's receiver writes the latest `component_verify_ticket`
    /// (`WECHAT_COMPONENT_TICKET_FILE`).
    pub ticket_file: PathBuf,
    /// The owner's refresh token as configured (`WECHAT_AUTHORIZER_REFRESH_TOKEN`): the first one
    /// the bot takes, and the one it takes again when an operator changes it (re-authorized).
    pub refresh_token: SecretString,
}

impl PartialEq for Authorizer {
    fn eq(&self, other: &Self) -> bool {
        self.component_appid == other.component_appid
            && self.ticket_file == other.ticket_file
            && self.component_secret.expose_secret() == other.component_secret.expose_secret()
            && self.refresh_token.expose_secret() == other.refresh_token.expose_secret()
    }
}

impl Eq for Authorizer {}

/// How many times, and how far apart, a refused refresh token is looked up again in case another
/// replica replaced it a moment ago.
const REPLACED_LOOKS: usize = 3;
const REPLACED_LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(300);

/// What a [`RefreshTokenKeeper`] call returns.
pub type Kept<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Keeps an authorizer's refresh token between runs (the bot's store).
pub trait RefreshTokenKeeper: Send + Sync {
    /// The refresh token to use for `authorizer_appid`, given the configured one: the kept one,
    /// unless `configured` differs from the configured value it was first taken from (an
    /// operator re-authorized), in which case `configured` is kept and returned.
    fn current<'a>(&'a self, authorizer_appid: &'a str, configured: &'a str) -> Kept<'a, String>;
    /// Keeps `token`, the refresh token WeChat just returned, for `authorizer_appid`.
    fn keep<'a>(&'a self, authorizer_appid: &'a str, token: &'a str) -> Kept<'a, ()>;
}

/// Keeps nothing beyond this process: a restart begins again from the configured refresh token
/// (`check`, and clients built without a store).
#[derive(Default)]
pub struct MemoryKeeper;

impl RefreshTokenKeeper for MemoryKeeper {
    fn current<'a>(&'a self, _: &'a str, configured: &'a str) -> Kept<'a, String> {
        Box::pin(async move { Ok(configured.to_owned()) })
    }

    fn keep<'a>(&'a self, _: &'a str, _: &'a str) -> Kept<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// The component token, cached.
struct ComponentToken {
    token: SecretString,
    refresh_at: Instant,
}

/// The refresh token in use.
struct Refresh {
    token: SecretString,
    /// Whether the keeper has it: a failed keep is tried again at the next exchange.
    kept: bool,
}

/// The chain from ticket to authorizer token, for one authorizer.
pub(crate) struct AuthorizerChain {
    config: Authorizer,
    keeper: std::sync::Arc<dyn RefreshTokenKeeper>,
    component: Mutex<Option<ComponentToken>>,
    /// The refresh token last used or returned (`None`: none yet).
    refresh: Mutex<Option<Refresh>>,
    /// Held for one exchange of a refresh token.
    exchanging: Mutex<()>,
    /// The plugin's name, for the metrics.
    name: String,
}

impl AuthorizerChain {
    pub(crate) fn new(
        name: String,
        config: Authorizer,
        keeper: std::sync::Arc<dyn RefreshTokenKeeper>,
    ) -> Self {
        Self {
            name,
            config,
            keeper,
            component: Mutex::new(None),
            refresh: Mutex::new(None),
            exchanging: Mutex::new(()),
        }
    }

    /// A new authorizer token for `authorizer_appid`, with its lifetime in seconds. A component
    /// token WeChat rejects (40001/40014/42001) is dropped and fetched again, once.
    pub(crate) async fn authorizer_token(
        &self,
        http: &reqwest::Client,
        base: &Url,
        authorizer_appid: &str,
    ) -> Result<(String, u64), WeChatError> {
        let mut retried = false;
        loop {
            let component = self.component_token(http, base).await?;
            match self
                .exchange(http, base, authorizer_appid, &component)
                .await
            {
                Err(e) if e.is_token_error() && !retried => {
                    retried = true;
                    tracing::info!(
                        errcode = e.errcode(),
                        "component token rejected; fetching a new one"
                    );
                    *self.component.lock().await = None;
                }
                other => return other,
            }
        }
    }

    /// Whether a component token can be had (cached or fetched now).
    pub(crate) async fn component_ready(
        &self,
        http: &reqwest::Client,
        base: &Url,
    ) -> Result<(), WeChatError> {
        self.component_token(http, base).await.map(|_| ())
    }

    /// The cached component token, or one fetched now with the ticket the file holds now.
    async fn component_token(
        &self,
        http: &reqwest::Client,
        base: &Url,
    ) -> Result<SecretString, WeChatError> {
        let mut cached = self.component.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let ticket = self.ticket().await?;
        let body = serde_json::json!({
            "component_appid": self.config.component_appid,
            "component_appsecret": self.config.component_secret.expose_secret(),
            "component_verify_ticket": ticket.expose_secret(),
        });
        let response = http
            .post(join(base, "cgi-bin/component/api_component_token"))
            .json(&body)
            .send()
            .await
            .map_err(WeChatError::from_reqwest)?;
        let (status, bytes) = super::read_body(response).await?;
        let answer = decode_token_answer(status, &bytes, "component_access_token");
        crate::telemetry::token_refresh(&self.name, "component", answer.is_ok());
        let TokenAnswer {
            token, expires_in, ..
        } = answer?;
        crate::redact::register_access_token(&token);
        tracing::info!(expires_in, "fetched a new component token");
        let token = SecretString::from(token);
        *cached = Some(ComponentToken {
            token: token.clone(),
            refresh_at: Instant::now() + refresh_after(expires_in),
        });
        Ok(token)
    }

    /// The ticket file's ticket: the whole file, surrounding whitespace ignored.
    async fn ticket(&self) -> Result<SecretString, WeChatError> {
        let path = &self.config.ticket_file;
        let error = |reason: String| WeChatError::TicketFile {
            path: path.display().to_string(),
            reason,
        };
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| error(e.to_string()))?;
        let ticket = text.trim();
        if ticket.is_empty() {
            return Err(error("is empty".to_owned()));
        }
        crate::redact::register_access_token(ticket);
        Ok(SecretString::from(ticket.to_owned()))
    }

    /// The refresh token to use now: one WeChat returned that could not be kept yet, else the
    /// keeper's (another replica may have been handed a newer one), else the last known.
    async fn current_refresh(&self, authorizer_appid: &str) -> (SecretString, bool) {
        let memory = self.refresh.lock().await;
        if let Some(r) = memory.as_ref()
            && !r.kept
        {
            return (r.token.clone(), false);
        }
        let configured = self.config.refresh_token.expose_secret();
        match self.keeper.current(authorizer_appid, configured).await {
            Ok(token) => {
                crate::redact::register_secret(&token);
                (SecretString::from(token), true)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the kept refresh token; using the last known one");
                match memory.as_ref() {
                    Some(r) => (r.token.clone(), r.kept),
                    None => (SecretString::from(configured.to_owned()), true),
                }
            }
        }
    }

    /// Trades the refresh token for an authorizer token, keeping the refresh token WeChat
    /// returns. A 61023 for a refresh token that another replica has since replaced is tried
    /// again, once, with the newer one.
    async fn exchange(
        &self,
        http: &reqwest::Client,
        base: &Url,
        authorizer_appid: &str,
        component: &SecretString,
    ) -> Result<(String, u64), WeChatError> {
        // One exchange at a time in this process: each may replace the refresh token.
        let _one = self.exchanging.lock().await;
        let mut retried = false;
        loop {
            let (current, kept) = self.current_refresh(authorizer_appid).await;
            let answer = self
                .ask(http, base, authorizer_appid, component, &current)
                .await;
            let TokenAnswer {
                token,
                expires_in,
                refresh_token,
            } = match answer {
                Err(e) if e.errcode() == Some(REFRESH_TOKEN_INVALID) && !retried => {
                    retried = true;
                    // Another replica may have traded this token a moment ago and be about to
                    // keep the new one: look a few times before calling it a revoked
                    // authorization, which a person must mend.
                    let mut replaced = false;
                    for _ in 0..REPLACED_LOOKS {
                        let (again, _) = self.current_refresh(authorizer_appid).await;
                        if again.expose_secret() != current.expose_secret() {
                            replaced = true;
                            break;
                        }
                        tokio::time::sleep(REPLACED_LOOK_EVERY).await;
                    }
                    if !replaced {
                        return Err(e);
                    }
                    tracing::info!(
                        "the refresh token was replaced meanwhile; trying the newer one"
                    );
                    continue;
                }
                other => other?,
            };
            crate::redact::register_access_token(&token);
            let (next, changed) = match refresh_token {
                Some(next) if next != current.expose_secret() => {
                    crate::redact::register_secret(&next);
                    (SecretString::from(next), true)
                }
                _ => (current, false),
            };
            let kept = if changed || !kept {
                match self
                    .keeper
                    .keep(authorizer_appid, next.expose_secret())
                    .await
                {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(error = %e, "could not keep the refresh token WeChat returned; it is used until the bot stops, and the next refresh tries to keep it again");
                        false
                    }
                }
            } else {
                true
            };
            *self.refresh.lock().await = Some(Refresh { token: next, kept });
            return Ok((token, expires_in));
        }
    }

    /// One `api_authorizer_token` call.
    async fn ask(
        &self,
        http: &reqwest::Client,
        base: &Url,
        authorizer_appid: &str,
        component: &SecretString,
        refresh: &SecretString,
    ) -> Result<TokenAnswer, WeChatError> {
        let mut url = join(base, "cgi-bin/component/api_authorizer_token");
        url.query_pairs_mut()
            .append_pair("component_access_token", component.expose_secret());
        let body = serde_json::json!({
            "component_appid": self.config.component_appid,
            "authorizer_appid": authorizer_appid,
            "authorizer_refresh_token": refresh.expose_secret(),
        });
        let response = http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(WeChatError::from_reqwest)?;
        let (status, bytes) = super::read_body(response).await?;
        decode_token_answer(status, &bytes, "authorizer_access_token")
    }
}
