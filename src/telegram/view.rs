//! The card as the chat sees it: its HTML text and its buttons, rendered from stored state alone,
//! so any edit (by a press, a command or the poller) shows the same truth and re-rendering an
//! unchanged card is harmless.

use std::fmt::Write as _;

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::domain::action::Action;
use crate::domain::applicant::{Applicant, ApplyStatus};
use crate::domain::audit::HistoryEntry;
use crate::domain::card::{Card, CardState, Note};
use crate::i18n::{Lang, Texts, fill};
use crate::telegram::callback::{Press, reason_key};
use crate::telegram::html::{clean, cut_utf16, escape, name_html, nickname_html, safe_url};
use crate::wechat::{OUTSIDE_TEXT_MAX_CHARS, WeChatError, errcode_meaning};

/// Formats a timestamp in the configured zone.
pub fn format_time(at: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_second(at) {
        Ok(ts) => {
            let zoned = ts.to_zoned(tz.clone());
            format!(
                "{} {}",
                zoned.strftime("%Y-%m-%d %H:%M"),
                utc_offset(zoned.offset().seconds())
            )
        }
        Err(_) => at.to_string(),
    }
}

/// [`format_time`] to the second: when an undo window ends.
pub fn format_time_seconds(at: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_second(at) {
        Ok(ts) => {
            let zoned = ts.to_zoned(tz.clone());
            format!(
                "{} {}",
                zoned.strftime("%H:%M:%S"),
                utc_offset(zoned.offset().seconds())
            )
        }
        Err(_) => at.to_string(),
    }
}

/// A UTC offset as people read it, never an abbreviation that means several zones (`CST` is
/// China, US Central and Cuba): `UTC`, `UTC+8`, `UTC+5:30`, `UTC-3`.
pub fn utc_offset(seconds: i32) -> String {
    if seconds == 0 {
        return "UTC".to_owned();
    }
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    let (h, m) = (minutes / 60, minutes % 60);
    if m == 0 {
        format!("UTC{sign}{h}")
    } else {
        format!("UTC{sign}{h}:{m:02}")
    }
}

/// A duration as people say it, rounded up: "40 s", "3 min", "1 h 55 min" (in `t`'s language).
pub fn format_duration(d: std::time::Duration, t: &Texts) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    if secs < 90 {
        // To the next ten seconds: an estimate, not a countdown.
        let s = secs.div_ceil(10).max(1) * 10;
        return fill(t.duration_seconds, &[("s", &s.to_string())]);
    }
    let minutes = secs.div_ceil(60);
    if minutes < 60 {
        return fill(t.duration_minutes, &[("m", &minutes.to_string())]);
    }
    fill(
        t.duration_hours,
        &[
            ("h", &(minutes / 60).to_string()),
            ("m", &(minutes % 60).to_string()),
        ],
    )
}

/// A status's name in `lang`.
pub fn status_name(status: ApplyStatus, t: &Texts) -> String {
    match status {
        ApplyStatus::Pending => t.status_pending.to_owned(),
        ApplyStatus::Approved => t.status_approved.to_owned(),
        ApplyStatus::Refused => t.status_refused.to_owned(),
        ApplyStatus::Expired => t.status_expired.to_owned(),
        ApplyStatus::Unknown(code) => fill(t.status_unknown, &[("code", &code.to_string())]),
    }
}

/// An action's name in `lang`.
pub fn action_name(action: Action, t: &Texts) -> &'static str {
    match action {
        Action::Approve => t.action_approve,
        Action::Reject => t.action_reject,
        Action::Delete => t.action_delete,
    }
}

/// An errcode as the chat shows it, in the chat's language: the code and what it means
/// (`45011: API called too often…`, `?` for a code not in the table). Plain text: the caller
/// escapes it.
pub fn errcode_text(code: i64, lang: Lang) -> String {
    fill(
        lang.texts().errcode,
        &[
            ("code", &code.to_string()),
            ("meaning", errcode_meaning(code, lang).unwrap_or("?")),
        ],
    )
}

