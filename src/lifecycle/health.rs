//! Whether the bot is doing its job: the verdict `/healthz` gives from each plugin's poller's
//! record of its last polls ([`crate::lifecycle::plugin::PollHealth`]) and the lease. One
//! plugin whose polls fail makes the bot unhealthy, and the answer says which.

use std::time::Duration;

use crate::domain::now_secs;
use crate::lifecycle::app::App;

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
    /// This replica's name (`REPLICA_NAME`).
    pub replica: String,
    /// Whether this replica leads (polls WeChat). A standby is healthy while it reaches the
    /// lease: it serves webhook updates and is ready to take over.
    pub leading: bool,
    /// The leading replica, as last read (`None`: none leads just now).
    pub leader: Option<String>,
    /// Since when it leads (unix seconds).
    pub leader_since: Option<i64>,
    /// Each plugin's polls, in the order configured.
    pub plugins: Vec<PluginHealth>,
}

/// One plugin's polls, as `/healthz` lists them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PluginHealth {
    /// The plugin's name.
    pub name: String,
    /// Whether its polls succeed.
    pub ok: bool,
    /// Unix time of its last successful poll.
    pub last_ok_at: Option<i64>,
    /// Seconds since then (or since start, before the first).
    pub age_secs: i64,
    /// Its last poll error, redacted.
    pub last_error: Option<String>,
}

/// The bot's health now.
pub fn health(app: &App) -> Health {
    let now = now_secs();
    let plugins: Vec<PluginHealth> = app
        .plugins
        .iter()
        .map(|poller| {
            let (last_ok_at, last_error) = match poller.health.lock() {
                Ok(h) => (h.last_ok_at, h.last_error.clone()),
                Err(_) => (None, Some("health state poisoned".to_owned())),
            };
            let one = health_at(
                now,
                app.started_at,
                last_ok_at,
                last_error,
                app.settings.poll_interval,
            );
            PluginHealth {
                name: poller.name.clone(),
                ok: one.ok,
                last_ok_at: one.last_ok_at,
                age_secs: one.age_secs,
                last_error: one.last_error,
            }
        })
        .collect();
    // The bot is as healthy as its least healthy plugin: the top-level figures are that
    // plugin's, its error named when there are several.
    let worst = plugins.iter().max_by_key(|p| (!p.ok, p.age_secs)).cloned();
    let several = plugins.len() > 1;
    let (last_ok_at, last_error) = match &worst {
        Some(w) => (
            w.last_ok_at,
            w.last_error.as_ref().map(|e| {
                if several {
                    format!("plugin {}: {e}", w.name)
                } else {
                    e.clone()
                }
            }),
        ),
        None => (None, None),
    };
    let mut health = health_at(
        now,
        app.started_at,
        last_ok_at,
        last_error,
        app.settings.poll_interval,
    );
    health.plugins = plugins;
    let view = app.leadership.view();
    health.replica = app.leadership.me.clone();
    health.leading = app.leadership.leads();
    health.leader = view.leader.as_ref().map(|(name, _)| name.clone());
    health.leader_since = view.leader.as_ref().map(|(_, since)| *since);
    if !health.leading {
        // A standby's own polls say nothing; what it needs is the database.
        let reach = 3 * app.leadership.every();
        health.ok = view
            .lease_ok_at
            .is_some_and(|at| at.elapsed() <= reach.max(Duration::from_secs(5)));
        if !health.ok {
            health.last_error = view.last_error.or(health.last_error);
        }
    }
    health
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
        replica: String::new(),
        leading: false,
        leader: None,
        leader_since: None,
        plugins: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
