//! A local WeChat: the token endpoints and `/wxa/devplugin`, following the state machine and error
//! codes in docs/wechat-api.md#the-sandbox, seeded with realistic applicants. The tests, the demo
//! and a cautious team's staging run use it instead of real applicants; a control API under
//! `/__sandbox/` plays the WeChat console and injects faults.
//!
//! Knobs for what the public documents leave open, each a [`Sandbox`] method and a control call:
//! - paging ([`Paging`], `GET`/`POST /__sandbox/paging` with `{"max_num": 10, "ignore_page": false}`):
//!   `max_num` caps `num` silently, `ignore_page` answers page 1 whatever `page` says;
//! - faults ([`Fault`], `POST /__sandbox/faults` with `{"target", "kind", "times", "skip", ...}`):
//!   `errcode`, `http`, `non_json`, `delay` and `new_applicant_first` for any call;
//!   `empty_list` (errcode 0, no `apply_list`), `empty_list_array` (`"apply_list": []`) and
//!   `truncate` (`"n"`: only the page's first n items) and `first_page` (this call answered as
//!   page 1: paging ignored for a moment, met mid-listing) for `dev_apply_list`;
//!   `applied_then_errcode` (`"errcode"`: the write takes effect, the answer carries the code) for
//!   writes; the hostile and broken answers of issue 22: `expires_in` (`"value"`: any JSON, a real
//!   token with that lifetime) for the token endpoints, `redirect` (`"status"` 3xx, `"location"`),
//!   `long_errmsg` (`"errcode"`, `"n"` characters), `body` (`"body"`: this exact 200 answer) and
//!   `oversized` (`"n"` bytes) for any call, `apply_list` (`"value"`: any JSON where the list
//!   belongs) for `dev_apply_list`. A fault matches only calls it applies to.

mod component;
mod control;
mod seed;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use seed::Category;

/// WeChat's application statuses as the sandbox keeps and answers them
/// (docs/wechat-api.md#statuses).
pub mod apply_status {
    /// 申请中: waiting for a decision; the only status agree and refuse apply to.
    pub const PENDING: i64 = 1;
    /// 申请通过.
    pub const APPROVED: i64 = 2;
    /// 被拒绝: deletable.
    pub const REFUSED: i64 = 3;
    /// 申请已超时: deletable.
    pub const EXPIRED: i64 = 4;
}

/// The errcodes the sandbox answers, as WeChat does (docs/wechat-api.md#error-codes).
pub mod errcode {
    /// Success.
    pub const OK: i64 = 0;
    /// System busy.
    pub const SYSTEM_BUSY: i64 = -1;
    /// The access token is invalid or not the latest.
    pub const INVALID_CREDENTIAL: i64 = 40001;
    /// Not the configured AppID.
    pub const INVALID_APPID: i64 = 40013;
    /// Not a token the sandbox issued.
    pub const INVALID_TOKEN: i64 = 40014;
    /// Not the configured AppSecret.
    pub const INVALID_SECRET: i64 = 40125;
    /// The caller's IP is not whitelisted.
    pub const IP_NOT_WHITELISTED: i64 = 40164;
    /// The call carried no access token (and did not come through Cloud Run's cloud call).
    pub const TOKEN_MISSING: i64 = 41001;
    /// The access token expired.
    pub const TOKEN_EXPIRED: i64 = 42001;
    /// The daily quota is used up.
    pub const DAILY_QUOTA: i64 = 45009;
    /// The per-minute limit is hit.
    pub const RATE_LIMITED: i64 = 45011;
    /// A missing or malformed field.
    pub const BAD_REQUEST: i64 = 47001;
    /// The API is not authorized for this account.
    pub const UNAUTHORIZED: i64 = 48001;
    /// Agree or refuse on an applicant that is not pending.
    pub const ONLY_PENDING: i64 = 89240;
    /// Delete on an applicant that is neither refused nor timed out.
    pub const ONLY_REFUSED_OR_EXPIRED: i64 = 89241;
    /// An appid not in the application list.
    pub const NOT_LISTED: i64 = 89242;
    /// Delete on a pending applicant.
    pub const PENDING_NOT_DELETABLE: i64 = 89243;
    /// Third-party platform: the caller's IP is not on the platform's whitelist.
    pub const PLATFORM_IP_NOT_WHITELISTED: i64 = 61004;
    /// Third-party platform: the `component_verify_ticket` expired.
    pub const TICKET_EXPIRED: i64 = 61005;
    /// Third-party platform: the `component_verify_ticket` is not one WeChat pushed.
    pub const TICKET_INVALID: i64 = 61006;
    /// Third-party platform: not the platform's component AppID.
    pub const INVALID_COMPONENT: i64 = 61011;
    /// Third-party platform: the authorizer's refresh token is not valid (authorize again).
    pub const REFRESH_TOKEN_INVALID: i64 = 61023;
    /// Cloud Run: the path is not on the environment's 微信令牌 whitelist.
    pub const CLOUD_NOT_WHITELISTED: i64 = 85107;
    /// Cloud Run: the cloud call is not ready yet (just after a first deploy).
    pub const CLOUD_NOT_READY: i64 = 85113;
}

