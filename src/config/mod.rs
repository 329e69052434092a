//! Settings, read once at start from the environment (and a `.env` file, which the real
//! environment overrides). A bad value stops the start with one line that names the variable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;
use teloxide::types::{ChatId, UserId};

use crate::i18n::Lang;
use crate::wechat::{Authorizer, DEFAULT_API_BASE, RetryPolicy, TokenMode, WeChatConfig};

mod plugins;

/// A configuration problem: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// What is wrong, in one line (never the value of a secret).
    pub problem: String,
}

/// Every configuration problem found at start, so an operator fixes them all in one round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The first problem, in the order the variables are checked.
    pub fn first(&self) -> Option<&ConfigError> {
        self.0.first()
    }
}

/// Collects problems while the rest of the configuration is still read.
#[derive(Default)]
struct Problems(std::cell::RefCell<Vec<ConfigError>>);

impl Problems {
    /// The value, or `None` with its problem noted.
    fn check<T>(&self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|e| self.0.borrow_mut().push(e)).ok()
    }
}

impl ConfigError {
    fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self {
            var,
            problem: problem.into(),
        }
    }
}

/// How long the bot must have known a pending applicant before a reminder lists it: the chat
/// does not see the same names as cards and again in a reminder within seconds.
pub const REMIND_SETTLE: Duration = Duration::from_secs(15 * 60);

