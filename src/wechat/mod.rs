//! The WeChat client for `POST /wxa/devplugin`: list applicants, agree, refuse, delete.
//!
//! Wire types stay in here; callers get [`Applicant`]s and [`WeChatError`]s. Reads retry what is
//! safe to retry; writes never resend after an answer went missing, they report an unknown outcome
//! so the caller re-reads the truth, and a write that never left the process says so.
//!
//! Listing reads by position, because nothing documents how WeChat pages: a page of `k` items
//! shorter than asked may be the end or a silent cap on `num`, so the listing goes on at position
//! `offset` with a page size that divides it (at most `k`) until a page comes back empty. That costs
//! exactly one extra call when a listing ends on a short page, and reads everyone under any cap.
//! A WeChat that ignores `page` is recognised by full pages that bring nobody new.

mod answer;
mod authorizer;
mod errcode;
mod error;
mod grant;
mod token;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::Url;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::Value;

use crate::domain::applicant::{AppId, Applicant};
#[cfg(test)]
use crate::domain::applicant::{ApplyStatus, Category};

pub use authorizer::{Authorizer, Kept, MemoryKeeper, RefreshTokenKeeper};
pub use errcode::{DAILY_QUOTA, REFRESH_TOKEN_INVALID, config_hint_in, meaning as errcode_meaning};
use errcode::{STALE_STATE, SYSTEM_BUSY};
pub use error::{OUTSIDE_TEXT_MAX_CHARS, TransportKind, WeChatError, cut_outside_text};
pub use token::{AccessToken, TokenMode, TokenProvider, TokenState};

/// The real API's root.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// How reads back off between attempts.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// First delay.
    pub min_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub max_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(300),
            max_delay: Duration::from_secs(5),
            max_retries: 4,
        }
    }
}

impl RetryPolicy {
    fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
            .build()
    }
}

/// Everything the client needs to be built.
#[derive(Clone, Debug)]
pub struct WeChatConfig {
    /// API root (`WECHAT_API_BASE`).
    pub base_url: Url,
    /// The plugin's AppID (`WECHAT_APPID`).
    pub appid: String,
    /// The plugin's name, as metrics label its calls (the AppID unless configured).
    pub name: String,
    /// Its AppSecret (`WECHAT_SECRET`).
    pub secret: SecretString,
    /// Where tokens come from (`WECHAT_TOKEN_MODE`).
    pub token_mode: TokenMode,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (`WECHAT_TIMEOUT_SECS`).
    pub request_timeout: Duration,
    /// Page size for `list_all` (`WECHAT_PAGE_SIZE`).
    pub page_size: u32,
    /// Most `dev_apply_list` calls one `list_all` makes before giving up on a server that never
    /// sends an empty page.
    pub max_pages: u32,
    /// Backoff for retried calls.
    pub retry: RetryPolicy,
}

impl WeChatConfig {
    /// Defaults for everything but the credentials.
    pub fn new(base_url: Url, appid: String, secret: SecretString) -> Self {
        Self {
            base_url,
            name: appid.clone(),
            appid,
            secret,
            token_mode: TokenMode::Stable,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            page_size: 50,
            max_pages: 1000,
            retry: RetryPolicy::default(),
        }
    }
}

/// Whether a call may be sent again after an unclear failure, and, for a write, until when it
/// may be sent at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write(Option<Instant>),
}

impl Kind {
    fn too_late(self) -> bool {
        matches!(self, Self::Write(Some(until)) if Instant::now() >= until)
    }
}

#[derive(Serialize)]
struct DevPluginRequest<'a> {
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    appid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// Every applicant one `list_all` read, and whether that listing is complete.
#[derive(Clone, Debug)]
pub struct Listing {
    /// The applicants, de-duplicated by appid.
    pub applicants: Vec<Applicant>,
    /// `false` when a full page brought nobody new (WeChat ignoring `page`, for the whole
    /// listing or for a moment of it, or applicants arriving while it paged): what WeChat holds
    /// at that page's position was not read, so an applicant missing here proves nothing.
    pub complete: bool,
}

/// One `dev_apply_list` page as WeChat sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The items that decoded (a usable appid), in WeChat's order.
    pub applicants: Vec<Applicant>,
    /// How many items `apply_list` held, decodable or not: what paging counts.
    pub sent: usize,
}