/// How the sandbox is set up.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The AppID it accepts.
    pub appid: String,
    /// The AppSecret it accepts.
    pub secret: String,
    /// Pending applicants seeded at start.
    pub applicants: usize,
    /// Seed for the generated applicants.
    pub seed: u64,
    /// Token lifetime.
    pub token_ttl: Duration,
    /// A new pending applicant arrives on this period.
    pub arrival_every: Option<Duration>,
    /// The third-party platform's component AppID (authorizer mode).
    pub component_appid: String,
    /// Its component AppSecret.
    pub component_secret: String,
    /// Serve as WeChat does inside Cloud Run with 开放接口服务 on: a devplugin call with no
    /// `access_token` is accepted (the platform's cloud call adds the credential), and every
    /// devplugin answer carries `x-openapi-seqid`. Off, a call without a token gets 41001.
    pub cloud_run: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            appid: "wx5a4db0c0ffee0001".to_owned(),
            secret: "sandbox-secret".to_owned(),
            applicants: 8,
            seed: 42,
            token_ttl: Duration::from_secs(7200),
            arrival_every: None,
            component_appid: "wx5a4db0c0ffee0c01".to_owned(),
            component_secret: "sandbox-component-secret".to_owned(),
            cloud_run: false,
        }
    }
}

/// An applicant as the sandbox keeps it (WeChat's fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SandboxApplicant {
    pub appid: String,
    /// WeChat status code.
    pub status: i64,
    /// Name.
    pub nickname: String,
    /// Avatar URL.
    pub headimgurl: String,
    /// The applicant's reason.
    pub reason: String,
    /// Mini-program code URL.
    pub apply_url: String,
    /// Unix seconds.
    pub create_time: i64,
    /// Categories.
    pub categories: Vec<Category>,
    /// The reason it was refused with, once refused.
    pub refuse_reason: Option<String>,
}

/// A new applicant to add; anything left out is generated.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewApplicant {
    /// Its appid.
    pub appid: Option<String>,
    /// Name.
    pub nickname: Option<String>,
    /// Reason.
    pub reason: Option<String>,
    /// Status code (default 1, pending).
    pub status: Option<i64>,
    /// `(first, second)` category pairs.
    pub categories: Option<Vec<(String, String)>>,
    /// Unix seconds (default now).
    pub create_time: Option<i64>,
}

/// Which calls a fault applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultTarget {
    /// Every call.
    Any,
    /// Both token endpoints.
    Token,
    /// One devplugin action, e.g. `dev_agree`.
    Action(String),
}

/// What an injected fault does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 200 with this errcode; nothing is applied.
    Errcode(i64),
    /// This HTTP status; nothing is applied.
    Http(u16),
    /// HTTP 200 with an HTML page; nothing is applied.
    NonJson,
    /// The call is applied, then the answer waits this long.
    Delay(Duration),
    /// A new pending applicant applies just before the call is handled.
    NewApplicantFirst,
    /// `dev_apply_list` only: errcode 0 with no `apply_list` key at all.
    EmptyList,
    /// `dev_apply_list` only: errcode 0 with `"apply_list": []`.
    EmptyListArray,
    /// `dev_apply_list` only: the page is served, but with only its first n items.
    Truncate(usize),
    /// `dev_apply_list` only: answered as page 1 whatever `page` says, for this call alone — a
    /// WeChat that ignores `page` for a while, met mid-listing: page 1 comes twice and what
    /// the asked page holds never comes.
    FirstPage,
    /// Writes only: the write is handled as usual (applied when it can be), then the answer
    /// carries this errcode instead (-1: a busy answer to a write that took effect).
    AppliedThenErrcode(i64),
    /// Token endpoints only: a real token is issued, but `expires_in` is this JSON text
    /// (`9223372036854775808`, `-5`, `"soon"`).
    ExpiresIn(String),
    /// This 3xx status with `Location` set to this URL; nothing is applied.
    Redirect(u16, String),
    /// `dev_apply_list` only: errcode 0 with `apply_list` set to this JSON text (`"none"`, `{}`).
    ApplyList(String),
    /// This errcode with an errmsg of this many characters (WeChat's text, then padding).
    LongErrmsg(i64, usize),
    /// HTTP 200 with this exact body; nothing is applied.
    Body(String),
    /// An errcode-0 answer padded to at least this many bytes; nothing is applied.
    Oversized(usize),
}

impl Fault {
    /// Whether this fault can act on a call to `action` (`None`: a token endpoint).
    pub fn applies_to(&self, action: Option<&str>) -> bool {
        match self {
            Self::EmptyList
            | Self::EmptyListArray
            | Self::Truncate(_)
            | Self::FirstPage
            | Self::ApplyList(_) => action == Some("dev_apply_list"),
            Self::ExpiresIn(_) => action.is_none(),
            Self::AppliedThenErrcode(_) => {
                matches!(action, Some("dev_agree" | "dev_refuse" | "dev_delete"))
            }
            _ => true,
        }
    }
}