/// A WeChat error as the chat shows it: [`errcode_text`] and WeChat's own errmsg (it may name
/// what to fix, such as the refused IP) when WeChat answered with a code, else the error itself.
/// Plain text: the caller escapes it. Whatever WeChat sent is cut (an errmsg to
/// [`OUTSIDE_TEXT_MAX_CHARS`], an error without a code to [`ERROR_TEXT_MAX_CHARS`]), so the
/// `/refresh` reply, `/status` and the outage alert quoting it always fit in a message.
pub fn wechat_error_text(error: &WeChatError, lang: Lang) -> String {
    let Some(code) = error.errcode() else {
        return clean(&error.to_string(), ERROR_TEXT_MAX_CHARS, false);
    };
    let mut text = fill(
        lang.texts().wechat_errcode,
        &[("error", &errcode_text(code, lang))],
    );
    if let Some(errmsg) = error.errmsg() {
        let errmsg = clean(&errmsg, OUTSIDE_TEXT_MAX_CHARS, false);
        text.push_str(&fill(lang.texts().errmsg, &[("errmsg", &errmsg)]));
    }
    text
}

/// Most characters of an error shown in a chat message: our words around at most a few texts
/// from outside, each already cut to [`OUTSIDE_TEXT_MAX_CHARS`].
pub const ERROR_TEXT_MAX_CHARS: usize = 400;

/// Everything a card's look depends on.
pub struct CardView<'a> {
    pub applicant: &'a Applicant,
    /// Whether it vanished from WeChat's list.
    pub gone: bool,
    pub card: &'a Card,
    /// Preset refusal reasons.
    pub reasons: &'a [String],
    pub lang: Lang,
    /// Time zone for display.
    pub tz: &'a jiff::tz::TimeZone,
    /// The newest decision the bot made on this applicant that took effect
    /// ([`crate::store::StoredApplicant::before`]), recalled while it waits for a decision.
    pub before: Option<&'a HistoryEntry>,
    /// `APPROVALS_REQUIRED`: with 2 or more the card shows the votes gathered.
    pub approvals_required: u32,
    /// Voters on the card who are no longer approvers: their votes are shown apart and not
    /// counted, as the quorum does not count them.
    pub uncounted: Vec<u64>,
    /// The plugin's name, shown under the title when the bot serves several plugins.
    pub plugin: Option<&'a str>,
}