/// The variables `run` and `check` read, for their `--help` (one per line, indented two spaces:
/// a test checks that every variable the configuration reads is here).
pub const VARIABLES_HELP: &str = "\
Environment variables (also read from .env in the working directory; the environment wins):
  TELOXIDE_TOKEN  bot token from @BotFather (required)
  TEAM_CHAT_ID  the team chat's id; /chatid tells it (required, but with PLUGINS_FILE only as the plugins' default)
  PLUGINS_FILE  a TOML file of [[plugin]] tables, one per plugin the bot serves (instead of WECHAT_APPID and its variables)
  WECHAT_APPID  the plugin's AppID (required without PLUGINS_FILE)
  WECHAT_SECRET  its AppSecret, never logged (required, but not with WECHAT_TOKEN_MODE=authorizer or cloudrun)
  TELOXIDE_API_URL  Bot API root (default: Telegram's)
  TELEGRAM_THROTTLE  telegram (default) or off, for a fake Bot API only
  TELEGRAM_TIMEOUT_SECS  whole-request timeout for Telegram calls (default 30)
  APPROVER_IDS  comma-separated Telegram user ids who may decide (default: the chat's admins)
  DELETE_IDS  comma-separated Telegram user ids who may delete (default: the approvers)
  APPROVALS_REQUIRED  distinct approvers whose ✅ it takes to approve, 1 to 10 (default 1)
  UNDO_SECS  seconds an approval or rejection waits, undoable, before it goes to WeChat (default 0: none)
  WECHAT_API_BASE  WeChat's API root (default https://api.weixin.qq.com; with cloudrun http://api.weixin.qq.com)
  WECHAT_TOKEN_MODE  stable (default), classic, file, authorizer (a third-party platform for the owner) or cloudrun (inside WeChat Cloud Run: no token, no secret)
  WECHAT_ACCESS_TOKEN_FILE  with file: where the central token service writes the token
  WECHAT_COMPONENT_APPID  with authorizer: the third-party platform's component AppID
  WECHAT_COMPONENT_SECRET  with authorizer: its component AppSecret, never logged
  WECHAT_COMPONENT_TICKET_FILE  with authorizer: where the platform's receiver writes the latest component_verify_ticket
  WECHAT_AUTHORIZER_REFRESH_TOKEN  with authorizer: the owner's refresh token (the one WeChat returns is kept in the database)
  WECHAT_TIMEOUT_SECS  WeChat request timeout (default 10)
  WECHAT_PAGE_SIZE  applicants per page (default 50)
  POLL_INTERVAL_SECS  seconds between polls (default 60)
  POLL_ALERT_AFTER  failed polls in a row before the chat is told (default 3)
  QUOTA_PAUSE_SECS  rest after WeChat's daily quota is used up (default 1800)
  DATABASE_URL  sqlite:PATH (default sqlite:wxplugin-bot.db) or postgres://USER:PASSWORD@HOST/DB
  REPLICA_NAME  this replica's name among several on one database (default: the host name)
  LEASE_SECS  how long the leader's lease lasts unrenewed; renewed every third of it (default 15)
  BOT_LANG  chat language, zh (default) or en
  REJECT_REASONS  preset refusal reasons, |-separated
  TZ  time zone for times in the chat: Asia/Shanghai, UTC+8 or POSIX CST-8 (default: the system's)
  REMIND_AFTER_HOURS  remind of applicants pending longer, in hours, decimals allowed (default 24; 0: never)
  ESCALATE_AFTER_HOURS  name every approver for applicants pending longer, in hours, decimals allowed (default 0: never)
  METRICS_ADDR  serve /metrics and /healthz here, e.g. 127.0.0.1:9100 (default: off)
  TELEGRAM_WEBHOOK_URL  public HTTPS URL for webhook mode (default: long polling)
  TELEGRAM_WEBHOOK_LISTEN  local address of the webhook (default 0.0.0.0:8443)
  TELEGRAM_WEBHOOK_SECRET  the webhook's secret token (default: random per start)
  RUST_LOG  log filter (default info)
  LOG_FORMAT  text (default) or json
  NO_COLOR  set and not empty: no colour in logs, even on a terminal
";

/// How far apart two listings that leave an applicant out must begin before it is taken for gone.
/// WeChat sometimes answers errcode 0 with an empty or partial list; such a glitch lasts one
/// answer or a few seconds of one backend, and a poll and a 🔄 or `/refresh` seconds later can
/// both meet it. Thirty seconds is more than one list call with all its retries takes (the
/// client's timeout and backoff stay under 20 s), so one glitch cannot be both listings; with the
/// default 60 s interval the next poll already counts, so a true absence shows within a minute.
pub const ABSENCE_PROOF_AFTER: Duration = Duration::from_secs(30);

/// Everything the bot needs, validated.
#[derive(Clone)]
pub struct Settings {
    /// `TELOXIDE_TOKEN`.
    pub telegram_token: SecretString,
    /// `TELOXIDE_API_URL`: a local Bot API server or a test fake.
    pub telegram_api_url: Option<Url>,
    /// `TELEGRAM_TIMEOUT_SECS`: the whole-request timeout for Telegram calls.
    pub telegram_timeout: Duration,
    /// `TELEGRAM_THROTTLE`: `false` only against a fake Bot API (benchmarks), never Telegram.
    pub telegram_throttle: bool,
    /// The plugins served, in the order configured: `PLUGINS_FILE`'s, else the one the
    /// `WECHAT_*` variables make.
    pub plugins: Vec<PluginSettings>,
    /// `TEAM_CHAT_ID` (else the first plugin's chat): the chat the bot works in.
    pub team_chat_id: ChatId,
    /// `APPROVER_IDS`; `None` means the team chat's administrators.
    pub approvers: Option<Vec<UserId>>,
    /// `DELETE_IDS`: who may delete an application; `None` means the approvers.
    pub delete_ids: Option<Vec<UserId>>,
    /// `POLL_INTERVAL_SECS`.
    pub poll_interval: Duration,
    /// `POLL_ALERT_AFTER`: failed polls in a row before the chat is told.
    pub poll_alert_after: u32,
    /// `QUOTA_PAUSE_SECS`: how long polling rests after WeChat says the daily quota is used up.
    pub quota_pause: Duration,
    /// How far apart the first and the last of the listings that leave an applicant out must
    /// begin before the bot believes it is gone ([`ABSENCE_PROOF_AFTER`]; not configurable by
    /// the environment, tests shorten it).
    pub absence_proof_after: Duration,
    /// How long an applicant must have been known before a reminder names it
    /// ([`REMIND_SETTLE`]; tests shorten it): a first start with old applicants posts their
    /// cards, and the reminder waits until those have been up for a while.
    pub remind_settle: Duration,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `REPLICA_NAME`: this process among the replicas sharing the database.
    pub replica: String,
    /// `LEASE_SECS`: how long the leader's lease lasts without a renewal.
    pub lease: Duration,
    /// `BOT_LANG`.
    pub lang: Lang,
    /// `REJECT_REASONS`.
    pub reject_reasons: Vec<String>,
    /// `TZ`: how times are shown.
    pub time_zone: jiff::tz::TimeZone,
    /// `APPROVALS_REQUIRED`: how many distinct approvers' ✅ an approval takes (1: the first
    /// ✅ approves; more: each ✅ is a vote until that many have voted).
    pub approvals_required: u32,
    /// `UNDO_SECS`: how long a decision waits, with ↩ Undo on its card, before its WeChat write
    /// goes out (`None`: at once, with 0).
    pub undo_window: Option<Duration>,
    /// `REMIND_AFTER_HOURS`: pending applicants older than this are listed in a reminder
    /// (`None`: reminders off, with 0).
    pub remind_after: Option<Duration>,
    /// `ESCALATE_AFTER_HOURS`: applicants waiting longer (from their application time) are
    /// escalated once, naming every approver and messaging subscribers (`None`: never).
    pub escalate_after: Option<Duration>,
    /// `METRICS_ADDR`: where `/metrics` and `/healthz` are served (`None`: not served).
    pub metrics_addr: Option<SocketAddr>,
    /// `TELEGRAM_WEBHOOK_URL` and friends: receive updates by webhook instead of long polling.
    pub webhook: Option<Webhook>,
}

/// One plugin the bot serves: who it is to WeChat, where its cards go and who decides on them.
#[derive(Clone, Debug)]
pub struct PluginSettings {
    /// Unique; shown on cards, in commands, metrics and the audit log (the appid when the
    /// `WECHAT_*` variables make the one plugin).
    pub name: String,
    /// Its WeChat side.
    pub wechat: WeChatConfig,
    /// Where its cards go (`team_chat_id`, default `TEAM_CHAT_ID`).
    pub team_chat_id: ChatId,
    /// Who decides (`approver_ids`, default `APPROVER_IDS`); `None`: the chat's administrators.
    pub approvers: Option<Vec<UserId>>,
}

/// Webhook mode: Telegram POSTs updates to `url`, which reaches this process at `listen`.
#[derive(Clone)]
pub struct Webhook {
    /// `TELEGRAM_WEBHOOK_URL`: the public HTTPS address Telegram posts to.
    pub url: Url,
    /// `TELEGRAM_WEBHOOK_LISTEN`: the local address to serve it on.
    pub listen: SocketAddr,
    /// `TELEGRAM_WEBHOOK_SECRET`: checked on every request (generated at start when unset).
    pub secret: SecretString,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("telegram_token", &"***")
            .field(
                "telegram_api_url",
                &self.telegram_api_url.as_ref().map(Url::as_str),
            )
            .field(
                "plugins",
                &self
                    .plugins
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {} {} {} secret ***",
                            p.name,
                            p.wechat.appid,
                            p.wechat.base_url,
                            p.wechat.token_mode.name()
                        )
                    })
                    .collect::<Vec<_>>(),
            )
            .field("team_chat_id", &self.team_chat_id.0)
            .field("approvers", &self.approvers)
            .field("delete_ids", &self.delete_ids)
            .field("poll_interval", &self.poll_interval)
            .field(
                "database_url",
                &crate::store::without_password(&self.database_url),
            )
            .field("replica", &self.replica)
            .field("lease", &self.lease)
            .field("lang", &self.lang)
            .field("reject_reasons", &self.reject_reasons)
            .field("remind_after", &self.remind_after)
            .field("metrics_addr", &self.metrics_addr)
            .field(
                "webhook",
                &self
                    .webhook
                    .as_ref()
                    .map(|w| format!("{} (listening on {}, secret ***)", w.url, w.listen)),
            )
            .finish_non_exhaustive()
    }
}

/// Default preset reasons per language, when `REJECT_REASONS` is unset.
pub fn default_reject_reasons(lang: Lang) -> Vec<String> {
    let reasons: &[&str] = match lang {
        Lang::Zh => &[
            "小程序类目不在插件服务范围内",
            "申请说明不清楚，请补充使用场景后重新申请",
            "插件暂不对外开放",
        ],
        Lang::En => &[
            "Category outside the plugin's scope",
            "Unclear use case: please re-apply with details",
            "Plugin not open to new users yet",
        ],
    };
    reasons.iter().map(|s| (*s).to_owned()).collect()
}