/// How `dev_apply_list` pages: WeChat documents neither a maximum `num` nor how `page` behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Paging {
    /// Caps `num` silently, as a WeChat with an undocumented maximum would.
    pub max_num: Option<u32>,
    /// Answers page 1 whatever `page` says, as a WeChat that ignores it would.
    pub ignore_page: bool,
}

/// A fault for the next matching calls.
#[derive(Clone, Debug)]
pub struct FaultRule {
    /// Which calls.
    pub target: FaultTarget,
    /// What happens.
    pub fault: Fault,
    /// For how many calls.
    pub times: u32,
    /// Matching calls let through untouched first.
    pub skip: u32,
}

/// Counters for tests and `/__sandbox/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SandboxStats {
    /// `POST /cgi-bin/stable_token` requests.
    pub stable_token_requests: u64,
    /// `GET /cgi-bin/token` requests.
    pub classic_token_requests: u64,
    /// `POST /cgi-bin/component/api_component_token` requests.
    pub component_token_requests: u64,
    /// `POST /cgi-bin/component/api_authorizer_token` requests.
    pub authorizer_token_requests: u64,
    /// `dev_apply_list` calls.
    pub apply_list: u64,
    /// `dev_agree` calls.
    pub agree: u64,
    /// `dev_refuse` calls.
    pub refuse: u64,
    /// `dev_delete` calls.
    pub delete: u64,
    /// All devplugin calls.
    pub devplugin_total: u64,
    /// Writes (agree / refuse / delete) that arrived while another write for the same appid was
    /// still being handled or held by an injected delay: a client that waits for its answers
    /// never makes one.
    pub overlapping_writes: u64,
}

/// One devplugin call as received.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedCall {
    /// The action, when the body had one.
    pub action: Option<String>,
    /// The body (null when it was not JSON).
    pub body: Value,
    /// The errcode answered; `None` for injected non-errcode answers.
    pub errcode: Option<i64>,
    /// The appid the body names, if any.
    pub appid: Option<String>,
    /// A write that arrived while another write for the same appid was in flight.
    pub overlapped: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenState {
    Valid,
    Revoked,
    Expired,
}

struct Token {
    expires_at: u64,
    state: TokenState,
}

struct World {
    applicants: Vec<SandboxApplicant>,
    generator: seed::Generator,
    started: Instant,
    offset: Duration,
    tokens: HashMap<String, Token>,
    newest: Option<String>,
    stable: Option<String>,
    classic: Option<String>,
    faults: Vec<FaultRule>,
    paging: Paging,
    /// [`SandboxConfig::cloud_run`].
    cloud_run: bool,
    /// The third-party platform's tickets, component tokens and the authorizer's refresh token.
    platform: component::Platform,
    stats: SandboxStats,
    calls: Vec<RecordedCall>,
    /// Writes being handled per appid, for [`SandboxStats::overlapping_writes`].
    writing: HashMap<String, u32>,
    /// When the `dev_apply_list` answer that first listed each appid left the handler.
    first_listed: HashMap<String, Instant>,
    /// When the latest `dev_apply_list` answers left the handler, oldest first (at most
    /// [`LIST_ANSWERS_KEPT`]: a sandbox serving staging for weeks must not grow with every call).
    list_answers: VecDeque<Instant>,
}

impl World {
    fn now(&self) -> u64 {
        (self.started.elapsed() + self.offset).as_secs()
    }

    fn token_error(&self, token: Option<&str>) -> Option<i64> {
        let Some(token) = token else {
            return (!self.cloud_run).then_some(errcode::TOKEN_MISSING);
        };
        let Some(token) = self.tokens.get(token) else {
            return Some(errcode::INVALID_CREDENTIAL);
        };
        match token.state {
            TokenState::Revoked => Some(errcode::INVALID_CREDENTIAL),
            TokenState::Expired => Some(errcode::TOKEN_EXPIRED),
            TokenState::Valid if self.now() >= token.expires_at => Some(errcode::TOKEN_EXPIRED),
            TokenState::Valid => None,
        }
    }

    fn remaining(&self, token: &str) -> Option<u64> {
        let t = self.tokens.get(token)?;
        (t.state == TokenState::Valid && t.expires_at > self.now())
            .then(|| t.expires_at - self.now())
    }

    fn issue(&mut self, ttl: Duration) -> String {
        let token = self.generator.token();
        let expires_at = self.now() + ttl.as_secs();
        self.tokens.insert(
            token.clone(),
            Token {
                expires_at,
                state: TokenState::Valid,
            },
        );
        self.newest = Some(token.clone());
        token
    }

    fn take_fault(&mut self, call: &Call<'_>) -> Option<Fault> {
        let action = match call {
            Call::Token => None,
            Call::Action(a) => Some(*a),
        };
        let index = self.faults.iter().position(|r| {
            r.fault.applies_to(action)
                && match (&r.target, call) {
                    (FaultTarget::Any, _) => true,
                    (FaultTarget::Token, Call::Token) => true,
                    (FaultTarget::Action(a), Call::Action(b)) => a == b,
                    _ => false,
                }
        })?;
        let rule = &mut self.faults[index];
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        let fault = rule.fault.clone();
        rule.times = rule.times.saturating_sub(1);
        if rule.times == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }

    fn add(&mut self, new: NewApplicant) -> String {
        let applicant = self.generator.applicant(new);
        let appid = applicant.appid.clone();
        self.applicants.retain(|a| a.appid != appid);
        self.applicants.insert(0, applicant);
        appid
    }
}

enum Call<'a> {
    Token,
    Action(&'a str),
}

struct Inner {
    config: SandboxConfig,
    state: Mutex<World>,
}

/// The sandbox. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

/// A sandbox serving on a port; stops when dropped.
pub struct RunningSandbox {
    /// The sandbox, for control and inspection.
    pub sandbox: Sandbox,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    stop: CancellationToken,
}

impl RunningSandbox {
    /// Stops serving.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Sandbox {
    /// A sandbox with seeded applicants.
    pub fn new(config: SandboxConfig) -> Self {
        let mut generator = seed::Generator::new(config.seed);
        let now = jiff::Timestamp::now().as_second();
        let applicants = generator.seeded(config.applicants, now);
        let state = World {
            applicants,
            generator,
            started: Instant::now(),
            offset: Duration::ZERO,
            tokens: HashMap::new(),
            newest: None,
            stable: None,
            classic: None,
            faults: Vec::new(),
            paging: Paging::default(),
            cloud_run: config.cloud_run,
            platform: component::Platform::new(),
            stats: SandboxStats::default(),
            calls: Vec::new(),
            writing: HashMap::new(),
            first_listed: HashMap::new(),
            list_answers: VecDeque::new(),
        };
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The HTTP routes: WeChat's and the control API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/cgi-bin/stable_token", post(stable_token))
            .route("/cgi-bin/token", get(classic_token))
            .route(
                "/cgi-bin/component/api_component_token",
                post(component::component_token),
            )
            .route(
                "/cgi-bin/component/api_authorizer_token",
                post(component::authorizer_token),
            )
            .route("/wxa/devplugin", post(devplugin))
            .nest("/__sandbox", control::routes())
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes; runs the arrival task if configured.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = CancellationToken::new();
        let sandbox = self.clone();
        let arriving = stop.clone();
        tokio::spawn(async move { sandbox.serve_arrivals(arriving).await });
        let router = self.router();
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        stop.cancel();
        result
    }

    /// Serves several plugins' WeChat on one listener until `shutdown` fires: the first at the
    /// root, plugin k (counting from 1) under `/plugin/k` — its `api_base` — each with its own
    /// AppID, secret, tokens, applicants and control API. Applicants arrive at the first only.
    pub async fn serve_several(
        sandboxes: Vec<Sandbox>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let mut plugins = sandboxes.into_iter();
        let Some(first) = plugins.next() else {
            return Ok(());
        };
        let mut router = first.router();
        for (k, sandbox) in plugins.enumerate() {
            router = router.nest(&format!("/plugin/{}", k + 2), sandbox.router());
        }
        let stop = CancellationToken::new();
        tokio::spawn(first.clone().serve_arrivals(stop.clone()));
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        stop.cancel();
        result
    }

    /// The configuration of plugin `k` (counting from 1) when one sandbox serves several:
    /// `base`'s for the first, else an AppID and secret of its own and another seed.
    pub fn plugin_config(base: &SandboxConfig, k: usize) -> SandboxConfig {
        if k <= 1 {
            return base.clone();
        }
        SandboxConfig {
            appid: format!("wx5a4db0c0ffee{k:04x}"),
            secret: format!("{}-{k}", base.secret),
            seed: base.seed + k as u64,
            arrival_every: None,
            ..base.clone()
        }
    }