/// What listings learnt about WeChat's paging, shared by clones.
#[derive(Default)]
struct PagingSeen {
    /// The last completed `list_all` met full pages bringing nobody new.
    broken: AtomicBool,
    /// The largest `num` WeChat was seen to honour when it capped a page (0: no cap seen).
    cap: AtomicU32,
}

/// Why a call failed, with what the write path needs to tell an unknown outcome from none.
struct Failure {
    error: WeChatError,
    /// Some attempt was sent and its answer does not prove that nothing was done.
    maybe_applied: bool,
    /// An attempt before the last one was answered -1.
    busy_before: bool,
}

/// The devplugin client. Cheap to clone; clones share the HTTP pool, the token and what was
/// learnt about paging.
#[derive(Clone)]
pub struct WeChatClient {
    /// The plugin it manages (its AppID, `WECHAT_APPID`).
    plugin: AppId,
    /// The plugin's name, as metrics label its calls.
    name: String,
    http: reqwest::Client,
    endpoint: Url,
    tokens: Arc<TokenProvider>,
    page_size: u32,
    max_pages: u32,
    retry: RetryPolicy,
    paging: Arc<PagingSeen>,
    /// Cloud Run mode: whether a successful answer without `x-openapi-seqid` was logged (once).
    not_cloud_logged: Arc<AtomicBool>,
}

/// The header Cloud Run's cloud call puts on every answer it carried.
const CLOUD_CALL_HEADER: &str = "x-openapi-seqid";

impl WeChatClient {
    /// Builds the client and its token provider; in authorizer mode, a refresh token WeChat
    /// returns lives as long as the process (see [`WeChatClient::with_keeper`]).
    pub fn new(config: WeChatConfig) -> Result<Self, WeChatError> {
        Self::with_keeper(config, Arc::new(MemoryKeeper))
    }

    /// The plugin this client manages: the key its applicants are stored under.
    pub fn plugin(&self) -> &AppId {
        &self.plugin
    }