impl Settings {
    /// The name metrics label `plugin` (its AppID) with: its configured name, else the AppID.
    pub fn plugin_label<'a>(&'a self, plugin: &'a str) -> &'a str {
        self.plugins
            .iter()
            .find(|p| p.wechat.appid == plugin)
            .map_or(plugin, |p| p.name.as_str())
    }

    /// The name of `plugin` (its AppID) to show beside its cards and messages: only when the
    /// bot serves several plugins (one needs no naming).
    pub fn plugin_name(&self, plugin: &str) -> Option<&str> {
        if self.plugins.len() < 2 {
            return None;
        }
        self.plugins
            .iter()
            .find(|p| p.wechat.appid == plugin)
            .map(|p| p.name.as_str())
    }

    /// Makes the log redactor mask the AppSecret and the bot token wherever they appear.
    pub fn register_secrets(&self) {
        use secrecy::ExposeSecret;
        for plugin in &self.plugins {
            crate::redact::register_secret(plugin.wechat.secret.expose_secret());
            if let TokenMode::Authorizer(platform) = &plugin.wechat.token_mode {
                crate::redact::register_secret(platform.component_secret.expose_secret());
                crate::redact::register_secret(platform.refresh_token.expose_secret());
            }
        }
        crate::redact::register_secret(self.telegram_token.expose_secret());
        if let Some(webhook) = &self.webhook {
            crate::redact::register_secret(webhook.secret.expose_secret());
        }
    }

    /// Reads the process environment, after loading `.env` from the working directory if present
    /// (variables already set win).
    pub fn from_env() -> Result<Self, ConfigErrors> {
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            return Err(ConfigErrors(vec![ConfigError::new(".env", e.to_string())]));
        }
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_vars(|name| vars.get(name).cloned())
    }

    /// Reads settings through `get`, so tests need not touch the process environment. Every
    /// variable is read even after a problem, and every problem is returned.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let var = |name: &'static str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let var: Var<'_> = &var;
        let p = Problems::default();
        // Reported in this order, so the list reads the same whatever else is wrong.
        let telegram_token = p.check(telegram_token(var));
        let telegram_api_url = p.check(
            var("TELOXIDE_API_URL")
                .map(|v| parse_url("TELOXIDE_API_URL", &v))
                .transpose(),
        );
        let plugins_file = var("PLUGINS_FILE");
        let wechat = match &plugins_file {
            None => wechat(var, &p),
            Some(_) => {
                if var("WECHAT_APPID").is_some() {
                    p.check::<()>(Err(ConfigError::new(
                        "PLUGINS_FILE",
                        "is set beside WECHAT_APPID: choose one (the file, or the WECHAT_* variables for a single plugin)",
                    )));
                }
                None
            }
        };
        // With PLUGINS_FILE, TEAM_CHAT_ID is only the plugins' default.
        let chat = match (&plugins_file, var("TEAM_CHAT_ID")) {
            (Some(_), None) => Some(None),
            _ => p.check(team_chat_id(var)).map(Some),
        };
        let approvers = p.check(user_ids(var, "APPROVER_IDS"));
        let plugins = match (&plugins_file, &wechat, chat, &approvers) {
            (None, Some(wechat), Some(Some(chat)), Some(approvers)) => Some(vec![PluginSettings {
                name: wechat.appid.clone(),
                wechat: wechat.clone(),
                team_chat_id: chat,
                approvers: approvers.clone(),
            }]),
            (Some(path), _, Some(chat), Some(approvers)) => {
                plugins::read(path, var, &get, chat, approvers, &p)
            }
            _ => None,
        };
        // Every plugin is carded in one chat (the file's plugins are refused otherwise): theirs,
        // whatever TEAM_CHAT_ID says.
        let team_chat_id = match (chat, &plugins) {
            (_, Some(plugins)) if plugins_file.is_some() => {
                plugins.first().map(|first| first.team_chat_id)
            }
            (Some(Some(chat)), _) => Some(chat),
            _ => None,
        };

        let delete_ids = p.check(user_ids(var, "DELETE_IDS"));
        let approvals_required = p.check(number(var, "APPROVALS_REQUIRED", 1, 1, 10));
        let undo_secs = p.check(number(var, "UNDO_SECS", 0, 0, 600));
        let lang = p
            .check(
                var("BOT_LANG")
                    .map(|v| {
                        v.parse::<Lang>()
                            .map_err(|e| ConfigError::new("BOT_LANG", e))
                    })
                    .transpose(),
            )
            .flatten()
            .unwrap_or_default();
        let reject_reasons = match var("REJECT_REASONS") {
            None => Some(default_reject_reasons(lang)),
            Some(list) => p.check(reject_reasons(&list)),
        };
        let time_zone = p.check(time_zone(var));
        let remind_after = p.check(hours(var, "REMIND_AFTER_HOURS", 24.0, 24 * 365));
        let escalate_after = p.check(hours(var, "ESCALATE_AFTER_HOURS", 0.0, 24 * 365));
        let metrics_addr = p.check(
            var("METRICS_ADDR")
                .map(|v| parse_addr("METRICS_ADDR", &v))
                .transpose(),
        );
        let webhook = p.check(
            var("TELEGRAM_WEBHOOK_URL")
                .map(|url| webhook(var, &url))
                .transpose(),
        );
        let telegram_throttle = p.check(telegram_throttle(var));
        let telegram_timeout = p.check(number(var, "TELEGRAM_TIMEOUT_SECS", 30, 3, 600));
        let poll_interval = p.check(number(var, "POLL_INTERVAL_SECS", 60, 5, 86_400));
        let poll_alert_after = p.check(number(var, "POLL_ALERT_AFTER", 3, 1, 1000));
        let quota_pause = p.check(number(var, "QUOTA_PAUSE_SECS", 1800, 1, 86_400));
        let database_url = p.check(database_url(var));
        let replica = p.check(replica_name(var));
        let lease = p.check(number(var, "LEASE_SECS", 15, 3, 300));
        let problems = p.0.into_inner();
        let (
            Some(telegram_token),
            Some(telegram_api_url),
            Some(plugins),
            Some(team_chat_id),
            Some(approvers),
            Some(delete_ids),
            Some(approvals_required),
            Some(undo_secs),
            Some(reject_reasons),
            Some(time_zone),
            Some(remind_after),
            Some(escalate_after),
            Some(metrics_addr),
            Some(webhook),
            Some(telegram_throttle),
            Some(telegram_timeout),
            Some(poll_interval),
            Some(poll_alert_after),
            Some(quota_pause),
            Some(database_url),
            Some(replica),
            Some(lease),
        ) = (
            telegram_token,
            telegram_api_url,
            plugins,
            team_chat_id,
            approvers,
            delete_ids,
            approvals_required,
            undo_secs,
            reject_reasons,
            time_zone,
            remind_after,
            escalate_after,
            metrics_addr,
            webhook,
            telegram_throttle,
            telegram_timeout,
            poll_interval,
            poll_alert_after,
            quota_pause,
            database_url,
            replica,
            lease,
        )
        else {
            return Err(ConfigErrors(problems));
        };
        if !problems.is_empty() {
            return Err(ConfigErrors(problems));
        }
        Ok(Self {
            telegram_token: SecretString::from(telegram_token),
            telegram_api_url,
            telegram_throttle,
            telegram_timeout: Duration::from_secs(telegram_timeout),
            plugins,
            team_chat_id,
            approvers,
            delete_ids,
            poll_interval: Duration::from_secs(poll_interval),
            poll_alert_after: poll_alert_after as u32,
            quota_pause: Duration::from_secs(quota_pause),
            absence_proof_after: ABSENCE_PROOF_AFTER,
            remind_settle: REMIND_SETTLE,
            database_url,
            replica,
            lease: Duration::from_secs(lease),
            lang,
            approvals_required: approvals_required as u32,
            undo_window: (undo_secs > 0).then(|| Duration::from_secs(undo_secs)),
            reject_reasons,
            time_zone,
            remind_after,
            escalate_after,
            metrics_addr,
            webhook,
        })
    }
}

