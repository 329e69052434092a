//! The bot's metrics: their names, and one recording function per event, all through the
//! `metrics` facade (recording is a no-op until [`install`] sets the Prometheus recorder). A leaf:
//! callers hand in plain labels, so any layer may record without this module knowing it. The
//! `/metrics` and `/healthz` routes are served by the wiring (`bot`), where the app is.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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
/// 1 while this replica leads (polls WeChat), else 0.
pub const LEADER: &str = "wxplugin_leader";
/// Lease renewals by this replica, by `result` (ok, lost, error).
pub const LEASE_RENEWALS: &str = "wxplugin_lease_renewals_total";
/// Times this replica took the lease.
pub const LEASE_TAKEN: &str = "wxplugin_lease_taken_total";

/// Always 1, labelled with the running version: which build answers, and since when (with
/// `process_start_time_seconds`).
pub const BUILD_INFO: &str = "wxplugin_build_info";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's own metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, `process_start_time_seconds`, …), read from the OS by `metrics-process`.
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

/// Reads the process metrics now: called on every `/metrics` scrape.
pub fn collect_process() {
    if let Some(collector) = PROCESS.get() {
        collector.collect();
    }
}

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
        let process = PROCESS.get_or_init(metrics_process::Collector::default);
        process.describe();
        metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
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
        "Applicants in the last successful poll, by plugin and status"
    );
    describe_counter!(CARDS_POSTED, "Cards posted to the team chat, by plugin");
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label names the running build"
    );
    describe_counter!(
        DECISIONS,
        "Decisions carried out, by plugin, action and result"
    );
    describe_counter!(
        WECHAT_CALLS,
        "WeChat devplugin calls, by plugin, action and errcode"
    );
    describe_counter!(
        POLLS,
        "Polls of WeChat's applicant list, by plugin and result"
    );
    describe_histogram!(
        POLL_DURATION,
        Unit::Seconds,
        "How long polls take, by plugin"
    );
    describe_gauge!(
        LAST_POLL_OK,
        Unit::Seconds,
        "Unix time of each plugin's last successful poll"
    );
    describe_counter!(TELEGRAM_ERRORS, "Failed Telegram calls, by kind");
    describe_counter!(
        TOKEN_REFRESHES,
        "Access token fetches, by plugin, mode and result"
    );
    describe_counter!(REMINDERS, "Stale-applicant reminders posted");
    describe_counter!(
        WEBHOOK_REFUSED,
        "Webhook requests refused for a missing or wrong secret token"
    );
    describe_counter!(
        TELEGRAM_CONFLICTS,
        "Long polls ended by another instance polling the same bot token (409 Conflict)"
    );
    describe_gauge!(LEADER, "1 while this replica leads (polls WeChat), else 0");
    describe_counter!(
        LEASE_RENEWALS,
        "Renewals of the leader lease by this replica, by result (ok, lost, error)"
    );
    describe_counter!(LEASE_TAKEN, "Times this replica took the leader lease");
    describe_counter!(
        TEAM_CHAT_UPGRADED,
        "Telegram calls refused because the team chat became a supergroup (TEAM_CHAT_ID is outdated)"
    );
}

/// Records one devplugin call's answer: `errcode` is "0", WeChat's code, or what failed instead
/// (`transport`, `http_503`, `decode`).
pub fn wechat_call(plugin: &str, action: &str, errcode: String) {
    metrics::counter!(WECHAT_CALLS, "plugin" => plugin.to_owned(), "action" => action.to_owned(), "errcode" => errcode)
        .increment(1);
}

/// Records an access token fetch.
pub fn token_refresh(plugin: &str, mode: &'static str, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    metrics::counter!(TOKEN_REFRESHES, "plugin" => plugin.to_owned(), "mode" => mode, "result" => result)
        .increment(1);
}

/// Records a decision's result: `ok`, `error` (WeChat said no) or `unknown` (no reliable answer).
pub fn decision(plugin: &str, action: &'static str, result: &'static str) {
    metrics::counter!(DECISIONS, "plugin" => plugin.to_owned(), "action" => action, "result" => result)
        .increment(1);
}

/// Records a posted card.
pub fn card_posted(plugin: &str) {
    metrics::counter!(CARDS_POSTED, "plugin" => plugin.to_owned()).increment(1);
}

/// Records a posted reminder.
pub fn reminder_sent() {
    metrics::counter!(REMINDERS).increment(1);
}

/// Records a webhook request refused for its secret token.
pub fn webhook_refused() {
    metrics::counter!(WEBHOOK_REFUSED).increment(1);
}

/// Records a failed Telegram call by `kind` (retry_after, network, api, conflict, migrated,
/// other).
pub fn telegram_error(kind: &'static str) {
    metrics::counter!(TELEGRAM_ERRORS, "kind" => kind).increment(1);
}

/// Records a long poll ended by another instance polling the same token (409 Conflict).
pub fn telegram_conflict() {
    metrics::counter!(TELEGRAM_CONFLICTS).increment(1);
}

/// Records a call refused because the team chat became a supergroup.
pub fn team_chat_upgraded() {
    metrics::counter!(TEAM_CHAT_UPGRADED).increment(1);
}

/// Records a finished poll: `ok`, `error` or `paused` (WeChat's daily quota).
pub fn poll(plugin: &str, result: &'static str, took: Duration) {
    metrics::counter!(POLLS, "plugin" => plugin.to_owned(), "result" => result).increment(1);
    metrics::histogram!(POLL_DURATION, "plugin" => plugin.to_owned()).record(took.as_secs_f64());
    if result == "ok" {
        metrics::gauge!(LAST_POLL_OK, "plugin" => plugin.to_owned())
            .set(jiff::Timestamp::now().as_second() as f64);
    }
}

/// Records what a successful poll listed: a count for every status name (every known status,
/// so a count that drops to zero shows zero).
pub fn applicants_listed(plugin: &str, counts: &[(&'static str, usize)]) {
    for (status, n) in counts {
        metrics::gauge!(APPLICANTS, "plugin" => plugin.to_owned(), "status" => *status)
            .set(*n as f64);
    }
}

/// Records whether this replica leads.
pub fn leader(leads: bool) {
    metrics::gauge!(LEADER).set(if leads { 1.0 } else { 0.0 });
}

/// Records a lease renewal: `ok`, `lost` (another replica took it) or `error`.
pub fn lease_renewal(result: &'static str) {
    metrics::counter!(LEASE_RENEWALS, "result" => result).increment(1);
}

/// Records this replica taking the lease.
pub fn lease_taken() {
    metrics::counter!(LEASE_TAKEN).increment(1);
}