    /// Binds 127.0.0.1 on a free port and serves in a task.
    pub async fn spawn(config: SandboxConfig) -> std::io::Result<RunningSandbox> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sandbox = Self::new(config);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(
            sandbox
                .clone()
                .serve(listener, async move { stopped.cancelled().await }),
        );
        Ok(RunningSandbox {
            sandbox,
            addr,
            base_url: format!("http://{addr}"),
            stop,
        })
    }

    /// A new applicant every `arrival_every` until `stop` fires (nothing without it).
    async fn serve_arrivals(self, stop: CancellationToken) {
        let Some(every) = self.inner.config.arrival_every else {
            return;
        };
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {
                    let appid = self.add_applicant(NewApplicant::default());
                    tracing::info!(%appid, "sandbox: a new applicant applied");
                }
            }
        }
    }

    /// Adds an applicant at the head of the list; returns its appid.
    pub fn add_applicant(&self, new: NewApplicant) -> String {
        self.state().add(new)
    }

    /// Sets a status as the WeChat console would; `false` for an unknown appid.
    pub fn set_status(&self, appid: &str, status: i64) -> bool {
        let mut state = self.state();
        match state.applicants.iter_mut().find(|a| a.appid == appid) {
            Some(a) => {
                a.status = status;
                true
            }
            None => false,
        }
    }

    /// Changes an applicant's details as WeChat would when it re-lists them (a new avatar, a
    /// reworded reason); `false` for an unknown appid.
    pub fn update_applicant(
        &self,
        appid: &str,
        change: impl FnOnce(&mut SandboxApplicant),
    ) -> bool {
        let mut state = self.state();
        match state.applicants.iter_mut().find(|a| a.appid == appid) {
            Some(a) => {
                change(a);
                true
            }
            None => false,
        }
    }

    /// Removes an applicant; `false` if unknown.
    pub fn remove_applicant(&self, appid: &str) -> bool {
        let mut state = self.state();
        let before = state.applicants.len();
        state.applicants.retain(|a| a.appid != appid);
        state.applicants.len() != before
    }

    /// All applicants, newest first (the list order).
    pub fn applicants(&self) -> Vec<SandboxApplicant> {
        self.state().applicants.clone()
    }

    /// One applicant.
    pub fn applicant(&self, appid: &str) -> Option<SandboxApplicant> {
        self.state()
            .applicants
            .iter()
            .find(|a| a.appid == appid)
            .cloned()
    }

    /// Every issued token now answers 42001.
    pub fn expire_tokens(&self) {
        for token in self.state().tokens.values_mut() {
            if token.state == TokenState::Valid {
                token.state = TokenState::Expired;
            }
        }
    }

    /// Every issued token now answers 40001.
    pub fn revoke_tokens(&self) {
        for token in self.state().tokens.values_mut() {
            token.state = TokenState::Revoked;
        }
    }

    /// Moves the simulated clock forward.
    pub fn advance_clock(&self, by: Duration) {
        self.state().offset += by;
    }

    /// Queues a fault.
    pub fn inject(&self, rule: FaultRule) {
        if rule.times > 0 {
            self.state().faults.push(rule);
        }
    }

    /// Sets how `dev_apply_list` pages from the next call on.
    pub fn set_paging(&self, paging: Paging) {
        self.state().paging = paging;
    }

    /// How `dev_apply_list` pages now.
    pub fn paging(&self) -> Paging {
        self.state().paging
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Drops what is left of the queued faults that are `fault` on `target` (a glitch that
    /// ends by time rather than by a count of calls).
    pub fn drop_faults(&self, target: &FaultTarget, fault: &Fault) {
        self.state()
            .faults
            .retain(|r| !(r.target == *target && r.fault == *fault));
    }

    /// Counters.
    pub fn stats(&self) -> SandboxStats {
        self.state().stats.clone()
    }

    /// The instant the sandbox finished answering the `dev_apply_list` call that first listed
    /// `appid` (the answer built and handed to the server), for latency measured at the boundary.
    pub fn first_listed(&self, appid: &str) -> Option<Instant> {
        self.state().first_listed.get(appid).copied()
    }

    /// When the latest `dev_apply_list` answers left the handler, oldest first: a poll's answer
    /// is complete at the last page it read.
    pub fn list_answers(&self) -> Vec<Instant> {
        self.state().list_answers.iter().copied().collect()
    }

    /// Every devplugin call so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.state().calls.clone()
    }

    /// Every token ever issued, for leak checks.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state().tokens.keys().cloned().collect()
    }

    /// The newest token still valid.
    pub fn current_token(&self) -> Option<String> {
        let state = self.state();
        let token = state.newest.clone()?;
        state.remaining(&token).map(|_| token)
    }
}

/// How many list answers' instants the sandbox keeps (about 40 polls of 10,000 applicants).
const LIST_ANSWERS_KEPT: usize = 4096;

fn rid() -> String {
    format!(
        "{:08x}-{:08x}-{:08x}",
        fastrand::u32(..),
        fastrand::u32(..),
        fastrand::u32(..)
    )
}

fn errmsg(code: i64) -> String {
    let text = match code {
        errcode::OK => return "ok".to_owned(),
        errcode::SYSTEM_BUSY => "system error",
        errcode::INVALID_CREDENTIAL => "invalid credential, access_token is invalid or not latest",
        errcode::INVALID_APPID => "invalid appid",
        errcode::INVALID_TOKEN => "invalid access_token",
        errcode::INVALID_SECRET => "invalid appsecret",
        errcode::IP_NOT_WHITELISTED => {
            "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist"
        }
        errcode::TOKEN_MISSING => "access_token missing",
        errcode::TOKEN_EXPIRED => "access_token expired",
        errcode::DAILY_QUOTA => "reach max api daily quota limit",
        errcode::RATE_LIMITED => "api minute-quota reach limit  mustslower  retry next minute",
        errcode::BAD_REQUEST => "data format error",
        errcode::UNAUTHORIZED => "api unauthorized",
        errcode::ONLY_PENDING => "only pending applications can be agreed or refused",
        errcode::ONLY_REFUSED_OR_EXPIRED => "only refused or expired applications can be deleted",
        errcode::NOT_LISTED => "appid not in the application list",
        errcode::PENDING_NOT_DELETABLE => "pending applications cannot be deleted",
        errcode::PLATFORM_IP_NOT_WHITELISTED => "invalid ip 203.0.113.7, not in whitelist",
        errcode::TICKET_EXPIRED => "component_verify_ticket is expired",
        errcode::TICKET_INVALID => "component_verify_ticket is invalid",
        errcode::INVALID_COMPONENT => "invalid component",
        errcode::REFRESH_TOKEN_INVALID => "refresh_token is invalid",
        errcode::CLOUD_NOT_WHITELISTED => "api not in the wxcloud token whitelist",
        errcode::CLOUD_NOT_READY => "cloudbase_token is not ready yet",
        _ => "error",
    };
    format!("{text} rid: {}", rid())
}