/// `REPLICA_NAME`, else the host name: how `/status`, `/healthz` and the lease name this
/// process. A replica that starts again under its own name takes its lease back at once, so
/// two replicas on one host need names of their own.
fn replica_name(var: Var<'_>) -> Result<String, ConfigError> {
    let name = match var("REPLICA_NAME") {
        Some(name) => name,
        None => return Ok(host_name()),
    };
    if name.chars().count() > 64 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ConfigError::new(
            "REPLICA_NAME",
            "must be at most 64 characters, without spaces or control characters",
        ));
    }
    Ok(name)
}

/// This machine's host name (a container's id in Docker), or `replica` when it cannot be read.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer it is given.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if ok && !name.is_empty() => name.chars().take(64).collect(),
        _ => "replica".to_owned(),
    }
}

/// `DATABASE_URL`: SQLite (`sqlite:PATH`, the default) or PostgreSQL (`postgres://…`); another
/// scheme is refused here rather than taken for a file name, and a PostgreSQL URL that does not
/// parse is named without its password.
fn database_url(var: Var<'_>) -> Result<String, ConfigError> {
    let url = var("DATABASE_URL").unwrap_or_else(|| "sqlite:wxplugin-bot.db".to_owned());
    if crate::store::is_postgres(&url) {
        if let Err(e) = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&url) {
            return Err(ConfigError::new(
                "DATABASE_URL",
                format!(
                    "{} is not a PostgreSQL URL this bot can read (postgres://USER:PASSWORD@HOST:PORT/DATABASE): {}",
                    crate::store::without_password(&url),
                    crate::report::one_line(&e)
                ),
            ));
        }
        return Ok(url);
    }
    if !url.starts_with("sqlite:") {
        let scheme = url.split_once(':').map_or(url.as_str(), |(s, _)| s);
        return Err(ConfigError::new(
            "DATABASE_URL",
            format!(
                "'{scheme}' is not a database this bot can use: SQLite as sqlite:PATH (e.g. sqlite:/var/lib/wxplugin-bot/bot.db), or PostgreSQL as postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ),
        ));
    }
    Ok(url)
}