impl CardView<'_> {
    /// The votes that count towards the quorum.
    fn counted_votes(&self) -> usize {
        self.card
            .votes
            .iter()
            .filter(|v| !self.uncounted.contains(&v.id))
            .count()
    }

    /// The card's HTML text.
    pub fn text(&self) -> String {
        let t = self.lang.texts();
        let a = self.applicant;
        let mut s = String::new();
        let _ = writeln!(s, "{}", t.card_title);
        if let Some(name) = self.plugin {
            let _ = writeln!(s, "{}", fill(t.plugin_line, &[("name", &escape(name))]));
        }
        let _ = writeln!(
            s,
            "<b>{}</b> · <code>{}</code>",
            nickname_html(a.nickname.as_deref(), t),
            escape(a.appid.as_str())
        );
        if let Some(reason) = &a.reason {
            let _ = writeln!(
                s,
                "{}{}{}",
                t.label_reason,
                t.label_sep,
                // Counted as Telegram counts (UTF-16 units): 1,200 emoji would be 2,400.
                escape(&cut_utf16(&clean(reason, 1200, true), 1200))
            );
        }
        if !a.categories.is_empty() {
            let _ = writeln!(
                s,
                "{}{}{}",
                t.label_categories,
                t.label_sep,
                self.categories_html()
            );
        }
        let applied = a.applied_at.map_or_else(
            || t.time_unknown.to_owned(),
            |at| format_time(at.as_second(), self.tz),
        );
        let _ = writeln!(s, "{}{}{applied}", t.label_applied, t.label_sep);
        if let Some(links) = self.links_html() {
            let _ = writeln!(s, "{links}");
        }
        if let Some(line) = self.history_line() {
            let _ = writeln!(s, "{line}");
        }
        if let Some(line) = self.votes_line() {
            let _ = writeln!(s, "{line}");
        }
        s.push('\n');
        s.push_str(&self.outcome_line());
        if let Some(moved) = &self.card.moved {
            let chat = moved.title.clone().unwrap_or_else(|| moved.to.to_string());
            s.push('\n');
            s.push_str(&fill(
                t.line_moved,
                &[
                    ("chat", &escape(&clean(&chat, 128, false))),
                    ("time", &format_time(moved.at, self.tz)),
                ],
            ));
        }
        s
    }

    /// The votes gathered towards the quorum, while the card takes them: `👍 1/2 · Alice`.
    fn votes_line(&self) -> Option<String> {
        let t = self.lang.texts();
        let open = matches!(
            self.card.state,
            CardState::Open | CardState::ChoosingReason | CardState::AwaitingReason
        );
        let open = open || self.card.state == CardState::Scheduled;
        if self.approvals_required < 2 || self.card.votes.is_empty() || !open {
            return None;
        }
        if self.gone || !self.applicant.status.is_decidable() {
            return None;
        }
        let (counted, uncounted): (Vec<_>, Vec<_>) = self
            .card
            .votes
            .iter()
            .partition(|v| !self.uncounted.contains(&v.id));
        let names = |votes: &[&crate::domain::card::Vote]| -> String {
            votes
                .iter()
                .map(|v| name_html(&v.name))
                .collect::<Vec<_>>()
                .join(t.list_sep)
        };
        let mut line = fill(
            t.line_votes,
            &[
                ("n", &counted.len().to_string()),
                ("needed", &self.approvals_required.to_string()),
                ("names", &names(&counted)),
            ],
        );
        if !uncounted.is_empty() {
            line.push_str(&fill(t.votes_uncounted, &[("names", &names(&uncounted))]));
        }
        Some(line)
    }

    /// What the store knows of the applicant's past, shown while a decision is open: the last
    /// decision the bot made on it that took effect, or that there is none on record.
    fn history_line(&self) -> Option<String> {
        let t = self.lang.texts();
        let open = matches!(
            self.card.state,
            CardState::Open | CardState::ChoosingReason | CardState::AwaitingReason
        );
        if !open || self.gone || !self.applicant.status.is_decidable() {
            return None;
        }
        let Some(before) = self.before else {
            return Some(t.history_first.to_owned());
        };
        let template = match before.action {
            Action::Approve => t.history_before_approved,
            Action::Reject => t.history_before_refused,
            Action::Delete => t.history_before_deleted,
        };
        let date = match jiff::Timestamp::from_second(before.at) {
            Ok(ts) => ts
                .to_zoned(self.tz.clone())
                .strftime("%Y-%m-%d")
                .to_string(),
            Err(_) => t.time_unknown.to_owned(),
        };
        let reason = before
            .reason
            .as_deref()
            .map(|r| escape(&clean(r, 200, false)))
            .unwrap_or_default();
        Some(fill(
            template,
            &[
                ("date", &date),
                (
                    "name",
                    &name_html(before.actor_name.as_deref().unwrap_or_default()),
                ),
                ("reason", &reason),
            ],
        ))
    }

    /// The first five categories, `first › second`, cleaned and escaped.
    fn categories_html(&self) -> String {
        let cats: Vec<String> = self
            .applicant
            .categories
            .iter()
            .take(5)
            .map(|c| {
                let first = clean(&c.first, 40, false);
                let second = clean(&c.second, 40, false);
                escape(&if second.is_empty() {
                    first
                } else {
                    format!("{first} › {second}")
                })
            })
            .collect();
        cats.join(self.lang.texts().list_sep)
    }

    /// The avatar and mini-program code links, only those with a safe URL; `None` when neither.
    fn links_html(&self) -> Option<String> {
        let t = self.lang.texts();
        let a = self.applicant;
        let links: Vec<String> = [
            (a.avatar_url.as_deref(), t.label_avatar),
            (a.apply_url.as_deref(), t.label_code),
        ]
        .into_iter()
        .filter_map(|(url, label)| {
            url.and_then(safe_url)
                .map(|u| format!("<a href=\"{}\">{label}</a>", escape(u)))
        })
        .collect();
        (!links.is_empty()).then(|| links.join(" · "))
    }

    /// The one line that says where the application stands.
    pub fn outcome_line(&self) -> String {
        if let Some(line) = self.in_progress_line() {
            return line;
        }
        match &self.card.note {
            Some(note) => self.note_line(note),
            None => self.status_line(),
        }
    }

    /// Why `action` pressed on this card does nothing, in words the presser can act on (plain
    /// text, for an answer to a press): who holds the card and since when, what already happened
    /// and when, where the team chat moved, or the applicant's status. `None` for ↩ Cancel.
    pub fn refusal(&self, action: Option<Action>) -> String {
        let t = self.lang.texts();
        let card = self.card;
        let since = format_time(card.changed_at, self.tz);
        let holder = card
            .actor
            .as_ref()
            .map(|a| clean(&a.name, crate::telegram::html::NAME_MAX_CHARS, false))
            .unwrap_or_default();
        let held = |template: &str| {
            fill(
                template,
                &[
                    ("name", &holder),
                    ("time", &since),
                    (
                        "action",
                        card.action.map(|a| action_name(a, t)).unwrap_or_default(),
                    ),
                ],
            )
        };
        match card.state {
            CardState::Deciding => return held(t.alert_held_deciding),
            CardState::Scheduled => {
                return fill(
                    t.alert_held_scheduled,
                    &[
                        ("name", &holder),
                        (
                            "action",
                            card.action.map(|a| action_name(a, t)).unwrap_or_default(),
                        ),
                        (
                            "due",
                            &format_time_seconds(card.due_at.unwrap_or_default() / 1000, self.tz),
                        ),
                    ],
                );
            }
            CardState::ChoosingReason => return held(t.alert_held_choosing),
            CardState::AwaitingReason => return held(t.alert_held_awaiting),
            _ => {}
        }
        if let Some(moved) = &card.moved {
            let chat = moved.title.clone().unwrap_or_else(|| moved.to.to_string());
            return fill(t.alert_moved, &[("chat", &clean(&chat, 128, false))]);
        }
        match &card.note {
            Some(Note::Unknown { .. }) => t.alert_unsettled.to_owned(),
            Some(note) if !matches!(note, Note::Failed { .. }) => fill(
                t.alert_settled,
                &[(
                    "line",
                    &crate::telegram::html::unescape(&self.note_line(note)),
                )],
            ),
            _ => match action {
                None => t.alert_nothing_to_cancel.to_owned(),
                Some(action) => fill(
                    t.cmd_not_applicable,
                    &[
                        ("appid", self.applicant.appid.as_str()),
                        (
                            "status",
                            &if self.gone {
                                t.status_deleted.to_owned()
                            } else {
                                status_name(self.applicant.status, t)
                            },
                        ),
                        ("action", action_name(action, t)),
                    ],
                ),
            },
        }
    }

    /// While a decision is under way the card says who is making it, whatever its note says.
    fn in_progress_line(&self) -> Option<String> {
        let t = self.lang.texts();
        let card = self.card;
        let actor = card
            .actor
            .as_ref()
            .map(|a| name_html(&a.name))
            .unwrap_or_default();
        let action = card.action.map(|a| action_name(a, t)).unwrap_or_default();
        match card.state {
            CardState::Deciding => Some(fill(
                t.line_deciding,
                &[("name", &actor), ("action", action)],
            )),
            CardState::Scheduled => {
                let due = card.due_at.unwrap_or_default();
                let left = (due - crate::domain::now_millis()).max(0) as u64;
                let mut line = fill(
                    t.line_scheduled,
                    &[
                        ("name", &actor),
                        ("action", action),
                        ("time", &format_time_seconds(due / 1000, self.tz)),
                        (
                            "in",
                            &format_duration(std::time::Duration::from_millis(left), t),
                        ),
                    ],
                );
                if card.resumed {
                    line.push_str(t.line_resumed);
                }
                if let Some(reason) = &card.reason {
                    let _ = write!(line, " — {}", escape(&clean(reason, 300, false)));
                }
                Some(line)
            }
            CardState::ChoosingReason => Some(fill(t.line_choosing, &[("name", &actor)])),
            CardState::AwaitingReason => Some(fill(t.line_awaiting, &[("name", &actor)])),
            _ => None,
        }
    }

    /// The line of a settled card: what its note records.
    fn note_line(&self, note: &Note) -> String {
        let t = self.lang.texts();
        let time = |at: i64| format_time(at, self.tz);
        match note {
            Note::Decided {
                action,
                by,
                at,
                reason,
                late,
            } => {
                let template = match action {
                    Action::Approve => t.line_approved,
                    Action::Reject => t.line_rejected,
                    Action::Delete => t.line_deleted,
                };
                let reason = reason
                    .as_deref()
                    .map(|r| escape(&clean(r, 300, false)))
                    .unwrap_or_default();
                let mut line = fill(
                    template,
                    &[
                        ("name", &name_html(by)),
                        ("time", &time(*at)),
                        ("reason", &reason),
                    ],
                );
                if *late {
                    line.push_str(t.line_late);
                }
                line
            }
            Note::Failed {
                action,
                by,
                at,
                errcode,
                unclear: true,
                ..
            } => fill(
                t.line_not_applied,
                &[
                    ("name", &name_html(by)),
                    ("action", action_name(*action, t)),
                    (
                        "detail",
                        &errcode.map_or_else(String::new, |code| {
                            fill(
                                t.aside,
                                &[("text", &escape(&errcode_text(code, self.lang)))],
                            )
                        }),
                    ),
                    ("time", &time(*at)),
                ],
            ),
            Note::Failed {
                action,
                by,
                at,
                errcode,
                ..
            } => self.failed_line(*action, by, *at, *errcode),
            Note::Unknown { action, by, .. } => fill(
                t.line_unknown,
                &[
                    ("name", &name_html(by)),
                    ("action", action_name(*action, t)),
                ],
            ),
            Note::Elsewhere { status, at } => fill(
                t.line_elsewhere,
                &[
                    ("status", &status_name(ApplyStatus::from_code(*status), t)),
                    ("time", &time(*at)),
                ],
            ),
            Note::Interrupted { action, by, at } => {
                let status = match action.target_status() {
                    Some(status) => status_name(status, t),
                    None => t.status_deleted.to_owned(),
                };
                fill(
                    t.line_interrupted,
                    &[
                        ("status", &status),
                        ("time", &time(*at)),
                        ("name", &name_html(by)),
                        ("action", action_name(*action, t)),
                    ],
                )
            }
            Note::Gone { at } => fill(t.line_gone, &[("time", &time(*at))]),
            Note::Superseded { at } => fill(t.line_superseded, &[("time", &time(*at))]),
            Note::Unserved { plugin, at } => fill(
                t.line_unserved,
                &[("plugin", &escape(plugin)), ("time", &time(*at))],
            ),
        }
    }

    /// A failed decision: WeChat's errcode and its meaning, or that WeChat was not reached.
    fn failed_line(&self, action: Action, by: &str, at: i64, errcode: Option<i64>) -> String {
        let t = self.lang.texts();
        let (template, detail) = match errcode {
            Some(code) => (t.line_failed, escape(&errcode_text(code, self.lang))),
            None => (t.line_failed_plain, t.wechat_unreachable.to_owned()),
        };
        fill(
            template,
            &[
                ("name", &name_html(by)),
                ("action", action_name(action, t)),
                ("detail", &detail),
                ("time", &format_time(at, self.tz)),
            ],
        )
    }

    /// A card with no note: the applicant's status as last read (no time: nothing happened here).
    fn status_line(&self) -> String {
        let t = self.lang.texts();
        if self.gone {
            return t.line_gone.replace(" · {time}", "");
        }
        match self.applicant.status {
            ApplyStatus::Pending => t.line_pending.to_owned(),
            other => fill(
                t.line_elsewhere,
                &[("status", &status_name(other, t)), ("time", "")],
            )
            .trim_end_matches([' ', '·'])
            .to_owned(),
        }
    }

    /// The buttons for the card's current state.
    pub fn keyboard(&self) -> InlineKeyboardMarkup {
        let t = self.lang.texts();
        let id = self.card.id;
        let rows = match self.card.state {
            // Left in a former team chat: decisions are made in the new one.
            _ if self.card.moved.is_some() => vec![],
            CardState::Sending | CardState::Deciding => vec![],
            CardState::Scheduled => vec![vec![button(t.button_undo, Press::Undo(id))]],
            CardState::ChoosingReason => self.reason_rows(),
            CardState::AwaitingReason => vec![vec![button(t.button_cancel, Press::Cancel(id))]],
            CardState::Open | CardState::Closed if self.gone => vec![],
            CardState::Open | CardState::Closed => self.settled_rows(),
        };
        InlineKeyboardMarkup::new(rows)
    }

    /// One button per preset reason, then "other" and "cancel".
    fn reason_rows(&self) -> Vec<Vec<InlineKeyboardButton>> {
        let t = self.lang.texts();
        let id = self.card.id;
        let mut rows: Vec<Vec<InlineKeyboardButton>> = self
            .reasons
            .iter()
            .map(|r| {
                vec![button(
                    &format!("❌ {}", clean(r, 60, false)),
                    Press::Reason(id, reason_key(r)),
                )]
            })
            .collect();
        rows.push(vec![
            button(t.button_other, Press::OtherReason(id)),
            button(t.button_cancel, Press::Cancel(id)),
        ]);
        rows
    }

    /// A card not in a decision: the decisions WeChat's status allows, then a way out of a failure.
    fn settled_rows(&self) -> Vec<Vec<InlineKeyboardButton>> {
        let t = self.lang.texts();
        let id = self.card.id;
        let status = self.applicant.status;
        let mut rows = Vec::new();
        // Nothing is sent for a plugin the bot no longer serves.
        if matches!(self.card.note, Some(Note::Unserved { .. })) {
            return rows;
        }
        // After an unknown outcome the write may have happened: no decision until re-read.
        let unsettled = matches!(self.card.note, Some(Note::Unknown { .. }));
        if self.card.state == CardState::Open && status.is_decidable() && !unsettled {
            let approve = if self.approvals_required > 1 {
                fill(
                    t.button_approve_votes,
                    &[
                        ("n", &self.counted_votes().to_string()),
                        ("needed", &self.approvals_required.to_string()),
                    ],
                )
            } else {
                t.button_approve.to_owned()
            };
            rows.push(vec![
                button(&approve, Press::Approve(id)),
                button(t.button_reject, Press::Reject(id)),
            ]);
            if self.approvals_required > 1 && !self.card.votes.is_empty() {
                rows.push(vec![button(t.button_withdraw, Press::Withdraw(id))]);
            }
        }
        if status.is_deletable() && self.card.state == CardState::Closed {
            rows.push(vec![button(t.button_delete, Press::Delete(id))]);
        }
        let recovery = match &self.card.note {
            Some(Note::Failed {
                retryable: true, ..
            }) => vec![
                button(t.button_retry, Press::Retry(id)),
                button(t.button_refresh, Press::Refresh(id)),
            ],
            Some(Note::Failed { .. } | Note::Unknown { .. }) => {
                vec![button(t.button_refresh, Press::Refresh(id))]
            }
            _ if matches!(status, ApplyStatus::Unknown(_)) => {
                vec![button(t.button_refresh, Press::Refresh(id))]
            }
            _ => vec![],
        };
        if !recovery.is_empty() {
            rows.push(recovery);
        }
        rows
    }
}

