//! Stale applicants: WeChat times an application out if nobody decides, so pending applicants
//! older than `REMIND_AFTER_HOURS` are listed in the team chat, each at most once a day, with
//! links to their cards, once their cards have been up for a while (`remind_settle`); those older
//! than `ESCALATE_AFTER_HOURS` are escalated once, naming every approver and messaging the
//! approvers who subscribed.

use std::time::{Duration, Instant};

use crate::domain::now_secs;
use crate::i18n::fill;
use crate::lifecycle::app::App;
use crate::store::{DueReminder, StoreError};
use crate::telegram::html::{escape, nickname_html};

/// At most this many applicants per reminder; the rest are counted.
pub const LISTED: usize = 20;

/// How often the poller looks for applicants to remind of.
pub const CHECK_EVERY: Duration = Duration::from_secs(600);

/// One applicant is mentioned at most once in this long.
pub const REMIND_EVERY_SECS: i64 = 24 * 3600;

/// `after` in hours as people write them: `24`, `0.5`, `1.25` (to the hundredth).
fn hours_text(after: Duration) -> String {
    let hundredths = (after.as_secs() * 100 + 1800) / 3600;
    let text = format!("{}.{:02}", hundredths / 100, hundredths % 100);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Posts one reminder listing the pending applicants older than `REMIND_AFTER_HOURS` that were
/// not mentioned in the last day (the first [`LISTED`] by name, the rest counted); returns how
/// many it reminded of (0 when none are due, or when reminders are off).
pub async fn remind(app: &App) -> Result<usize, StoreError> {
    let Some(after) = app.settings.remind_after else {
        return Ok(0);
    };
    let now = now_secs();
    let due = app
        .store
        .due_reminders(
            app.desk.chat.0,
            now - after.as_secs() as i64,
            now - REMIND_EVERY_SECS,
            now - app.settings.remind_settle.as_secs() as i64,
        )
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let t = app.texts();
    let mut text = fill(
        t.reminder_header,
        &[("n", &due.len().to_string()), ("hours", &hours_text(after))],
    );
    let listed = &due[..due.len().min(LISTED)];
    for due in listed {
        text.push('\n');
        text.push_str(&due_line(app, due, now));
    }
    if due.len() > listed.len() {
        text.push('\n');
        text.push_str(&fill(
            t.reminder_more,
            &[("n", &(due.len() - listed.len()).to_string())],
        ));
    }
    if !app.desk.announce(text).await {
        return Ok(0);
    }
    // Those past the first LISTED were counted in the message: they were reminded of too, or 45
    // overdue applicants would bring three reminders in twenty minutes.
    let ids: Vec<i64> = due.iter().map(|due| due.card.id).collect();
    app.store.mark_reminded(&ids, now).await?;
    crate::telemetry::reminder_sent();
    tracing::info!(
        listed = listed.len(),
        counted = ids.len(),
        "reminded the team of waiting applicants"
    );
    Ok(ids.len())
}

/// How long an applicant has waited since `since`, as people say it.
fn waited_text(now: i64, since: i64, t: &crate::i18n::Texts) -> String {
    let waited = (now - since).max(0);
    if waited < 3600 {
        // Reminders may come after half an hour (`REMIND_AFTER_HOURS=0.5`).
        crate::telegram::view::format_duration(Duration::from_secs(waited as u64), t)
    } else if waited < 2 * 86_400 {
        fill(t.waited_hours, &[("n", &(waited / 3600).to_string())])
    } else {
        fill(t.waited_days, &[("n", &(waited / 86_400).to_string())])
    }
}

/// One applicant's line in a reminder or an escalation: its name linked to its card, its appid
/// and how long it has waited.
fn due_line(app: &App, due: &DueReminder, now: i64) -> String {
    let t = app.texts();
    let (card, a) = (&due.card, &due.applicant.applicant);
    let name = nickname_html(a.nickname.as_deref(), t);
    let name = match card.message_id.and_then(|m| app.desk.message_link(m)) {
        Some(link) => format!("<a href=\"{}\">{name}</a>", escape(&link)),
        None => format!("<b>{name}</b>"),
    };
    fill(
        t.reminder_line,
        &[
            ("name", &name),
            ("appid", &escape(a.appid.as_str())),
            ("waited", &waited_text(now, due.since, t)),
        ],
    )
}

/// Escalates, once per application, the pending applicants that have waited longer than
/// `ESCALATE_AFTER_HOURS` since they applied (else since first seen): one message in the team
/// chat naming every approver with a text mention (which works for people without a
/// username), and a direct message per applicant to each subscriber. Returns how many it
/// escalated (0 when none are due, or when escalation is off).
pub async fn escalate(app: &App) -> Result<usize, StoreError> {
    let Some(after) = app.settings.escalate_after else {
        return Ok(0);
    };
    let now = now_secs();
    let due = app
        .store
        .due_escalations(
            app.desk.chat.0,
            now - after.as_secs() as i64,
            now - app.settings.remind_settle.as_secs() as i64,
        )
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let t = app.texts();
    let mut text = fill(
        t.escalation_header,
        &[("n", &due.len().to_string()), ("hours", &hours_text(after))],
    );
    let listed = &due[..due.len().min(LISTED)];
    for due in listed {
        text.push('\n');
        text.push_str(&due_line(app, due, now));
    }
    if due.len() > listed.len() {
        text.push('\n');
        text.push_str(&fill(
            t.reminder_more,
            &[("n", &(due.len() - listed.len()).to_string())],
        ));
    }
    // The approvers of the plugins whose applicants are escalated, each named once.
    let mut named: Vec<(teloxide::types::UserId, String)> = Vec::new();
    let mut asked: Vec<&crate::telegram::approver::Approvers> = Vec::new();
    for due in &due {
        let set = app.approvers.of(due.card.plugin.as_str());
        if asked.iter().any(|a| std::ptr::eq(*a, set)) {
            continue;
        }
        asked.push(set);
        for (id, name) in set.list(&app.desk.bot, app.desk.chat).await {
            if !named.iter().any(|(n, _)| *n == id) {
                named.push((id, name));
            }
        }
    }
    let mentions: Vec<String> = named
        .into_iter()
        .map(|(id, name)| {
            format!(
                "<a href=\"tg://user?id={}\">{}</a>",
                id.0,
                escape(&crate::telegram::html::clean(&name, 64, false))
            )
        })
        .collect();
    if !mentions.is_empty() {
        text.push_str("\n\n");
        text.push_str(&fill(
            t.escalation_approvers,
            &[("mentions", &mentions.join(" "))],
        ));
    }
    if !app.desk.announce(text).await {
        return Ok(0);
    }
    let ids: Vec<i64> = due.iter().map(|due| due.card.id).collect();
    app.store.mark_escalated(&ids, now).await?;
    let subscribers = app.store.subscribers().await?;
    for due in &due {
        if subscribers.is_empty() {
            break;
        }
        let a = &due.applicant.applicant;
        let html = fill(
            t.dm_escalation,
            &[
                ("name", &nickname_html(a.nickname.as_deref(), t)),
                ("appid", &escape(a.appid.as_str())),
                ("waited", &waited_text(now, due.since, t)),
                ("card", &app.desk.card_pointer(due.card.message_id).await),
            ],
        );
        app.desk.message_subscribers(&subscribers, &html).await;
    }
    tracing::info!(
        escalated = ids.len(),
        approvers = mentions.len(),
        subscribers = subscribers.len(),
        "escalated applicants waiting too long"
    );
    Ok(ids.len())
}

/// Whether the poller should look for due reminders now.
pub fn check_due(last: Option<Instant>) -> bool {
    last.is_none_or(|at| at.elapsed() >= CHECK_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_read_as_configured() {
        for (secs, text) in [
            (86_400, "24"),
            (1800, "0.5"),
            (4500, "1.25"),
            (3600, "1"),
            (36_000, "10"),
            (60, "0.02"),
        ] {
            assert_eq!(hours_text(Duration::from_secs(secs)), text, "{secs}");
        }
    }
}