/// A variable's value, trimmed; `None` when unset or blank.
type Var<'a> = &'a dyn Fn(&'static str) -> Option<String>;

fn required(var: Var<'_>, name: &'static str) -> Result<String, ConfigError> {
    var(name).ok_or_else(|| ConfigError::new(name, "is not set"))
}

/// `TELOXIDE_TOKEN`, refused early when it cannot be a bot token (so a pasted chat id or AppSecret
/// is caught at start, not at the first call).
fn telegram_token(var: Var<'_>) -> Result<String, ConfigError> {
    let token = required(var, "TELOXIDE_TOKEN")?;
    if !token.contains(':') {
        return Err(ConfigError::new(
            "TELOXIDE_TOKEN",
            "does not look like a bot token from @BotFather (digits:letters)",
        ));
    }
    Ok(token)
}

/// The `WECHAT_*` side: who the bot is to WeChat, where WeChat is, and how tokens are obtained.
/// Each problem is noted in `p`.
fn wechat(var: Var<'_>, p: &Problems) -> Option<WeChatConfig> {
    let appid = p.check(required(var, "WECHAT_APPID").and_then(|appid| {
        crate::domain::applicant::AppId::parse(&appid)
            .map(|_| appid)
            .map_err(|e| ConfigError::new("WECHAT_APPID", e.to_string()))
    }));
    let token_mode = token_mode(var, p);
    let cloud_run = token_mode.as_ref().is_some_and(TokenMode::is_cloud_run);
    // Cloud Run's cloud call holds the credential, and a platform acting for the owner never
    // has the AppSecret: one set anyway is a mix-up worth stopping on. Judged by the mode's name,
    // so a mode missing its other variables does not ask for the AppSecret too.
    let secret = match var("WECHAT_TOKEN_MODE").as_deref() {
        Some(mode @ ("cloudrun" | "authorizer")) => match var("WECHAT_SECRET") {
            Some(_) => p.check::<SecretString>(Err(ConfigError::new(
                "WECHAT_SECRET",
                format!("is not used with WECHAT_TOKEN_MODE={mode}: remove it"),
            ))),
            None => Some(SecretString::from(String::new())),
        },
        _ => p
            .check(required(var, "WECHAT_SECRET"))
            .map(SecretString::from),
    };
    let default_base = if cloud_run {
        CLOUD_RUN_API_BASE
    } else {
        DEFAULT_API_BASE
    };
    let base = p.check(parse_url(
        "WECHAT_API_BASE",
        &var("WECHAT_API_BASE").unwrap_or_else(|| default_base.to_owned()),
    ));
    let timeout = p.check(number(var, "WECHAT_TIMEOUT_SECS", 10, 1, 300));
    let page_size = p.check(number(var, "WECHAT_PAGE_SIZE", 50, 1, 1000));
    let mut wechat = WeChatConfig::new(base?, appid?, secret?);
    wechat.token_mode = token_mode?;
    wechat.request_timeout = Duration::from_secs(timeout?);
    wechat.page_size = page_size? as u32;
    wechat.retry = RetryPolicy::default();
    Some(wechat)
}

/// Where calls go inside WeChat Cloud Run: plain HTTP, which the platform's cloud call carries.
pub const CLOUD_RUN_API_BASE: &str = "http://api.weixin.qq.com";

/// `WECHAT_TOKEN_MODE`; `file` needs the file's path too, `authorizer` the platform's four
/// variables (each missing one noted in `p`).
fn token_mode(var: Var<'_>, p: &Problems) -> Option<TokenMode> {
    let needed = |name: &'static str, mode: &str| {
        p.check(var(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            ConfigError::new(name, format!("is required when WECHAT_TOKEN_MODE={mode}"))
        }))
    };
    match var("WECHAT_TOKEN_MODE").as_deref().unwrap_or("stable") {
        "stable" => Some(TokenMode::Stable),
        "classic" => Some(TokenMode::Classic),
        "file" => needed("WECHAT_ACCESS_TOKEN_FILE", "file")
            .map(|path| TokenMode::File(PathBuf::from(path))),
        "authorizer" => {
            let component_appid = needed("WECHAT_COMPONENT_APPID", "authorizer").and_then(|id| {
                p.check(
                    crate::domain::applicant::AppId::parse(&id)
                        .map(|_| id)
                        .map_err(|e| ConfigError::new("WECHAT_COMPONENT_APPID", e.to_string())),
                )
            });
            let component_secret = needed("WECHAT_COMPONENT_SECRET", "authorizer");
            let ticket_file = needed("WECHAT_COMPONENT_TICKET_FILE", "authorizer");
            let refresh_token = needed("WECHAT_AUTHORIZER_REFRESH_TOKEN", "authorizer");
            Some(TokenMode::Authorizer(Authorizer {
                component_appid: component_appid?,
                component_secret: SecretString::from(component_secret?),
                ticket_file: PathBuf::from(ticket_file?),
                refresh_token: SecretString::from(refresh_token?),
            }))
        }
        "cloudrun" => Some(TokenMode::CloudRun),
        other => p.check(Err(ConfigError::new(
            "WECHAT_TOKEN_MODE",
            format!("'{other}' is not one of stable, classic, file, authorizer, cloudrun"),
        ))),
    }
}

/// `TEAM_CHAT_ID`; the messages say how to learn it, since that is the usual first-run stumble.
fn team_chat_id(var: Var<'_>) -> Result<ChatId, ConfigError> {
    let raw = var("TEAM_CHAT_ID").ok_or_else(|| {
        ConfigError::new(
            "TEAM_CHAT_ID",
            "is not set (send /chatid in the team chat to learn it)",
        )
    })?;
    raw.parse::<i64>().map(ChatId).map_err(|_| {
        ConfigError::new(
            "TEAM_CHAT_ID",
            format!("'{raw}' is not a Telegram chat id (a number such as -1001234567890)"),
        )
    })
}

