//! Operating the bot: Prometheus metrics (through the `metrics` facade, so recording is a no-op
//! until an exporter is installed) and a health check, served on `METRICS_ADDR` or beside the
//! Telegram webhook.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::app::App;
use crate::applicant::Applicant;
use crate::store::now_secs;
use crate::wechat::WeChatError;

/// Applicants in the last successful poll, by status (`status` label).
pub const APPLICANTS: &str = "wxplugin_applicants";
/// Cards posted to the team chat.
pub const CARDS_POSTED: &str = "wxplugin_cards_posted_total";
/// Decisions carried out, by `action` and `result` (ok, error, unknown).
pub const DECISIONS: &str = "wxplugin_decisions_total";
/// WeChat devplugin calls, by `action` and `errcode` (0, a code, or transport/http/decode).
pub const WECHAT_CALLS: &str = "wxplugin_wechat_calls_total";
/// Polls, by `result` (ok, error, paused).
pub const POLLS: &str = "wxplugin_polls_total";
/// How long polls take.
pub const POLL_DURATION: &str = "wxplugin_poll_duration_seconds";
/// Unix time of the last successful poll.
pub const LAST_POLL_OK: &str = "wxplugin_last_successful_poll_timestamp_seconds";
/// Failed Telegram calls, by `kind` (retry_after, network, api, other).
pub const TELEGRAM_ERRORS: &str = "wxplugin_telegram_errors_total";
/// Access token fetches, by `mode` and `result`.
pub const TOKEN_REFRESHES: &str = "wxplugin_token_refreshes_total";
/// Stale-applicant reminders posted.
pub const REMINDERS: &str = "wxplugin_reminders_sent_total";
/// Webhook requests refused for a missing or wrong secret token.
pub const WEBHOOK_REFUSED: &str = "wxplugin_webhook_refused_total";
/// Long polls Telegram ended with 409 because another instance polls the same token.
pub const TELEGRAM_CONFLICTS: &str = "wxplugin_telegram_conflict_total";
/// Telegram calls refused because the team chat was upgraded to a supergroup.
pub const TEAM_CHAT_UPGRADED: &str = "wxplugin_telegram_chat_upgraded_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once; later calls return the same handle).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(POLL_DURATION.to_owned()),
            &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
        )?
        .build_recorder();
    let handle = recorder.handle();
    // Another thread may have won the race; whichever recorder is global, use its handle.
    if metrics::set_global_recorder(recorder).is_ok() {
        let _ = HANDLE.set(handle.clone());
        describe();
    }
    HANDLE
        .get()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("a metrics recorder not ours is already installed"))
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        APPLICANTS,
        "Applicants in the last successful poll, by status"
    );
    describe_counter!(CARDS_POSTED, "Cards posted to the team chat");
    describe_counter!(DECISIONS, "Decisions carried out, by action and result");
    describe_counter!(
        WECHAT_CALLS,
        "WeChat devplugin calls, by action and errcode"
    );
    describe_counter!(POLLS, "Polls of WeChat's applicant list, by result");
    describe_histogram!(POLL_DURATION, Unit::Seconds, "How long polls take");
    describe_gauge!(
        LAST_POLL_OK,
        Unit::Seconds,
        "Unix time of the last successful poll"
    );
    describe_counter!(TELEGRAM_ERRORS, "Failed Telegram calls, by kind");
    describe_counter!(TOKEN_REFRESHES, "Access token fetches, by mode and result");
    describe_counter!(REMINDERS, "Stale-applicant reminders posted");
    describe_counter!(
        WEBHOOK_REFUSED,
        "Webhook requests refused for a missing or wrong secret token"
    );
    describe_counter!(
        TELEGRAM_CONFLICTS,
        "Long polls ended by another instance polling the same bot token (409 Conflict)"
    );
    describe_counter!(
        TEAM_CHAT_UPGRADED,
        "Telegram calls refused because the team chat became a supergroup (TEAM_CHAT_ID is outdated)"
    );
}

/// Records one devplugin call's answer.
pub fn wechat_call(action: &str, error: Option<&WeChatError>) {
    let errcode = match error {
        None => "0".to_owned(),
        Some(e) => match e.errcode() {
            Some(code) => code.to_string(),
            None => match e {
                WeChatError::Transport { .. } => "transport".to_owned(),
                WeChatError::Http { status } => format!("http_{status}"),
                WeChatError::Decode { .. } => "decode".to_owned(),
                _ => "other".to_owned(),
            },
        },
    };
    metrics::counter!(WECHAT_CALLS, "action" => action.to_owned(), "errcode" => errcode)
        .increment(1);
}