fn button(label: &str, press: Press) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(label.to_owned(), press.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_name_their_offset_not_an_abbreviation() {
        let shanghai = jiff::tz::TimeZone::get("Asia/Shanghai").expect("bundled");
        assert_eq!(
            format_time(1_536_305_096, &shanghai),
            "2018-09-07 15:24 UTC+8"
        );
        let india = jiff::tz::TimeZone::get("Asia/Kolkata").expect("bundled");
        assert_eq!(
            format_time(1_536_305_096, &india),
            "2018-09-07 12:54 UTC+5:30"
        );
        assert_eq!(utc_offset(-3 * 3600), "UTC-3");
        assert_eq!(utc_offset(0), "UTC");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        let t = Lang::Zh.texts();
        assert_eq!(
            format_duration(std::time::Duration::from_secs(6877), t),
            "1 小时 55 分钟"
        );
        assert_eq!(
            format_duration(std::time::Duration::from_secs(19), t),
            "20 秒"
        );
        assert_eq!(format_duration(std::time::Duration::ZERO, t), "10 秒");
        let t = Lang::En.texts();
        assert_eq!(
            format_duration(std::time::Duration::from_secs(78), t),
            "80 s"
        );
        assert_eq!(
            format_duration(std::time::Duration::from_secs(181), t),
            "4 min"
        );
    }
    use crate::domain::applicant::{AppId, Category};

    fn applicant() -> Applicant {
        Applicant {
            appid: AppId::parse("wx1234567890abcdef").unwrap(),
            status: ApplyStatus::Pending,
            nickname: Some("<script>alert(1)</script>".into()),
            avatar_url: Some("javascript:alert(1)".into()),
            reason: Some("x".repeat(10_000)),
            apply_url: Some("https://mmbiz.qpic.cn/a?b=1&c=\"2\"".into()),
            applied_at: Some(jiff::Timestamp::from_second(1_536_305_096).unwrap()),
            categories: vec![Category {
                first: "IT科技".into(),
                second: "硬件与设备".into(),
            }],
        }
    }

    fn card(state: CardState) -> Card {
        Card {
            id: 7,
            chat_id: -100,
            plugin: AppId::parse("wxplugin0000000001").unwrap(),
            appid: AppId::parse("wx1234567890abcdef").unwrap(),
            message_id: Some(1),
            state,
            actor: None,
            action: None,
            reason: None,
            note: None,
            prompt_message_id: None,
            previous_message_id: None,
            moved: None,
            votes: Vec::new(),
            due_at: None,
            resumed: false,
            message_gone: false,
            version: 0,
            changed_at: 0,
        }
    }

    #[test]
    fn card_text_is_escaped_cut_and_links_only_http() {
        let a = applicant();
        let c = card(CardState::Open);
        let tz = jiff::tz::TimeZone::UTC;
        let view = CardView {
            applicant: &a,
            gone: false,
            card: &c,
            reasons: &[],
            lang: Lang::En,
            tz: &tz,
            before: None,
            approvals_required: 1,
            uncounted: Vec::new(),
            plugin: None,
        };
        let text = view.text();
        assert!(text.contains("&lt;script&gt;"));
        assert!(!text.contains("<script>"));
        assert!(!text.contains("javascript:"));
        assert!(text.contains("href=\"https://mmbiz.qpic.cn/a?b=1&amp;c=&quot;2&quot;\""));
        assert!(text.chars().count() < 4096);
        assert!(text.contains("2018-09-07 07:24 UTC"));
        assert!(text.ends_with("⏳ Pending"));
    }

    #[test]
    fn an_emoji_heavy_rejected_card_stays_within_telegrams_count() {
        let mut a = applicant();
        a.nickname = Some("😀".repeat(70));
        a.reason = Some("😀".repeat(3000));
        a.categories = (0..6)
            .map(|_| Category {
                first: "🧩".repeat(50),
                second: "🧩".repeat(50),
            })
            .collect();
        let mut c = card(CardState::Closed);
        c.note = Some(Note::Decided {
            action: crate::domain::action::Action::Reject,
            by: "🦀".repeat(70),
            at: 1_536_305_096,
            reason: Some("🚫".repeat(500)),
            late: false,
        });
        let tz = jiff::tz::TimeZone::UTC;
        let view = CardView {
            applicant: &a,
            gone: false,
            card: &c,
            reasons: &[],
            lang: Lang::En,
            tz: &tz,
            before: None,
            approvals_required: 1,
            uncounted: Vec::new(),
            plugin: None,
        };

        let text = view.text();

        let len = crate::telegram::html::telegram_len(&text);
        assert!(len <= 4096, "{len} UTF-16 units");
    }

    #[test]
    fn buttons_follow_state() {
        let mut a = applicant();
        let tz = jiff::tz::TimeZone::UTC;
        let reasons = vec!["too vague".to_owned()];
        let labels = |c: &Card, a: &Applicant| -> Vec<String> {
            CardView {
                applicant: a,
                gone: false,
                card: c,
                reasons: &reasons,
                lang: Lang::En,
                tz: &tz,
                before: None,
                approvals_required: 1,
                uncounted: Vec::new(),
                plugin: None,
            }
            .keyboard()
            .inline_keyboard
            .iter()
            .flatten()
            .map(|b| b.text.clone())
            .collect()
        };
        assert_eq!(
            labels(&card(CardState::Open), &a),
            ["✅ Approve", "❌ Reject"]
        );
        assert_eq!(
            labels(&card(CardState::ChoosingReason), &a),
            ["❌ too vague", "✍️ Other…", "↩ Cancel"]
        );
        assert_eq!(labels(&card(CardState::AwaitingReason), &a), ["↩ Cancel"]);
        assert!(labels(&card(CardState::Deciding), &a).is_empty());
        let mut failed = card(CardState::Open);
        failed.note = Some(Note::Failed {
            action: Action::Approve,
            by: "@a".into(),
            at: 0,
            errcode: Some(-1),
            retryable: true,
            unclear: false,
        });
        assert_eq!(
            labels(&failed, &a),
            ["✅ Approve", "❌ Reject", "🔁 Retry", "🔄 Refresh"]
        );
        a.status = ApplyStatus::Refused;
        assert_eq!(labels(&card(CardState::Closed), &a), ["🗑 Delete"]);
        a.status = ApplyStatus::Approved;
        assert!(labels(&card(CardState::Closed), &a).is_empty());
    }
}