/// A list of Telegram user ids (`APPROVER_IDS`, `DELETE_IDS`): unset means the default (the
/// chat's administrators, the approvers); set but empty is refused, since it would silently mean
/// the same.
fn user_ids(var: Var<'_>, name: &'static str) -> Result<Option<Vec<UserId>>, ConfigError> {
    let Some(list) = var(name) else {
        return Ok(None);
    };
    let ids = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>().map(UserId).map_err(|_| {
                ConfigError::new(
                    name,
                    format!("'{s}' is not a Telegram user id (comma-separated numbers)"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Err(ConfigError::new(name, "lists no user id"));
    }
    Ok(Some(ids))
}

/// `REJECT_REASONS`: 1 to 8 (one button each), none longer than 200 characters (a button's label
/// and the card's line must stay readable).
fn reject_reasons(list: &str) -> Result<Vec<String>, ConfigError> {
    let reasons: Vec<String> = list
        .split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if reasons.is_empty() || reasons.len() > 8 {
        return Err(ConfigError::new(
            "REJECT_REASONS",
            "needs 1 to 8 reasons separated by '|'",
        ));
    }
    if let Some(long) = reasons.iter().find(|r| r.chars().count() > 200) {
        return Err(ConfigError::new(
            "REJECT_REASONS",
            format!(
                "a reason is longer than 200 characters: '{}…'",
                long.chars().take(20).collect::<String>()
            ),
        ));
    }
    Ok(reasons)
}

/// `TZ` (a leading `:` as glibc allows), else the system's zone. Besides IANA names it takes
/// what Chinese servers often carry: `UTC+8`, `GMT+8` or `UTC+08:00` read as people mean them
/// (eight hours ahead of UTC; POSIX would read `UTC+8` as behind), and POSIX rules such as
/// `CST-8`.
fn time_zone(var: Var<'_>) -> Result<jiff::tz::TimeZone, ConfigError> {
    let Some(name) = var("TZ") else {
        return Ok(jiff::tz::TimeZone::system());
    };
    let name = name.trim().trim_start_matches(':');
    if let Ok(tz) = jiff::tz::TimeZone::get(name) {
        return Ok(tz);
    }
    if let Some(offset) = utc_offset(name) {
        return Ok(jiff::tz::TimeZone::fixed(offset));
    }
    // A POSIX rule names its zone with letters first (`CST-8`, `CST6CDT,M3.2.0,M11.1.0`).
    if name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '<')
        && let Ok(tz) = jiff::tz::TimeZone::posix(name)
    {
        return Ok(tz);
    }
    Err(ConfigError::new(
        "TZ",
        format!("'{name}' is not a known time zone (e.g. Asia/Shanghai, UTC+8 or the POSIX CST-8)"),
    ))
}

/// `UTC+8`, `GMT-3`, `UTC+05:30`, `UTC+0530`: an offset from UTC as people write it.
fn utc_offset(name: &str) -> Option<jiff::tz::Offset> {
    let upper = name.to_ascii_uppercase();
    let rest = upper
        .strip_prefix("UTC")
        .or_else(|| upper.strip_prefix("GMT"))?;
    let (sign, rest) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() > 2 => rest.split_at(rest.len() - 2),
        None => (rest, "0"),
    };
    let all_digits =
        |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(hours) || !all_digits(minutes) {
        return None;
    }
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 14 || minutes >= 60 {
        return None;
    }
    jiff::tz::Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// Webhook mode, when `TELEGRAM_WEBHOOK_URL` is set: refused now rather than by Telegram after
/// start when it cannot work.
fn webhook(var: Var<'_>, url: &str) -> Result<Webhook, ConfigError> {
    let url = parse_url("TELEGRAM_WEBHOOK_URL", url)?;
    if url.scheme() != "https" {
        // Telegram's setWebhook refuses it ("An HTTPS URL must be provided for webhook"); say
        // so now rather than after start. Terminate TLS in a proxy.
        return Err(ConfigError::new(
            "TELEGRAM_WEBHOOK_URL",
            "must be an https:// URL (Telegram posts updates only over HTTPS; put a TLS-terminating proxy in front of TELEGRAM_WEBHOOK_LISTEN)",
        ));
    }
    let listen = parse_addr(
        "TELEGRAM_WEBHOOK_LISTEN",
        &var("TELEGRAM_WEBHOOK_LISTEN").unwrap_or_else(|| "0.0.0.0:8443".to_owned()),
    )?;
    let replicas = var("DATABASE_URL").is_some_and(|db| crate::store::is_postgres(&db));
    let secret = match var("TELEGRAM_WEBHOOK_SECRET") {
        Some(s) => webhook_secret(s)?,
        // Each replica registers the webhook with its secret, and Telegram keeps the last one:
        // a secret of its own per replica would lock every other replica out.
        None if replicas => {
            return Err(ConfigError::new(
                "TELEGRAM_WEBHOOK_SECRET",
                "must be set, the same for every replica, when the bot runs on PostgreSQL in webhook mode (replicas share one webhook)",
            ));
        }
        None => random_secret()?,
    };
    Ok(Webhook {
        url,
        listen,
        secret: SecretString::from(secret),
    })
}

/// A configured webhook secret, in the alphabet and length Telegram's `secret_token` accepts.
fn webhook_secret(secret: String) -> Result<String, ConfigError> {
    let valid = (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(ConfigError::new(
            "TELEGRAM_WEBHOOK_SECRET",
            "must be 1-256 characters of A-Z, a-z, 0-9, _ and -",
        ));
    }
    Ok(secret)
}

/// `TELEGRAM_THROTTLE`: `off` only for a fake Bot API; Telegram itself always gets the throttle.
fn telegram_throttle(var: Var<'_>) -> Result<bool, ConfigError> {
    match var("TELEGRAM_THROTTLE").as_deref() {
        None | Some("telegram") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(ConfigError::new(
            "TELEGRAM_THROTTLE",
            format!("'{other}' is not telegram or off"),
        )),
    }
}

/// 32 characters Telegram accepts as a webhook secret, from the operating system's random
/// source (a guessable secret would let anyone post updates as Telegram). 64 symbols, so each
/// random byte's low six bits pick one without bias.
fn random_secret() -> Result<String, ConfigError> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        ConfigError::new(
            "TELEGRAM_WEBHOOK_SECRET",
            format!(
                "is not set and none could be generated (the OS gave no random bytes: {e}); set one"
            ),
        )
    })?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect())
}

fn parse_addr(var: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            var,
            format!("'{value}' is not an address to listen on (such as 127.0.0.1:9100)"),
        )
    })
}

fn parse_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value)
        .map_err(|e| ConfigError::new(var, format!("'{value}' is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            var,
            format!("'{value}' is not an http(s) URL"),
        ));
    }
    Ok(url)
}

/// A number of hours, decimals allowed (`0.5` is half an hour), from 0 to `max`, to the second;
/// 0 means never (`None`).
fn hours(
    var: Var<'_>,
    name: &'static str,
    default: f64,
    max: u32,
) -> Result<Option<Duration>, ConfigError> {
    let raw = var(name);
    let hours = match raw.as_deref().map(str::trim) {
        None => default,
        Some(text) => match text.parse::<f64>() {
            Ok(h) if h.is_finite() && (0.0..=f64::from(max)).contains(&h) => h,
            _ => {
                return Err(ConfigError::new(
                    name,
                    format!(
                        "'{text}' is not a number of hours from 0 to {max} (decimals allowed: 0.5 is half an hour)"
                    ),
                ));
            }
        },
    };
    let seconds = (hours * 3600.0).round() as u64;
    Ok((seconds > 0).then(|| Duration::from_secs(seconds)))
}