fn errcode_answer(code: i64) -> Response {
    axum::Json(json!({ "errcode": code, "errmsg": errmsg(code) })).into_response()
}

/// The answer an injected fault gives, with the errcode it carries (errcode faults only).
type Injected = (Response, Option<i64>);

fn fault_answer(fault: &Fault) -> Option<Injected> {
    match fault {
        Fault::Errcode(code) => Some((errcode_answer(*code), Some(*code))),
        Fault::Http(status) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(((status, "sandbox: injected HTTP error").into_response(), None))
        }
        Fault::NonJson => Some((
            (
                [(header::CONTENT_TYPE, "text/html")],
                "<html><head><title>502 Bad Gateway</title></head><body>sandbox: injected HTML answer</body></html>",
            )
                .into_response(),
            None,
        )),
        Fault::EmptyList => Some((
            axum::Json(json!({ "errcode": errcode::OK, "errmsg": "ok" })).into_response(),
            Some(errcode::OK),
        )),
        Fault::EmptyListArray => Some((
            axum::Json(json!({ "errcode": errcode::OK, "errmsg": "ok", "apply_list": [] })).into_response(),
            Some(errcode::OK),
        )),
        Fault::Redirect(status, location) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
            let location = header::HeaderValue::from_str(location)
                .unwrap_or(header::HeaderValue::from_static("/"));
            Some(((status, [(header::LOCATION, location)]).into_response(), None))
        }
        Fault::ApplyList(json) => Some((
            json_text(format!(r#"{{"errcode":0,"errmsg":"ok","apply_list":{json}}}"#)),
            Some(errcode::OK),
        )),
        Fault::LongErrmsg(code, chars) => {
            let mut text = errmsg(*code);
            let padding = " 请稍后再试 please retry later";
            while text.chars().count() < *chars {
                text.push_str(padding);
            }
            let text: String = text.chars().take(*chars).collect();
            Some((
                axum::Json(json!({ "errcode": code, "errmsg": text })).into_response(),
                Some(*code),
            ))
        }
        Fault::Body(body) => Some((json_text(body.clone()), None)),
        Fault::Oversized(bytes) => {
            let pad = "x".repeat(*bytes);
            Some((
                json_text(format!(
                    r#"{{"errcode":0,"errmsg":"ok","apply_list":[],"padding":"{pad}"}}"#
                )),
                // Recorded as no errcode: nothing was applied, so a log that showed a write
                // answered 0 here would claim a write WeChat never made.
                None,
            ))
        }
        Fault::Delay(_)
        | Fault::NewApplicantFirst
        | Fault::Truncate(_)
        | Fault::FirstPage
        | Fault::AppliedThenErrcode(_)
        | Fault::ExpiresIn(_) => None,
    }
}

/// HTTP 200 with `body` as JSON, whatever it holds.
fn json_text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A fault that changes the handler's answer rather than replacing it.
type Rewrite = Option<Fault>;

/// Applies a fault before handling: answers it, or prepares the delay / new applicant / rewrite.
fn before(state: &mut World, call: &Call<'_>) -> (Option<Injected>, Option<Duration>, Rewrite) {
    match state.take_fault(call) {
        Some(Fault::Delay(d)) => (None, Some(d), None),
        Some(Fault::NewApplicantFirst) => {
            state.add(NewApplicant::default());
            (None, None, None)
        }
        Some(
            rewrite @ (Fault::Truncate(_)
            | Fault::FirstPage
            | Fault::AppliedThenErrcode(_)
            | Fault::ExpiresIn(_)),
        ) => (None, None, Some(rewrite)),
        Some(other) => (fault_answer(&other), None, None),
        None => (None, None, None),
    }
}

/// Changes a handled call's answer as a rewrite fault says.
fn rewrite(fault: Rewrite, mut value: Value, code: i64) -> (Value, i64) {
    match fault {
        Some(Fault::Truncate(n)) => {
            if let Some(items) = value.get_mut("apply_list").and_then(Value::as_array_mut) {
                items.truncate(n);
            }
            (value, code)
        }
        Some(Fault::AppliedThenErrcode(code)) => {
            (json!({ "errcode": code, "errmsg": errmsg(code) }), code)
        }
        _ => (value, code),
    }
}

async fn after(answer: Response, delay: Option<Duration>) -> Response {
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    answer
}

/// A token answer, with `expires_in` as an [`Fault::ExpiresIn`] fault says when there is one.
fn token_answer(token: &str, expires_in: u64, fault: Rewrite) -> Response {
    match fault {
        Some(Fault::ExpiresIn(raw)) => json_text(format!(
            r#"{{"access_token":{},"expires_in":{raw}}}"#,
            Value::from(token)
        )),
        _ => axum::Json(json!({ "access_token": token, "expires_in": expires_in })).into_response(),
    }
}