    /// [`WeChatClient::new`], with `keeper` keeping the authorizer's refresh token across runs.
    pub fn with_keeper(
        config: WeChatConfig,
        keeper: Arc<dyn RefreshTokenKeeper>,
    ) -> Result<Self, WeChatError> {
        let http = reqwest::Client::builder()
            // Never follow: a redirected `stable_token` POST would carry the AppSecret to
            // wherever `Location` points. An answer that redirects is an error (`Redirect`).
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("wxplugin-bot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(WeChatError::from_reqwest)?;
        if config.page_size == 0 {
            return Err(WeChatError::InvalidRequest(
                "page size must be at least 1".into(),
            ));
        }
        let plugin = AppId::parse(&config.appid)
            .map_err(|e| WeChatError::InvalidRequest(format!("the plugin's AppID: {e}")))?;
        let tokens = TokenProvider::new(
            http.clone(),
            config.base_url.clone(),
            config.name.clone(),
            config.appid,
            config.secret,
            config.token_mode,
            keeper,
        );
        Ok(Self {
            plugin,
            name: config.name,
            endpoint: grant::join(&config.base_url, "wxa/devplugin"),
            http,
            tokens,
            page_size: config.page_size,
            max_pages: config.max_pages.max(1),
            retry: config.retry,
            paging: Arc::default(),
            not_cloud_logged: Arc::default(),
        })
    }

    /// The token provider, for `/status` and `check`.
    pub fn tokens(&self) -> &TokenProvider {
        &self.tokens
    }

    /// Whether, in Cloud Run mode, WeChat answered a call without `x-openapi-seqid`: the calls
    /// do not go through Cloud Run's cloud call.
    pub fn answered_outside_cloud_run(&self) -> bool {
        self.not_cloud_logged.load(Ordering::Relaxed)
    }

    /// The page size `list_all` uses.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// Whether the last completed `list_all` found WeChat ignoring `page` (full pages that
    /// brought no applicant not already seen), for `/status`.
    pub fn paging_broken(&self) -> bool {
        self.paging.broken.load(Ordering::Relaxed)
    }

    /// The most items per page WeChat was seen to send when it capped `num` below the page size.
    pub fn page_cap(&self) -> Option<u32> {
        Some(self.paging.cap.load(Ordering::Relaxed)).filter(|c| *c > 0)
    }

    /// One page of applicants (`dev_apply_list`), pages counted from 1.
    pub async fn apply_list(&self, page: u32, num: u32) -> Result<Vec<Applicant>, WeChatError> {
        self.apply_page(page, num).await.map(|p| p.applicants)
    }

    /// One page of applicants with the number of items WeChat sent (decodable or not).
    pub async fn apply_page(&self, page: u32, num: u32) -> Result<ListPage, WeChatError> {
        if page == 0 || num == 0 {
            return Err(WeChatError::InvalidRequest(
                "page and num start at 1".into(),
            ));
        }
        let request = DevPluginRequest {
            action: "dev_apply_list",
            appid: None,
            page: Some(page),
            num: Some(num),
            reason: None,
        };
        self.call(&request, Kind::Read, decode_apply_list_page)
            .await
            .map_err(|f| f.error)
    }

    /// Every applicant, read by position (see the module docs) until an empty page, whatever cap
    /// WeChat puts on `num`; de-duplicated by appid (items shift between pages while paging);
    /// at most `max_pages` calls. Stops early, with what it has, when WeChat ignores `page`.
    /// An absent, null or empty `apply_list` is an empty listing: what that proves is the
    /// caller's call. One that is anything else (a string, an object) is a decode error.
    pub async fn list_all(&self) -> Result<Vec<Applicant>, WeChatError> {
        self.list_all_checked()
            .await
            .map(|listing| listing.applicants)
    }

    /// [`Self::list_all`], saying whether this very listing is complete: `false` when WeChat
    /// ignored `page` and only what the first page shows was listed. Each listing carries its own
    /// answer: a flag shared by every caller would be reset by another listing that finished
    /// meanwhile, and a partial listing taken for complete proves absences that are not.
    pub async fn list_all_checked(&self) -> Result<Listing, WeChatError> {
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        let mut size = self.page_size;
        // Items WeChat has sent so far: the position the next page starts at. Always a
        // multiple of `size`.
        let mut offset: u64 = 0;
        // A short page of this many items made the page size shrink; the next full page shows
        // it was a cap rather than the end.
        let mut short_seen: Option<u32> = None;
        // Full pages in a row that brought nobody new.
        let mut stale_pages = 0;
        // Whether any full page brought nobody new: what WeChat holds at that page's position
        // was not read (applicants arriving while paging, or `page` ignored for a moment), so
        // this listing proves nobody's absence, however it ends.
        let mut skipped = false;
        // After a listing that found `page` ignored, a full first page followed by an empty one
        // cannot tell "paging works again, and there are exactly that many" from an empty
        // answer (a glitch) to a page that would have repeated the first: only a later page
        // bringing newcomers shows paging works. Until then no absence is proven.
        let was_broken = self.paging_broken();
        let mut first_full = false;
        let mut later_fresh = false;
        for _ in 0..self.max_pages {
            let Ok(page) = u32::try_from(offset / u64::from(size) + 1) else {
                break;
            };
            let ListPage { applicants, sent } = self.apply_page(page, size).await?;
            let decoded = applicants.len();
            let mut fresh = 0;
            for applicant in applicants {
                if seen.insert(applicant.appid.clone()) {
                    all.push(applicant);
                    fresh += 1;
                }
            }
            if sent == 0 {
                self.note_paging(false);
                let unproven = was_broken && first_full && !later_fresh;
                return Ok(Listing {
                    applicants: all,
                    complete: !skipped && !unproven,
                });
            }
            let sent = u32::try_from(sent).unwrap_or(u32::MAX);
            if offset == 0 {
                first_full = sent >= size;
            } else if fresh > 0 {
                later_fresh = true;
            }
            if sent >= size {
                // A full page of newcomers after a short one: that short page was a cap.
                if let Some(cap) = short_seen.take()
                    && fresh > 0
                    && cap == size
                {
                    self.note_cap(cap);
                }
                // One such page can be items shifting under us (applicants arriving while
                // paging); two in a row is a WeChat answering the same page whatever `page` says.
                if decoded > 0 && fresh == 0 {
                    skipped = true;
                    stale_pages += 1;
                    if stale_pages >= 2 {
                        self.note_paging(true);
                        return Ok(Listing {
                            applicants: all,
                            complete: false,
                        });
                    }
                } else if fresh > 0 {
                    stale_pages = 0;
                }
                // More than asked counts as a full page: the next one is asked by number.
                offset += u64::from(size);
            } else {
                // The end, or a cap on `num`: go on from here with a size that divides the
                // position, so that page numbers still land on it.
                offset += u64::from(sent);
                // At most `sent`, and `sent` itself when it divides the position.
                size = gcd(offset, u64::from(sent)) as u32;
                short_seen = Some(sent);
            }
        }
        Err(WeChatError::TooManyPages {
            pages: self.max_pages,
        })
    }

    /// Records whether WeChat's paging looked broken, logging each change once.
    fn note_paging(&self, broken: bool) {
        let was = self.paging.broken.swap(broken, Ordering::Relaxed);
        if broken && !was {
            tracing::warn!(
                page_size = self.page_size,
                "WeChat's paging looks broken: it answers the same applicants whatever page is \
                 asked for; listing only what the first page shows"
            );
        } else if was && !broken {
            tracing::info!("WeChat's paging works again");
        }
    }

    /// Logs, once per value, the page size WeChat seems to honour below the configured one.
    fn note_cap(&self, cap: u32) {
        if self.paging.cap.swap(cap, Ordering::Relaxed) != cap {
            tracing::info!(
                honoured = cap,
                asked = self.page_size,
                "WeChat seems to cap num: it sends at most {cap} applicants per page; paging by position"
            );
        }
    }

    /// Approves a pending applicant (`dev_agree`).
    pub async fn agree(&self, appid: &AppId) -> Result<(), WeChatError> {
        self.agree_before(appid, None).await
    }

    /// Refuses a pending applicant (`dev_refuse`) with a reason; an empty reason is refused here.
    pub async fn refuse(&self, appid: &AppId, reason: &str) -> Result<(), WeChatError> {
        self.refuse_before(appid, reason, None).await
    }

    /// Deletes a refused or timed-out applicant (`dev_delete`).
    pub async fn delete(&self, appid: &AppId) -> Result<(), WeChatError> {
        self.delete_before(appid, None).await
    }

    /// [`Self::agree`], sending (or resending after -1) only before `until`.
    pub async fn agree_before(
        &self,
        appid: &AppId,
        until: Option<Instant>,
    ) -> Result<(), WeChatError> {
        self.write("dev_agree", appid, None, until).await
    }

    /// [`Self::refuse`], sending (or resending after -1) only before `until`.
    pub async fn refuse_before(
        &self,
        appid: &AppId,
        reason: &str,
        until: Option<Instant>,
    ) -> Result<(), WeChatError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(WeChatError::InvalidRequest(
                "a refusal needs a reason".to_owned(),
            ));
        }
        self.write("dev_refuse", appid, Some(reason), until).await
    }

    /// [`Self::delete`], sending (or resending after -1) only before `until`.
    pub async fn delete_before(
        &self,
        appid: &AppId,
        until: Option<Instant>,
    ) -> Result<(), WeChatError> {
        self.write("dev_delete", appid, None, until).await
    }

    /// A write; with `until`, no send or resend leaves after that moment (the process was paused
    /// or starved past the time its caller gave it): [`WeChatError::TooLate`], as
    /// [`WeChatError::NotSent`] when nothing went out before, else as an unknown outcome.
    async fn write(
        &self,
        action: &'static str,
        appid: &AppId,
        reason: Option<&str>,
        until: Option<Instant>,
    ) -> Result<(), WeChatError> {
        let request = DevPluginRequest {
            action,
            appid: Some(appid.as_str()),
            page: None,
            num: None,
            reason,
        };
        match self.call(&request, Kind::Write(until), read_answer).await {
            Ok(_) => Ok(()),
            Err(failure) => Err(write_error(action, appid, failure)),
        }
    }

    /// Sends one request with the token, retrying per `kind`. Returns the decoded answer when
    /// errcode is 0.
    async fn call<T>(
        &self,
        request: &DevPluginRequest<'_>,
        kind: Kind,
        decode: Decoder<T>,
    ) -> Result<T, Failure> {
        let mut delays = self.retry.delays();
        let mut token_retried = false;
        let mut maybe_applied = false;
        let mut busy_seen = false;
        loop {
            let (error, sent) = match self.tokens.token().await {
                Err(e) => (e, false),
                // Checked after the token, the last wait before the send: nothing between this
                // check and the request leaving awaits anything but the connection.
                Ok(_) if kind.too_late() => {
                    return Err(Failure {
                        error: WeChatError::TooLate,
                        maybe_applied,
                        busy_before: busy_seen,
                    });
                }
                Ok(token) => match self.send_once(request, &token, decode).await {
                    Ok(value) => return Ok(value),
                    Err(e) if e.is_token_error() && !token_retried => {
                        token_retried = true;
                        self.tokens.invalidate(&token).await;
                        tracing::info!(
                            action = request.action,
                            errcode = e.errcode(),
                            "token rejected; retrying once with a new one"
                        );
                        continue;
                    }
                    // A connection never made carried nothing.
                    Err(
                        e @ WeChatError::Transport {
                            kind: TransportKind::Connect,
                            ..
                        },
                    ) => (e, false),
                    Err(e) => (e, true),
                },
            };
            let busy_before = busy_seen;
            maybe_applied |= sent;
            busy_seen |= sent && error.errcode() == Some(SYSTEM_BUSY);
            // A write that reached WeChat is resent only on -1 (busy; whether it was applied
            // anyway shows in the resend's answer); a failure before sending (token fetch,
            // connect) is safe to retry for both kinds.
            let retry = match (kind, sent) {
                (Kind::Read, _) | (Kind::Write(_), false) => error.is_retryable_read(),
                (Kind::Write(_), true) => error.errcode() == Some(SYSTEM_BUSY),
            };
            if retry && let Some(delay) = delays.next() {
                tracing::warn!(action = request.action, error = %error, ?delay, "WeChat call failed; retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
            return Err(Failure {
                error,
                maybe_applied,
                busy_before,
            });
        }
    }

    async fn send_once<T>(
        &self,
        request: &DevPluginRequest<'_>,
        token: &AccessToken,
        decode: Decoder<T>,
    ) -> Result<T, WeChatError> {
        let mut url = self.endpoint.clone();
        if let Some(token) = token.expose() {
            url.query_pairs_mut().append_pair("access_token", token);
        }
        let response = self
            .http
            .post(url)
            .json(request)
            .send()
            .await
            .map_err(WeChatError::from_reqwest)
            .inspect_err(|e| {
                crate::telemetry::wechat_call(&self.name, request.action, e.metric_label())
            })?;
        let through_cloud = response.headers().contains_key(CLOUD_CALL_HEADER);
        let value = match read_body(response).await {
            Ok((status, bytes)) => decode(status, &bytes),
            Err(e) => Err(e),
        };
        crate::telemetry::wechat_call(
            &self.name,
            request.action,
            value
                .as_ref()
                .map_or_else(WeChatError::metric_label, |_| "0".to_owned()),
        );
        let value = value?;
        tracing::debug!(action = request.action, "WeChat answered ok");
        if token.expose().is_none()
            && !through_cloud
            && !self.not_cloud_logged.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                action = request.action,
                "WeChat answered without x-openapi-seqid: this is not going through Cloud Run's cloud call (WECHAT_TOKEN_MODE=cloudrun works only inside WeChat Cloud Run, with WECHAT_API_BASE=http://api.weixin.qq.com)"
            );
        }
        Ok(value)
    }
}