fn number(
    var: Var<'_>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    match raw.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            name,
            format!("'{raw}' is not a whole number from {min} to {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_chinese_servers_carry_are_understood() {
        let offset_of = |tz: &str| {
            let mut vars = base();
            vars.insert("TZ", tz);
            let s = Settings::from_vars(|k| vars.get(k).map(|v| (*v).to_owned()))
                .unwrap_or_else(|e| panic!("TZ={tz}: {e}"));
            s.time_zone
                .to_offset(jiff::Timestamp::from_second(1_700_000_000).expect("valid"))
                .seconds()
        };
        for tz in [
            "Asia/Shanghai",
            ":Asia/Shanghai",
            "CST-8",
            "UTC+8",
            "GMT+8",
            "UTC+08:00",
            "utc+0800",
        ] {
            assert_eq!(offset_of(tz), 8 * 3600, "{tz}");
        }
        assert_eq!(offset_of("UTC+5:30"), 5 * 3600 + 1800);
        assert_eq!(offset_of("UTC-3"), -3 * 3600);
        assert_eq!(offset_of("UTC"), 0);
        for bad in ["UTC+25", "UTC+8:75", "GMT+", "8", "Mars/Olympus"] {
            let mut vars = base();
            vars.insert("TZ", bad);
            let err = Settings::from_vars(|k| vars.get(k).map(|v| (*v).to_owned()))
                .err()
                .unwrap_or_else(|| panic!("TZ={bad} accepted"));
            assert!(err.to_string().contains("TZ"), "{err}");
        }
    }

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("TELOXIDE_TOKEN", "123:abc"),
            ("WECHAT_APPID", "wx5a4db0c0ffee0001"),
            ("WECHAT_SECRET", "topsecret-value"),
            ("TEAM_CHAT_ID", "-1001234567890"),
        ])
    }

    /// The settings, or the first problem.
    fn load(vars: &HashMap<&'static str, &'static str>) -> Result<Settings, ConfigError> {
        Settings::from_vars(|k| vars.get(k).map(|v| (*v).to_owned()))
            .map_err(|e| e.first().cloned().expect("an error names a problem"))
    }

    #[test]
    fn every_problem_is_reported_at_once_in_the_order_checked() {
        let mut vars = base();
        vars.remove("WECHAT_SECRET");
        vars.insert("TEAM_CHAT_ID", "team");
        vars.insert("POLL_INTERVAL_SECS", "1");
        vars.insert("DATABASE_URL", "mysql://db/bot");

        let errors = Settings::from_vars(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap_err();

        let named: Vec<&str> = errors.0.iter().map(|e| e.var).collect();
        assert_eq!(
            named,
            [
                "WECHAT_SECRET",
                "TEAM_CHAT_ID",
                "POLL_INTERVAL_SECS",
                "DATABASE_URL"
            ]
        );
        assert_eq!(errors.to_string().lines().count(), 4, "{errors}");
    }

    /// Every variable the configuration reads is listed in `run --help` and `check --help`.
    #[test]
    fn the_help_lists_every_variable_read() {
        let asked = std::cell::RefCell::new(Vec::new());
        let mut vars = base();
        vars.insert("WECHAT_TOKEN_MODE", "file");
        vars.insert("TELEGRAM_WEBHOOK_URL", "https://bot.example.com/hook");
        vars.insert("REJECT_REASONS", "a|b");
        vars.insert("TZ", "UTC");
        let _ = Settings::from_vars(|k| {
            asked.borrow_mut().push(k.to_owned());
            vars.get(k).map(|v| (*v).to_owned())
        });

        let asked = asked.into_inner();
        assert!(asked.len() > 20, "{asked:?}");
        for name in asked {
            assert!(
                VARIABLES_HELP.contains(&format!("\n  {name} ")),
                "{name} is read but not in the help"
            );
        }
    }

    #[test]
    fn defaults_fill_everything_optional() {
        let s = load(&base()).unwrap();
        assert_eq!(s.poll_interval, Duration::from_secs(60));
        assert_eq!(s.database_url, "sqlite:wxplugin-bot.db");
        assert_eq!(s.lang, Lang::Zh);
        assert_eq!(s.reject_reasons, default_reject_reasons(Lang::Zh));
        assert_eq!(s.plugins[0].wechat.token_mode, TokenMode::Stable);
        assert_eq!(
            s.plugins[0].wechat.base_url.as_str(),
            "https://api.weixin.qq.com/"
        );
        assert_eq!(s.plugins[0].wechat.request_timeout, Duration::from_secs(10));
        assert!(s.approvers.is_none());
    }

    #[test]
    fn a_postgresql_url_is_accepted_and_its_password_never_printed() {
        let mut vars = base();
        vars.insert(
            "DATABASE_URL",
            "postgres://bot:hunter2-secret@db.example:5432/bot",
        );
        let s = load(&vars).expect("a PostgreSQL URL is a database this bot can use");
        assert_eq!(
            s.database_url,
            "postgres://bot:hunter2-secret@db.example:5432/bot"
        );
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("db.example:5432/bot"), "{shown}");
    }

    #[test]
    fn replicas_in_webhook_mode_need_one_secret_they_all_share() {
        let mut vars = base();
        vars.insert("TELEGRAM_WEBHOOK_URL", "https://bot.example.com/tg/hook");
        assert!(
            load(&vars).is_ok(),
            "one process may make up its own secret"
        );
        vars.insert("DATABASE_URL", "postgres://bot:pw@db.example/bot");
        let err = load(&vars).unwrap_err();
        assert_eq!(err.var, "TELEGRAM_WEBHOOK_SECRET", "{err}");
        vars.insert("TELEGRAM_WEBHOOK_SECRET", "shared_secret-1");
        assert!(load(&vars).is_ok());
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            ("DATABASE_URL", "mysql://db.example/bot"),
            ("DATABASE_URL", "postgres://bot@db.example:notaport/bot"),
            ("TEAM_CHAT_ID", "abc"),
            ("POLL_INTERVAL_SECS", "0"),
            ("POLL_INTERVAL_SECS", "ten"),
            ("APPROVER_IDS", "1,x"),
            ("DELETE_IDS", "alice"),
            ("DELETE_IDS", " , "),
            ("APPROVALS_REQUIRED", "0"),
            ("APPROVALS_REQUIRED", "11"),
            ("APPROVALS_REQUIRED", "two"),
            ("UNDO_SECS", "601"),
            ("UNDO_SECS", "-5"),
            ("BOT_LANG", "fr"),
            ("WECHAT_TOKEN_MODE", "magic"),
            ("WECHAT_API_BASE", "not a url"),
            ("WECHAT_APPID", "<script>"),
            ("WECHAT_TIMEOUT_SECS", "-1"),
            ("TZ", "Mars/Olympus"),
            ("REJECT_REASONS", "| |"),
            ("TELOXIDE_TOKEN", "nocolon"),
            ("METRICS_ADDR", "localhost"),
            ("REMIND_AFTER_HOURS", "-2"),
            ("REMIND_AFTER_HOURS", "NaN"),
            ("REMIND_AFTER_HOURS", "1,5"),
            ("ESCALATE_AFTER_HOURS", "soon"),
            ("ESCALATE_AFTER_HOURS", "-1"),
            ("TELEGRAM_WEBHOOK_URL", "ftp://example.com/hook"),
            ("REPLICA_NAME", "bot one"),
            ("LEASE_SECS", "2"),
            ("TELEGRAM_WEBHOOK_URL", "http://bot.example.com/tg/hook"),
        ];
        for (name, value) in cases {
            let mut vars = base();
            vars.insert(name, value);
            let err = load(&vars).unwrap_err();
            assert_eq!(err.var, *name, "{name}={value}: {err}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn missing_required_variables_are_named() {
        for name in [
            "TELOXIDE_TOKEN",
            "WECHAT_APPID",
            "WECHAT_SECRET",
            "TEAM_CHAT_ID",
        ] {
            let mut vars = base();
            vars.remove(name);
            assert_eq!(load(&vars).unwrap_err().var, name);
        }
        let mut vars = base();
        vars.insert("WECHAT_TOKEN_MODE", "file");
        assert_eq!(load(&vars).unwrap_err().var, "WECHAT_ACCESS_TOKEN_FILE");
    }

    #[test]
    fn cloud_run_needs_no_secret_and_calls_plain_http_by_default() {
        let mut vars = base();
        vars.remove("WECHAT_SECRET");
        vars.insert("WECHAT_TOKEN_MODE", "cloudrun");
        let s = load(&vars).unwrap();
        assert_eq!(s.plugins[0].wechat.token_mode, TokenMode::CloudRun);
        assert_eq!(
            s.plugins[0].wechat.base_url.as_str(),
            "http://api.weixin.qq.com/"
        );
        vars.insert("WECHAT_API_BASE", "http://127.0.0.1:8900");
        assert_eq!(
            load(&vars).unwrap().plugins[0].wechat.base_url.as_str(),
            "http://127.0.0.1:8900/"
        );
        // Every other mode still needs the AppSecret, and Cloud Run refuses one.
        vars.insert("WECHAT_TOKEN_MODE", "stable");
        assert_eq!(load(&vars).unwrap_err().var, "WECHAT_SECRET");
        vars.insert("WECHAT_TOKEN_MODE", "cloudrun");
        vars.insert("WECHAT_SECRET", "an-app-secret");
        let error = load(&vars).unwrap_err();
        assert_eq!(error.var, "WECHAT_SECRET");
        assert!(
            error
                .to_string()
                .contains("not used with WECHAT_TOKEN_MODE=cloudrun"),
            "{error}"
        );
    }

    #[test]
    fn authorizer_mode_names_every_missing_variable_at_once() {
        let mut vars = base();
        vars.remove("WECHAT_SECRET");
        vars.insert("WECHAT_TOKEN_MODE", "authorizer");
        let all = Settings::from_vars(|k| vars.get(k).map(|v| (*v).to_owned()))
            .err()
            .unwrap();
        let named: Vec<&str> = all.0.iter().map(|e| e.var).collect();
        assert_eq!(
            named,
            [
                "WECHAT_COMPONENT_APPID",
                "WECHAT_COMPONENT_SECRET",
                "WECHAT_COMPONENT_TICKET_FILE",
                "WECHAT_AUTHORIZER_REFRESH_TOKEN"
            ]
        );
        vars.insert("WECHAT_COMPONENT_APPID", "wx5a4db0c0ffee0c01");
        vars.insert("WECHAT_COMPONENT_SECRET", "component-secret");
        vars.insert("WECHAT_COMPONENT_TICKET_FILE", "/run/platform/ticket");
        vars.insert("WECHAT_AUTHORIZER_REFRESH_TOKEN", "refreshtoken@@@1");
        let s = load(&vars).unwrap();
        assert_eq!(s.plugins[0].wechat.token_mode.name(), "authorizer");
        // The owner's AppSecret is never the platform's to have.
        vars.insert("WECHAT_SECRET", "an-app-secret");
        assert_eq!(load(&vars).unwrap_err().var, "WECHAT_SECRET");
    }

    #[test]
    fn lists_and_modes_parse() {
        let mut vars = base();
        vars.insert("APPROVER_IDS", " 11, 22 ,");
        vars.insert("REJECT_REASONS", "a | b|c");
        vars.insert("BOT_LANG", "en");
        vars.insert("WECHAT_TOKEN_MODE", "file");
        vars.insert("WECHAT_ACCESS_TOKEN_FILE", "/run/wx/token");
        vars.insert("TZ", "Asia/Shanghai");
        let s = load(&vars).unwrap();
        assert_eq!(s.approvers, Some(vec![UserId(11), UserId(22)]));
        assert_eq!(s.delete_ids, None, "deleting defaults to the approvers");
        assert_eq!(s.reject_reasons, vec!["a", "b", "c"]);
        assert_eq!(s.lang, Lang::En);
        assert_eq!(
            s.plugins[0].wechat.token_mode,
            TokenMode::File("/run/wx/token".into())
        );
        assert_eq!(s.time_zone.iana_name(), Some("Asia/Shanghai"));
    }

    #[test]
    fn operations_settings_parse() {
        let s = load(&base()).unwrap();
        assert_eq!(s.remind_after, Some(Duration::from_secs(24 * 3600)));
        assert!(s.metrics_addr.is_none() && s.webhook.is_none());

        let mut vars = base();
        vars.insert("REMIND_AFTER_HOURS", "0");
        vars.insert("METRICS_ADDR", "127.0.0.1:9100");
        vars.insert("TELEGRAM_WEBHOOK_URL", "https://bot.example.com/tg/hook");
        let s = load(&vars).unwrap();
        assert_eq!(s.remind_after, None);
        assert_eq!(s.metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
        for (hours, seconds) in [("0.5", 1800), (" 1.25 ", 4500), ("2", 7200)] {
            let mut vars = base();
            vars.insert("REMIND_AFTER_HOURS", hours);
            let s = load(&vars).unwrap();
            assert_eq!(
                s.remind_after,
                Some(Duration::from_secs(seconds)),
                "{hours}"
            );
        }
        let webhook = s.webhook.unwrap();
        assert_eq!(webhook.listen, "0.0.0.0:8443".parse().unwrap());
        use secrecy::ExposeSecret;
        let generated = webhook.secret.expose_secret().to_owned();
        assert_eq!(generated.len(), 32);
        assert!(webhook_secret(generated.clone()).is_ok(), "{generated}");
        let again = load(&vars).unwrap().webhook.unwrap();
        assert_ne!(
            again.secret.expose_secret(),
            generated,
            "a new secret per start"
        );

        vars.insert("TELEGRAM_WEBHOOK_SECRET", "has spaces");
        assert_eq!(load(&vars).unwrap_err().var, "TELEGRAM_WEBHOOK_SECRET");
        vars.insert("TELEGRAM_WEBHOOK_SECRET", "s3cret_token-1");
        vars.insert("TELEGRAM_WEBHOOK_LISTEN", "nope");
        assert_eq!(load(&vars).unwrap_err().var, "TELEGRAM_WEBHOOK_LISTEN");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = load(&base()).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("topsecret-value"));
        assert!(!shown.contains("123:abc"));
    }
}