#[derive(Deserialize)]
struct StableTokenRequest {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    force_refresh: bool,
}

async fn stable_token(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let config = &sb.inner.config;
    let (answer, delay) = {
        let mut state = sb.state();
        state.stats.stable_token_requests += 1;
        let (faulted, delay, rewritten) = before(&mut state, &Call::Token);
        let answer = faulted.map(|(answer, _)| answer).unwrap_or_else(|| {
            let Ok(request) = serde_json::from_slice::<StableTokenRequest>(&body) else {
                return errcode_answer(errcode::BAD_REQUEST);
            };
            if request.grant_type.as_deref() != Some("client_credential") {
                return errcode_answer(errcode::BAD_REQUEST);
            }
            if request.appid.as_deref() != Some(config.appid.as_str()) {
                return errcode_answer(errcode::INVALID_APPID);
            }
            if request.secret.as_deref() != Some(config.secret.as_str()) {
                return errcode_answer(errcode::INVALID_SECRET);
            }
            let current = state
                .stable
                .clone()
                .filter(|t| state.remaining(t).is_some());
            let token = match current {
                Some(t) if request.force_refresh => {
                    if let Some(old) = state.tokens.get_mut(&t) {
                        old.state = TokenState::Revoked;
                    }
                    state.issue(config.token_ttl)
                }
                Some(t) if state.remaining(&t).is_some_and(|r| r > 300) => t,
                _ => state.issue(config.token_ttl),
            };
            state.stable = Some(token.clone());
            let expires_in = state.remaining(&token).unwrap_or(0);
            token_answer(&token, expires_in, rewritten)
        });
        (answer, delay)
    };
    after(answer, delay).await
}

async fn classic_token(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let config = &sb.inner.config;
    let (answer, delay) = {
        let mut state = sb.state();
        state.stats.classic_token_requests += 1;
        let (faulted, delay, rewritten) = before(&mut state, &Call::Token);
        let answer = faulted.map(|(answer, _)| answer).unwrap_or_else(|| {
            if q.get("grant_type").map(String::as_str) != Some("client_credential") {
                return errcode_answer(errcode::BAD_REQUEST);
            }
            if q.get("appid") != Some(&config.appid) {
                return errcode_answer(errcode::INVALID_APPID);
            }
            if q.get("secret") != Some(&config.secret) {
                return errcode_answer(errcode::INVALID_SECRET);
            }
            // Every fetch cuts the previous classic token's life to 5 more minutes.
            let now = state.now();
            if let Some(old) = state.classic.clone()
                && let Some(t) = state.tokens.get_mut(&old)
            {
                t.expires_at = t.expires_at.min(now + 300);
            }
            let token = state.issue(config.token_ttl);
            state.classic = Some(token.clone());
            token_answer(&token, config.token_ttl.as_secs(), rewritten)
        });
        (answer, delay)
    };
    after(answer, delay).await
}