/// Turns an answer's HTTP status and body into a result.
type Decoder<T> = fn(u16, &[u8]) -> Result<T, WeChatError>;

/// What a failed write tells its caller: nothing was sent, the outcome is unknown, or WeChat's
/// own answer.
fn write_error(action: &'static str, appid: &AppId, failure: Failure) -> WeChatError {
    let Failure {
        error,
        maybe_applied,
        busy_before,
    } = failure;
    let unclear = matches!(
        error,
        WeChatError::Transport { .. }
            | WeChatError::Http { .. }
            | WeChatError::Redirect { .. }
            | WeChatError::Decode { .. }
            | WeChatError::TooLate
    );
    // After a -1, "not pending" / "not in the list" most likely means the busy write was applied.
    let stale_after_busy = busy_before
        && matches!(error, WeChatError::Api { code, .. } if STALE_STATE.contains(&code));
    if stale_after_busy || (unclear && maybe_applied) {
        WeChatError::OutcomeUnknown {
            action,
            appid: appid.to_string(),
            cause: Box::new(error),
        }
    } else if unclear {
        WeChatError::NotSent {
            action,
            appid: appid.to_string(),
            cause: Box::new(error),
        }
    } else {
        error
    }
}

/// Greatest common divisor, for the page size that divides a listing's position.
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Reads a devplugin answer: HTTP status first, then JSON, then `errcode` (always, before
/// anything else), returning the JSON when errcode is 0.
pub fn read_answer(status: u16, bytes: &[u8]) -> Result<Value, WeChatError> {
    if !(200..300).contains(&status) {
        return Err(WeChatError::Http { status });
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| WeChatError::decode(status, &describe_bad_body(bytes, &e)))?;
    let Some(code) = value.get("errcode").and_then(lenient_i64) else {
        return Err(WeChatError::decode(status, "the answer has no errcode"));
    };
    if code != 0 {
        let errmsg = value
            .get("errmsg")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Err(WeChatError::api(code, errmsg));
    }
    Ok(value)
}

/// Decodes a whole `dev_apply_list` answer body into applicants (what [`WeChatClient::apply_list`]
/// does after the HTTP call); public so the decoder can be fuzzed directly.
pub fn decode_apply_list_answer(status: u16, bytes: &[u8]) -> Result<Vec<Applicant>, WeChatError> {
    decode_apply_list_page(status, bytes).map(|page| page.applicants)
}

/// Decodes a whole `dev_apply_list` answer body into a page: the applicants that decoded and the
/// number of items sent.
pub fn decode_apply_list_page(status: u16, bytes: &[u8]) -> Result<ListPage, WeChatError> {
    if !(200..300).contains(&status) {
        return Err(WeChatError::Http { status });
    }
    let answer = answer::RawAnswer::parse(bytes)
        .map_err(|e| WeChatError::decode(status, &describe_bad_body(bytes, &e)))?;
    let Some(code) = answer.errcode() else {
        return Err(WeChatError::decode(status, "the answer has no errcode"));
    };
    if code != 0 {
        return Err(WeChatError::api(code, &answer.errmsg()));
    }
    let (applicants, sent) = answer
        .into_page()
        .map_err(|kind| not_a_list(status, kind))?;
    Ok(ListPage { applicants, sent })
}

/// A listing whose `apply_list` is neither a list nor null: a failed read, never an empty list
/// (an empty one would close every card as gone).
fn not_a_list(status: u16, kind: &str) -> WeChatError {
    WeChatError::decode(status, &format!("apply_list is {kind}, not a list"))
}

/// What kind of JSON value `value` is, for errors that must not quote it.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Most bytes read of any WeChat answer. A listing page of 50 applicants is tens of KB; this is
/// far above any real answer and keeps a hostile or broken one from taking the memory.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// An answer's status and body: a redirect is an error naming where it pointed (never followed),
/// a body over [`MAX_ANSWER_BYTES`] is refused unread, and a non-2xx body is not read at all.
async fn read_body(mut response: reqwest::Response) -> Result<(u16, Vec<u8>), WeChatError> {
    let status = response.status().as_u16();
    if response.status().is_redirection() {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map_or_else(
                || "nowhere (no Location)".to_owned(),
                |v| describe_location(&String::from_utf8_lossy(v.as_bytes())),
            );
        return Err(WeChatError::Redirect { status, location });
    }
    if !response.status().is_success() {
        return Ok((status, Vec::new()));
    }
    let too_big = || {
        WeChatError::decode(
            status,
            &format!(
                "the answer is larger than 8 MiB ({MAX_ANSWER_BYTES} bytes): stopped reading it"
            ),
        )
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(WeChatError::from_reqwest)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// Where a redirect pointed, without its query or fragment (a classic token URL carries the
/// AppSecret there), redacted and cut.
fn describe_location(location: &str) -> String {
    let shown = match Url::parse(location.trim()) {
        Ok(mut url) => {
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => location
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    cut_outside_text(&crate::redact::redact(&shown))
}

/// Says what kind of body came back instead of JSON, without quoting much of it.
fn describe_bad_body(bytes: &[u8], error: &serde_json::Error) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).to_ascii_lowercase();
    let trimmed = head.trim_start();
    if trimmed.starts_with("<!doctype") || trimmed.starts_with("<html") || trimmed.starts_with('<')
    {
        format!("an HTML page ({} bytes), not JSON", bytes.len())
    } else if bytes.is_empty() {
        "an empty body, not JSON".to_owned()
    } else {
        format!("not valid JSON ({error})")
    }
}

/// The reference decoder, over a parsed `Value`: the streaming one in `answer` must agree with it
/// on every input (tested). Keeps every item that has a usable appid and skips those that do not.
#[cfg(test)]
fn decode_apply_list(answer: &Value) -> Vec<Applicant> {
    let Some(items) = answer.get("apply_list").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let decoded = decode_applicant(item);
            if decoded.is_none() {
                tracing::warn!("skipping an apply_list item without a valid appid");
            }
            decoded
        })
        .collect()
}

#[cfg(test)]
fn decode_applicant(item: &Value) -> Option<Applicant> {
    let appid = AppId::parse(item.get("appid").and_then(lenient_string)?.as_str()).ok()?;
    let status = item
        .get("status")
        .and_then(lenient_i64)
        .map_or(ApplyStatus::Unknown(0), ApplyStatus::from_code);
    let text = |key: &str| {
        item.get(key)
            .and_then(lenient_string)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let applied_at = item
        .get("create_time")
        .and_then(lenient_i64)
        .and_then(answer::application_time);
    let categories = item
        .get("categories")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| {
                    let first = c.get("first").and_then(lenient_string).unwrap_or_default();
                    let second = c.get("second").and_then(lenient_string).unwrap_or_default();
                    (!first.is_empty() || !second.is_empty()).then_some(Category { first, second })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Applicant {
        appid,
        status,
        nickname: text("nickname"),
        avatar_url: text("headimgurl"),
        reason: text("reason"),
        apply_url: text("apply_url"),
        applied_at,
        categories,
    })
}

/// A number, or a string holding one (WeChat sends `create_time` as either).
fn lenient_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A string, or a number written as one.
#[cfg(test)]
fn lenient_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer in the official `dev_apply_list` example, verbatim.
    const SEED_LIST_EXAMPLE: &str = r#"{
      "errcode": 0,
      "errmsg": "ok",
      "apply_list": [{
        "appid": "xxxxxxxxxxxxx",
        "status": 1,
        "nickname": "名称",
        "headimgurl": "**********",
        "reason": "polo has gone",
        "apply_url": "*******",
        "create_time": "1536305096",
        "categories": [{
          "first": "IT科技",
          "second": "硬件与设备"
        }]
      }]
    }"#;

    #[test]
    fn decodes_the_seed_documents_list_example() {
        let value: Value = serde_json::from_str(SEED_LIST_EXAMPLE).unwrap();
        let list = decode_apply_list(&value);
        assert_eq!(list.len(), 1);
        let a = &list[0];
        assert_eq!(a.appid.as_str(), "xxxxxxxxxxxxx");
        assert_eq!(a.status, ApplyStatus::Pending);
        assert_eq!(a.nickname.as_deref(), Some("名称"));
        assert_eq!(a.reason.as_deref(), Some("polo has gone"));
        assert_eq!(a.applied_at.map(|t| t.as_second()), Some(1_536_305_096));
        assert_eq!(
            a.categories,
            vec![Category {
                first: "IT科技".into(),
                second: "硬件与设备".into()
            }]
        );
    }

    #[test]
    fn tolerates_loose_items_and_skips_ones_without_appid() {
        let value = serde_json::json!({"errcode":0,"apply_list":[
            {"appid":"wx1", "status": 9, "create_time": 1536305096, "nickname": null, "categories": []},
            {"status": 1},
            {"appid":"not an appid", "status": 1},
            {"appid":"wx2", "status": "3"}
        ]});
        let list = decode_apply_list(&value);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].status, ApplyStatus::Unknown(9));
        assert_eq!(list[0].nickname, None);
        assert_eq!(
            list[0].applied_at.map(|t| t.as_second()),
            Some(1_536_305_096)
        );
        assert_eq!(list[1].status, ApplyStatus::Refused);
        assert_eq!(list[1].applied_at, None);
    }

    #[test]
    fn decodes_the_seed_documents_status_change_answer() {
        let answer = read_answer(200, br#"{ "errcode": 0, "errmsg": "ok" }"#).unwrap();
        assert_eq!(answer["errmsg"], "ok");
        let listed = decode_apply_list_answer(200, SEED_LIST_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(listed.len(), 1);
    }

    #[test]
    fn errcode_is_read_before_anything_else() {
        let err =
            read_answer(200, br#"{"errcode":89240,"errmsg":"x","apply_list":[]}"#).unwrap_err();
        assert_eq!(err.errcode(), Some(89240));
        let err = read_answer(200, br#"{"errcode":"40001","errmsg":"string code"}"#).unwrap_err();
        assert_eq!(err.errcode(), Some(40001));
        assert!(matches!(
            read_answer(200, b"{}"),
            Err(WeChatError::Decode { .. })
        ));
        assert!(matches!(
            read_answer(502, b"<html>"),
            Err(WeChatError::Http { status: 502 })
        ));
    }

    #[test]
    fn describes_html_bodies() {
        let err = serde_json::from_slice::<Value>(b"<html>").unwrap_err();
        assert!(describe_bad_body(b"<html><body>502</body></html>", &err).contains("HTML page"));
        assert!(describe_bad_body(b"", &err).contains("empty"));
    }

    /// The reference: parse to a `Value`, then decode.
    fn reference(status: u16, bytes: &[u8]) -> Result<Vec<Applicant>, WeChatError> {
        let value = read_answer(status, bytes)?;
        match value.get("apply_list") {
            Some(list) if !list.is_array() && !list.is_null() => {
                Err(not_a_list(status, json_kind(list)))
            }
            _ => Ok(decode_apply_list(&value)),
        }
    }

    fn same(bytes: &[u8]) {
        let (streamed, reference) = (decode_apply_list_answer(200, bytes), reference(200, bytes));
        match (&streamed, &reference) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", String::from_utf8_lossy(bytes)),
            (Err(a), Err(b)) => assert_eq!(
                (a.errcode(), a.to_string()),
                (b.errcode(), b.to_string()),
                "{}",
                String::from_utf8_lossy(bytes)
            ),
            _ => panic!(
                "decoders disagree on {}: {streamed:?} vs {reference:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    #[test]
    fn the_streaming_decoder_agrees_with_the_reference_on_odd_answers() {
        for body in [
            SEED_LIST_EXAMPLE,
            r#"{"errcode":0,"apply_list":[{"appid":"wx1234567890abcdef","status":"1","create_time":"1700000000","categories":{"first":"x"}}]}"#,
            r#"{"errcode":0,"apply_list":[7,"x",null,[],{"appid":12345678901},{"appid":{"a":1}},{"appid":"wx1234567890abcdef","status":18446744073709551615,"create_time":1.5e9,"nickname":3.25,"categories":[{"first":1,"second":null},5,{"second":"b"},{}]}]}"#,
            r#"{"errcode":0,"apply_list":{"appid":"wx1234567890abcdef"}}"#,
            r#"{"errcode":0,"apply_list":"nobody"}"#,
            r#"{"errcode":0,"apply_list":12}"#,
            r#"{"errcode":0,"apply_list":false}"#,
            r#"{"errcode":0,"apply_list":null}"#,
            r#"{"errcode":0,"apply_list":"x","apply_list":[]}"#,
            r#"{"errcode":0,"apply_list":[],"apply_list":{}}"#,
            r#"{"errcode":45011,"apply_list":"x"}"#,
            r#"{"errcode":0,"apply_list":[{"appid":"wxaaaaaaaaaaaaaaaa","appid":"wx1234567890abcdef","status":2,"status":1}],"apply_list":[]}"#,
            r#"{"errcode":"0","errmsg":5}"#,
            r#"{"errcode":-1,"errmsg":"system error","apply_list":[{"appid":"wx1234567890abcdef"}]}"#,
            r#"{"errcode":40001.0,"errmsg":"invalid credential"}"#,
            r#"{"errcode":null}"#,
            r#"[1,2]"#,
            r#""text""#,
            r#"{"errcode":0} trailing"#,
            r#"{"errcode":0,"apply_list":[{"appid":" wx1234567890abcdef ","reason":"  ","nickname":"\u5c71\u6d77"}]}"#,
        ] {
            same(body.as_bytes());
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            "(wx[0-9a-f]{16}| ?[0-9]{1,12}|.{0,12})".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::hash_map(
                    "(appid|status|nickname|reason|create_time|categories|first|second|x)",
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn the_streaming_decoder_agrees_with_the_reference(
            items in proptest::collection::vec(json_value(), 0..6),
            errcode in json_value(),
            use_errcode in proptest::bool::ANY,
        ) {
            let mut body = serde_json::json!({ "apply_list": items });
            body["errcode"] = if use_errcode { errcode } else { serde_json::json!(0) };
            same(body.to_string().as_bytes());
        }

        #[test]
        fn the_decoders_agree_on_an_apply_list_of_any_shape(list in json_value()) {
            let body = serde_json::json!({ "errcode": 0, "apply_list": list });
            same(body.to_string().as_bytes());
        }
    }
}