/// Records an access token fetch.
pub fn token_refresh(mode: &'static str, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    metrics::counter!(TOKEN_REFRESHES, "mode" => mode, "result" => result).increment(1);
}

/// Records a decision's result: `ok`, `error` (WeChat said no) or `unknown` (no reliable answer).
pub fn decision(action: &'static str, error: Option<&WeChatError>) {
    let result = match error {
        None => "ok",
        Some(WeChatError::OutcomeUnknown { .. }) => "unknown",
        Some(_) => "error",
    };
    metrics::counter!(DECISIONS, "action" => action, "result" => result).increment(1);
}

/// Records a posted card.
pub fn card_posted() {
    metrics::counter!(CARDS_POSTED).increment(1);
}

/// Records a posted reminder.
pub fn reminder_sent() {
    metrics::counter!(REMINDERS).increment(1);
}

/// Records a webhook request refused for its secret token.
pub fn webhook_refused() {
    metrics::counter!(WEBHOOK_REFUSED).increment(1);
}

/// Records a failed Telegram call. A call refused because the team chat became a supergroup is
/// also counted apart and logged as an error, once per new chat id per process: it names the
/// `TEAM_CHAT_ID` to set.
///
/// The bot does not follow the migration by itself: every card's message id belongs to the old
/// chat (edits in the new one would hit other messages or none), approvers may be the old chat's
/// admins, and an operator who configured one chat should decide where approvals go.
pub fn telegram_error(error: &teloxide::RequestError) {
    use teloxide::RequestError as E;
    let kind = match error {
        E::RetryAfter(_) => "retry_after",
        E::Network(_) | E::Io(_) => "network",
        E::Api(teloxide::ApiError::TerminatedByOtherGetUpdates) => "conflict",
        E::Api(_) => "api",
        E::MigrateToChatId(_) => "migrated",
        _ => "other",
    };
    metrics::counter!(TELEGRAM_ERRORS, "kind" => kind).increment(1);
    match error {
        E::Api(teloxide::ApiError::TerminatedByOtherGetUpdates) => {
            metrics::counter!(TELEGRAM_CONFLICTS).increment(1);
        }
        E::MigrateToChatId(new) => team_chat_upgraded(new.0),
        _ => {}
    }
}

/// Counts a call refused for an upgraded team chat and logs the new id once.
fn team_chat_upgraded(new: i64) {
    static LOGGED: std::sync::Mutex<Vec<i64>> = std::sync::Mutex::new(Vec::new());
    metrics::counter!(TEAM_CHAT_UPGRADED).increment(1);
    let first = match LOGGED.lock() {
        Ok(mut logged) if !logged.contains(&new) => {
            logged.push(new);
            true
        }
        Ok(_) => false,
        Err(_) => true,
    };
    if first {
        tracing::error!(
            new_chat_id = new,
            "the team chat was upgraded to a supergroup and Telegram refuses every call about the old id: set TEAM_CHAT_ID={new} and restart (the bot does not follow it by itself; cards in the old chat stay as they are)"
        );
    }
}

/// Another instance long-polling the same bot token, as the 409s show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelegramConflict {
    /// Unix time of the first 409 of this episode.
    pub since: i64,
    /// Unix time of the latest 409.
    pub last_at: i64,
    /// 409s in this episode.
    pub count: u64,
}

/// 409s further apart than this are separate episodes (each logged once).
pub const CONFLICT_EPISODE_SECS: i64 = 600;

/// The bot's record of 409 Conflicts, for the log (once per episode) and `/status`.
#[derive(Debug, Default)]
pub struct TelegramConflicts {
    state: std::sync::Mutex<Option<TelegramConflict>>,
}

impl TelegramConflicts {
    /// Records a 409 at `now`; whether it starts a new episode (then it deserves a log line).
    pub fn record(&self, now: i64) -> bool {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match state.as_mut() {
            Some(c) if now - c.last_at <= CONFLICT_EPISODE_SECS => {
                c.last_at = now;
                c.count += 1;
                false
            }
            _ => {
                *state = Some(TelegramConflict {
                    since: now,
                    last_at: now,
                    count: 1,
                });
                true
            }
        }
    }