async fn devplugin(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let action = parsed
        .as_ref()
        .and_then(|v| v.get("action"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let appid = parsed
        .as_ref()
        .and_then(|v| v.get("appid"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let is_write = matches!(
        action.as_deref(),
        Some("dev_agree" | "dev_refuse" | "dev_delete")
    );
    let mut listed = Vec::new();
    let is_list = action.as_deref() == Some("dev_apply_list");
    let (answer, delay, _writing) = {
        let mut state = sb.state();
        // Held until the answer leaves (or the client gives up and the handler is dropped).
        let writing = match (&appid, is_write) {
            (Some(appid), true) => Some(Writing::begin(&sb, &mut state, appid)),
            _ => None,
        };
        let overlapped = writing.as_ref().is_some_and(|w| w.overlapped);
        state.stats.devplugin_total += 1;
        match action.as_deref() {
            Some("dev_apply_list") => state.stats.apply_list += 1,
            Some("dev_agree") => state.stats.agree += 1,
            Some("dev_refuse") => state.stats.refuse += 1,
            Some("dev_delete") => state.stats.delete += 1,
            _ => {}
        }
        let (faulted, delay, rewritten) =
            before(&mut state, &Call::Action(action.as_deref().unwrap_or("")));
        let (answer, errcode) = match faulted {
            Some(injected) => injected,
            None => {
                // A page answered as the first is asked as the first.
                let asked = match (&rewritten, parsed.as_ref()) {
                    (Some(Fault::FirstPage), Some(body)) => {
                        let mut body = body.clone();
                        body["page"] = json!(1);
                        Some(body)
                    }
                    _ => parsed.clone(),
                };
                let (value, code) = handle(
                    &mut state,
                    q.get("access_token").map(String::as_str),
                    asked.as_ref(),
                );
                let (value, code) = rewrite(rewritten, value, code);
                listed = unlisted_appids(&state, &value);
                (axum::Json(value).into_response(), Some(code))
            }
        };
        state.calls.push(RecordedCall {
            action,
            body: parsed.clone().unwrap_or(Value::Null),
            errcode,
            appid,
            overlapped,
        });
        (answer, delay, writing)
    };
    let mut answer = after(answer, delay).await;
    if sb.inner.config.cloud_run {
        answer.headers_mut().insert(
            "x-openapi-seqid",
            header::HeaderValue::from_str(&rid()).unwrap_or(header::HeaderValue::from_static("0")),
        );
    }
    if is_list {
        let answered = Instant::now();
        let mut state = sb.state();
        if state.list_answers.len() == LIST_ANSWERS_KEPT {
            state.list_answers.pop_front();
        }
        state.list_answers.push_back(answered);
        for appid in listed {
            state.first_listed.entry(appid).or_insert(answered);
        }
    }
    answer
}

/// The appids a `dev_apply_list` answer lists for the first time.
fn unlisted_appids(state: &World, answer: &Value) -> Vec<String> {
    answer
        .get("apply_list")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("appid").and_then(Value::as_str))
                .filter(|appid| !state.first_listed.contains_key(*appid))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// One write being handled for an appid; counts overlaps on arrival, ends when dropped.
struct Writing {
    sandbox: Sandbox,
    appid: String,
    overlapped: bool,
}

impl Writing {
    fn begin(sandbox: &Sandbox, state: &mut World, appid: &str) -> Self {
        let count = state.writing.entry(appid.to_owned()).or_default();
        let overlapped = *count > 0;
        *count += 1;
        if overlapped {
            state.stats.overlapping_writes += 1;
        }
        Self {
            sandbox: sandbox.clone(),
            appid: appid.to_owned(),
            overlapped,
        }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut state = self.sandbox.state();
        if let Some(count) = state.writing.get_mut(&self.appid) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.writing.remove(&self.appid);
            }
        }
    }
}

fn handle(state: &mut World, token: Option<&str>, body: Option<&Value>) -> (Value, i64) {
    let fail = |code: i64| (json!({ "errcode": code, "errmsg": errmsg(code) }), code);
    if let Some(code) = state.token_error(token) {
        return fail(code);
    }
    let Some(body) = body else {
        return fail(errcode::BAD_REQUEST);
    };
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let appid = text("appid").map(str::to_owned);
    let position = |state: &World| {
        appid
            .as_ref()
            .and_then(|id| state.applicants.iter().position(|a| &a.appid == id))
    };
    match text("action") {
        Some("dev_apply_list") => {
            let number = |key: &str| body.get(key).and_then(Value::as_u64).filter(|n| *n >= 1);
            let (Some(page), Some(num)) = (number("page"), number("num")) else {
                return fail(errcode::BAD_REQUEST);
            };
            let Paging {
                max_num,
                ignore_page,
            } = state.paging;
            let num = max_num.map_or(num, |cap| num.min(u64::from(cap.max(1))));
            let page = if ignore_page { 1 } else { page };
            let start = usize::try_from((page - 1).saturating_mul(num)).unwrap_or(usize::MAX);
            let items: Vec<Value> = state
                .applicants
                .iter()
                .skip(start)
                .take(usize::try_from(num).unwrap_or(usize::MAX))
                .map(|a| {
                    json!({
                        "appid": a.appid, "status": a.status, "nickname": a.nickname,
                        "headimgurl": a.headimgurl, "reason": a.reason, "apply_url": a.apply_url,
                        "create_time": a.create_time.to_string(),
                        "categories": a.categories,
                    })
                })
                .collect();
            (
                json!({ "errcode": errcode::OK, "errmsg": "ok", "apply_list": items }),
                errcode::OK,
            )
        }
        Some(action @ ("dev_agree" | "dev_refuse")) => {
            if appid.is_none() {
                return fail(errcode::BAD_REQUEST);
            }
            let reason = text("reason").map(str::to_owned);
            if action == "dev_refuse" && reason.is_none() {
                return fail(errcode::BAD_REQUEST);
            }
            let Some(i) = position(state) else {
                return fail(errcode::NOT_LISTED);
            };
            let applicant = &mut state.applicants[i];
            if applicant.status != apply_status::PENDING {
                return fail(errcode::ONLY_PENDING);
            }
            if action == "dev_agree" {
                applicant.status = apply_status::APPROVED;
            } else {
                applicant.status = apply_status::REFUSED;
                applicant.refuse_reason = reason;
            }
            (
                json!({ "errcode": errcode::OK, "errmsg": "ok" }),
                errcode::OK,
            )
        }
        Some("dev_delete") => {
            if appid.is_none() {
                return fail(errcode::BAD_REQUEST);
            }
            let Some(i) = position(state) else {
                return fail(errcode::NOT_LISTED);
            };
            match state.applicants[i].status {
                apply_status::PENDING => fail(errcode::PENDING_NOT_DELETABLE),
                apply_status::REFUSED | apply_status::EXPIRED => {
                    state.applicants.remove(i);
                    (
                        json!({ "errcode": errcode::OK, "errmsg": "ok" }),
                        errcode::OK,
                    )
                }
                _ => fail(errcode::ONLY_REFUSED_OR_EXPIRED),
            }
        }
        _ => fail(errcode::BAD_REQUEST),
    }
}