    /// The conflict going on at `now`: a 409 within the last [`CONFLICT_EPISODE_SECS`].
    pub fn current(&self, now: i64) -> Option<TelegramConflict> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.filter(|c| now - c.last_at <= CONFLICT_EPISODE_SECS)
    }
}

/// Records a finished poll: `ok`, `error` or `paused` (WeChat's daily quota).
pub fn poll(result: &'static str, took: Duration) {
    metrics::counter!(POLLS, "result" => result).increment(1);
    metrics::histogram!(POLL_DURATION).record(took.as_secs_f64());
    if result == "ok" {
        metrics::gauge!(LAST_POLL_OK).set(now_secs() as f64);
    }
}

/// Records what a successful poll listed, by status (every known status, so a count that drops
/// to zero shows zero).
pub fn poll_listed(listed: &[Applicant]) {
    let mut counts: Vec<(&'static str, usize)> = ["pending", "approved", "refused", "expired"]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
    for a in listed {
        let name = a.status.name();
        match counts.iter_mut().find(|(s, _)| *s == name) {
            Some((_, n)) => *n += 1,
            None => counts.push((name, 1)),
        }
    }
    for (status, n) in counts {
        metrics::gauge!(APPLICANTS, "status" => status).set(n as f64);
    }
}

/// What `/healthz` answers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Health {
    /// Whether the bot is polling WeChat successfully.
    pub ok: bool,
    /// Unix time of the last successful poll.
    pub last_ok_at: Option<i64>,
    /// Seconds since then (or since start, before the first).
    pub age_secs: i64,
    /// Oldest acceptable age.
    pub max_age_secs: i64,
    /// The last poll error, redacted.
    pub last_error: Option<String>,
}

/// The bot's health now.
pub fn health(app: &App) -> Health {
    let (last_ok_at, last_error) = match app.health.lock() {
        Ok(h) => (h.last_ok_at, h.last_error.clone()),
        Err(_) => (None, Some("health state poisoned".to_owned())),
    };
    health_at(
        now_secs(),
        app.started_at,
        last_ok_at,
        last_error,
        app.settings.poll_interval,
    )
}

/// Healthy while the last successful poll (or the start, before one) is at most three poll
/// intervals old: one failed poll is weather, three in a row is an outage.
pub fn health_at(
    now: i64,
    started_at: i64,
    last_ok_at: Option<i64>,
    last_error: Option<String>,
    interval: Duration,
) -> Health {
    let max_age_secs = 3 * interval.as_secs() as i64;
    let age_secs = (now - last_ok_at.unwrap_or(started_at)).max(0);
    Health {
        ok: age_secs <= max_age_secs,
        last_ok_at,
        age_secs,
        max_age_secs,
        last_error,
    }
}

/// `/metrics` and `/healthz`.
pub fn router(app: Arc<App>, handle: PrometheusHandle) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(
                |State((_, handle)): State<(Arc<App>, PrometheusHandle)>| async move {
                    handle.run_upkeep();
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        handle.render(),
                    )
                },
            ),
        )
        .route("/healthz", get(healthz))
        .with_state((app, handle))
}

async fn healthz(State((app, _)): State<(Arc<App>, PrometheusHandle)>) -> Response {
    let health = health(&app);
    let status = if health.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(health)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_logged_once_per_episode() {
        let conflicts = TelegramConflicts::default();
        assert_eq!(conflicts.current(1_000), None);
        assert!(conflicts.record(1_000));
        assert!(!conflicts.record(1_002));
        assert!(!conflicts.record(1_500));
        let now = conflicts.current(1_500).unwrap();
        assert_eq!((now.since, now.last_at, now.count), (1_000, 1_500, 3));
        assert_eq!(conflicts.current(1_500 + CONFLICT_EPISODE_SECS + 1), None);
        assert!(conflicts.record(1_500 + CONFLICT_EPISODE_SECS + 1));
    }

    #[test]
    fn health_fails_after_three_intervals_without_a_good_poll() {
        let minute = Duration::from_secs(60);
        assert!(health_at(1_000, 1_000, None, None, minute).ok);
        assert!(health_at(1_180, 1_000, None, None, minute).ok);
        assert!(!health_at(1_181, 1_000, None, None, minute).ok);
        let h = health_at(5_000, 1_000, Some(4_900), Some("x".into()), minute);
        assert!(h.ok);
        assert_eq!((h.age_secs, h.max_age_secs), (100, 180));
        assert!(!health_at(5_000, 1_000, Some(4_000), None, minute).ok);
    }
}
