//! The card: the chat message that stands for one applicant, its buttons, and the callback data
//! those buttons carry.
//!
//! A card is rendered from stored state alone, so any edit (by a press, a command or the poller)
//! shows the same truth, and re-rendering an unchanged card is harmless.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::applicant::{Applicant, ApplyStatus};
use crate::decision::Action;
use crate::i18n::{Lang, Texts, fill};
use crate::wechat::errcode_meaning;

/// Where a card is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardState {
    /// Written, not yet confirmed sent.
    Sending,
    /// Shows ✅ / ❌ (or the recovery buttons after a failure).
    Open,
    /// Shows the preset reasons after ❌.
    ChoosingReason,
    /// Waiting for a typed reason (a ForceReply prompt is out).
    AwaitingReason,
    /// Claimed: a WeChat call is in flight.
    Deciding,
    /// Decided or changed elsewhere; at most 🗑 Delete remains.
    Closed,
}

impl CardState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Open => "open",
            Self::ChoosingReason => "choosing_reason",
            Self::AwaitingReason => "awaiting_reason",
            Self::Deciding => "deciding",
            Self::Closed => "closed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sending" => Self::Sending,
            "open" => Self::Open,
            "choosing_reason" => Self::ChoosingReason,
            "awaiting_reason" => Self::AwaitingReason,
            "deciding" => Self::Deciding,
            "closed" => Self::Closed,
            _ => return None,
        })
    }
}

/// A team member who pressed or commanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// Telegram user id.
    pub id: u64,
    /// `@username`, or the first name when there is none.
    pub name: String,
}

impl Actor {
    /// From a Telegram user.
    pub fn from_user(user: &teloxide::types::User) -> Self {
        let name = match &user.username {
            Some(u) => format!("@{u}"),
            None => user.full_name(),
        };
        Self {
            id: user.id.0,
            name,
        }
    }
}

/// The last outcome a card shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// WeChat confirmed the decision.
    Decided {
        /// What was done.
        action: Action,
        /// Who did it.
        by: String,
        /// When (unix seconds).
        at: i64,
        /// The refusal reason.
        reason: Option<String>,
    },
    /// The decision failed; nothing changed.
    Failed {
        /// What was tried.
        action: Action,
        /// Who tried.
        by: String,
        /// When.
        at: i64,
        /// WeChat's errcode, when it sent one.
        errcode: Option<i64>,
        /// Whether trying again can help.
        retryable: bool,
    },
    /// No reliable answer and the re-read failed too: the truth is not known yet.
    Unknown {
        /// What was tried.
        action: Action,
        /// Who tried.
        by: String,
        /// When.
        at: i64,
    },
    /// The status changed outside the bot (WeChat console, timeout).
    Elsewhere {
        /// The new WeChat status code.
        status: i64,
        /// When the bot noticed.
        at: i64,
    },
    /// The applicant vanished from WeChat's list.
    Gone {
        /// When the bot noticed.
        at: i64,
    },
    /// The applicant is pending again (it applied again, or came back after listings that left
    /// it out); a newer card stands for it. Shown on the old message only.
    Superseded {
        /// When the newer card was posted.
        at: i64,
    },
}

/// A stored card.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    /// Row id; the buttons carry it.
    pub id: i64,
    /// The chat it lives in.
    pub chat_id: i64,
    /// Whose card it is.
    pub appid: crate::applicant::AppId,
    /// The message, once sent.
    pub message_id: Option<i32>,
    /// Where it is.
    pub state: CardState,
    /// Who holds it or last decided.
    pub actor: Option<Actor>,
    /// The decision in flight or last made.
    pub action: Option<Action>,
    /// Its reason.
    pub reason: Option<String>,
    /// The outcome shown.
    pub note: Option<Note>,
    /// The ForceReply prompt, while awaiting a reason.
    pub prompt_message_id: Option<i32>,
    /// A person deleted the message.
    pub message_gone: bool,
    /// Bumped by every change; the message shows the version last edited in.
    pub version: i64,
}

/// What a button press asks for. Encoded in callback data (at most 64 bytes); forgeable, so the
/// card id is always checked against the stored card for the chat and message pressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Press {
    /// ✅
    Approve(i64),
    /// ❌: show the preset reasons.
    Reject(i64),
    /// A preset reason, by [`reason_key`] of its text: the button names the words it shows, so a
    /// reordered or edited `REJECT_REASONS` can never send WeChat other words than the button's.
    Reason(i64, u32),
    /// ✍️ Other…: ask for a typed reason.
    OtherReason(i64),
    /// ↩ Cancel the reject flow.
    Cancel(i64),
    /// 🔁 Retry the failed decision.
    Retry(i64),
    /// 🔄 Re-read the applicant's status.
    Refresh(i64),
    /// 🗑 Delete a refused or timed-out applicant.
    Delete(i64),
}

/// Telegram's limit on callback data.
pub const CALLBACK_DATA_MAX: usize = 64;

impl Press {
    /// The card the press is about.
    pub fn card_id(self) -> i64 {
        match self {
            Self::Approve(id)
            | Self::Reject(id)
            | Self::Reason(id, _)
            | Self::OtherReason(id)
            | Self::Cancel(id)
            | Self::Retry(id)
            | Self::Refresh(id)
            | Self::Delete(id) => id,
        }
    }

    /// The callback data string.
    pub fn encode(self) -> String {
        match self {
            Self::Approve(id) => format!("ap:{id}"),
            Self::Reject(id) => format!("rj:{id}"),
            Self::Reason(id, key) => format!("rs:{id}:{key:08x}"),
            Self::OtherReason(id) => format!("ot:{id}"),
            Self::Cancel(id) => format!("cx:{id}"),
            Self::Retry(id) => format!("rt:{id}"),
            Self::Refresh(id) => format!("rf:{id}"),
            Self::Delete(id) => format!("dl:{id}"),
        }
    }

    /// Parses callback data; anything not produced by [`Press::encode`] is `None`.
    pub fn decode(data: &str) -> Option<Self> {
        if data.len() > CALLBACK_DATA_MAX {
            return None;
        }
        let mut parts = data.split(':');
        let code = parts.next()?;
        let id: i64 = parts.next()?.parse().ok().filter(|id| *id > 0)?;
        let extra = parts.next();
        if parts.next().is_some() {
            return None;
        }
        let strict_id = |p: Press| (p.encode() == data).then_some(p);
        let press = match (code, extra) {
            ("ap", None) => Self::Approve(id),
            ("rj", None) => Self::Reject(id),
            ("rs", Some(k)) if k.len() == 8 => Self::Reason(id, u32::from_str_radix(k, 16).ok()?),
            ("ot", None) => Self::OtherReason(id),
            ("cx", None) => Self::Cancel(id),
            ("rt", None) => Self::Retry(id),
            ("rf", None) => Self::Refresh(id),
            ("dl", None) => Self::Delete(id),
            _ => return None,
        };
        // Reject non-canonical spellings ("ap:+1", "ap:01") so one card has one encoding.
        strict_id(press)
    }
}

/// A preset reason's key: FNV-1a of its text, stable across restarts and builds.
pub fn reason_key(reason: &str) -> u32 {
    reason.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// The preset reason whose key is `key`, if one of `reasons` has it.
pub fn reason_by_key(reasons: &[String], key: u32) -> Option<&String> {
    reasons.iter().find(|r| reason_key(r) == key)
}

/// Escapes text for Telegram's HTML parse mode (also inside attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Makes WeChat- or user-supplied text safe to show: control characters dropped (newlines kept
/// when `multiline`), whitespace runs tidied, cut to `max` characters with an ellipsis.
pub fn clean(text: &str, max: usize, multiline: bool) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut newlines = 0;
    for c in text.trim().chars() {
        let c = match c {
            '\n' if multiline => {
                newlines += 1;
                if newlines > 6 { ' ' } else { '\n' }
            }
            '\r' => continue,
            c if c.is_control() => ' ',
            // Bidi overrides and zero-width characters can make text lie about itself.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}' => continue,
            c => c,
        };
        if count == max {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// A name shown in the chat, cleaned and escaped.
fn name_html(name: &str) -> String {
    escape(&clean(name, 64, false))
}

/// Formats a timestamp in the configured zone.
pub fn format_time(at: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_second(at) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => at.to_string(),
    }
}

/// A status's name in `lang`.
pub fn status_name(status: ApplyStatus, t: &Texts) -> String {
    match status {
        ApplyStatus::Pending => t.status_pending.to_owned(),
        ApplyStatus::Approved => t.status_approved.to_owned(),
        ApplyStatus::Refused => t.status_refused.to_owned(),
        ApplyStatus::Expired => t.status_expired.to_owned(),
        ApplyStatus::Unknown(code) => format!("{} ({code})", t.status_unknown),
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

/// Only http(s) links become anchors: WeChat-supplied URLs are not trusted blindly.
fn safe_url(url: &str) -> Option<&str> {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    ((lower.starts_with("https://") || lower.starts_with("http://"))
        && url.len() <= 1024
        && !url.chars().any(|c| c.is_whitespace() || c.is_control()))
    .then_some(url)
}

/// Everything a card's look depends on.
pub struct CardView<'a> {
    /// The applicant as stored.
    pub applicant: &'a Applicant,
    /// Whether it vanished from WeChat's list.
    pub gone: bool,
    /// The card.
    pub card: &'a Card,
    /// Preset refusal reasons.
    pub reasons: &'a [String],
    /// Language.
    pub lang: Lang,
    /// Time zone for display.
    pub tz: &'a jiff::tz::TimeZone,
}

impl CardView<'_> {
    /// The card's HTML text.
    pub fn text(&self) -> String {
        let t = self.lang.texts();
        let a = self.applicant;
        let mut s = String::new();
        let nickname = a
            .nickname
            .as_deref()
            .map(name_html)
            .unwrap_or_else(|| t.no_nickname.to_owned());
        let _ = writeln!(s, "{}", t.card_title);
        let _ = writeln!(
            s,
            "<b>{nickname}</b> · <code>{}</code>",
            escape(a.appid.as_str())
        );
        if let Some(reason) = &a.reason {
            let _ = writeln!(
                s,
                "{}: {}",
                t.label_reason,
                escape(&clean(reason, 1200, true))
            );
        }
        if !a.categories.is_empty() {
            let cats: Vec<String> = a
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
            let _ = writeln!(s, "{}: {}", t.label_categories, cats.join("; "));
        }
        if let Some(at) = a.applied_at {
            let _ = writeln!(
                s,
                "{}: {}",
                t.label_applied,
                format_time(at.as_second(), self.tz)
            );
        }
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
        if !links.is_empty() {
            let _ = writeln!(s, "{}", links.join(" · "));
        }
        s.push('\n');
        s.push_str(&self.outcome_line());
        s
    }

    /// The one line that says where the application stands.
    pub fn outcome_line(&self) -> String {
        let t = self.lang.texts();
        let card = self.card;
        let actor = card
            .actor
            .as_ref()
            .map(|a| name_html(&a.name))
            .unwrap_or_default();
        let action = card.action.map(|a| action_name(a, t)).unwrap_or_default();
        match card.state {
            CardState::Deciding => {
                return fill(t.line_deciding, &[("name", &actor), ("action", action)]);
            }
            CardState::ChoosingReason => return fill(t.line_choosing, &[("name", &actor)]),
            CardState::AwaitingReason => return fill(t.line_awaiting, &[("name", &actor)]),
            _ => {}
        }
        let time = |at: i64| format_time(at, self.tz);
        match &card.note {
            Some(Note::Decided {
                action,
                by,
                at,
                reason,
            }) => {
                let template = match action {
                    Action::Approve => t.line_approved,
                    Action::Reject => t.line_rejected,
                    Action::Delete => t.line_deleted,
                };
                let reason = reason
                    .as_deref()
                    .map(|r| escape(&clean(r, 300, false)))
                    .unwrap_or_default();
                fill(
                    template,
                    &[
                        ("name", &name_html(by)),
                        ("time", &time(*at)),
                        ("reason", &reason),
                    ],
                )
            }
            Some(Note::Failed {
                action,
                by,
                at,
                errcode,
                ..
            }) => {
                let name = name_html(by);
                let action = action_name(*action, t);
                match errcode {
                    Some(code) => fill(
                        t.line_failed,
                        &[
                            ("name", &name),
                            ("action", action),
                            ("code", &code.to_string()),
                            ("meaning", errcode_meaning(*code, self.lang).unwrap_or("?")),
                            ("time", &time(*at)),
                        ],
                    ),
                    None => fill(
                        t.line_failed_plain,
                        &[
                            ("name", &name),
                            ("action", action),
                            ("detail", t.wechat_unreachable),
                            ("time", &time(*at)),
                        ],
                    ),
                }
            }
            Some(Note::Unknown { action, by, .. }) => fill(
                t.line_unknown,
                &[
                    ("name", &name_html(by)),
                    ("action", action_name(*action, t)),
                ],
            ),
            Some(Note::Elsewhere { status, at }) => fill(
                t.line_elsewhere,
                &[
                    ("status", &status_name(ApplyStatus::from_code(*status), t)),
                    ("time", &time(*at)),
                ],
            ),
            Some(Note::Gone { at }) => fill(t.line_gone, &[("time", &time(*at))]),
            Some(Note::Superseded { at }) => fill(t.line_superseded, &[("time", &time(*at))]),
            None if self.gone => t.line_gone.replace(" · {time}", ""),
            None => match self.applicant.status {
                ApplyStatus::Pending => t.line_pending.to_owned(),
                other => fill(
                    t.line_elsewhere,
                    &[("status", &status_name(other, t)), ("time", "")],
                )
                .trim_end_matches([' ', '·'])
                .to_owned(),
            },
        }
    }

    /// The buttons for the card's current state.
    pub fn keyboard(&self) -> InlineKeyboardMarkup {
        let t = self.lang.texts();
        let id = self.card.id;
        let button = |label: &str, press: Press| {
            InlineKeyboardButton::callback(label.to_owned(), press.encode())
        };
        let status = self.applicant.status;
        let rows: Vec<Vec<InlineKeyboardButton>> = match self.card.state {
            CardState::Sending | CardState::Deciding => vec![],
            CardState::ChoosingReason => {
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
            CardState::AwaitingReason => vec![vec![button(t.button_cancel, Press::Cancel(id))]],
            CardState::Open | CardState::Closed => {
                let mut rows = Vec::new();
                if self.gone {
                    return InlineKeyboardMarkup::new(rows);
                }
                // After an unknown outcome the write may have happened: no decision until re-read.
                let unsettled = matches!(self.card.note, Some(Note::Unknown { .. }));
                if self.card.state == CardState::Open && status.is_decidable() && !unsettled {
                    rows.push(vec![
                        button(t.button_approve, Press::Approve(id)),
                        button(t.button_reject, Press::Reject(id)),
                    ]);
                }
                if status.is_deletable() && self.card.state == CardState::Closed {
                    rows.push(vec![button(t.button_delete, Press::Delete(id))]);
                }
                let mut recovery = Vec::new();
                match &self.card.note {
                    Some(Note::Failed {
                        retryable: true, ..
                    }) => {
                        recovery.push(button(t.button_retry, Press::Retry(id)));
                        recovery.push(button(t.button_refresh, Press::Refresh(id)));
                    }
                    Some(Note::Failed { .. } | Note::Unknown { .. }) => {
                        recovery.push(button(t.button_refresh, Press::Refresh(id)))
                    }
                    _ if matches!(status, ApplyStatus::Unknown(_)) => {
                        recovery.push(button(t.button_refresh, Press::Refresh(id)))
                    }
                    _ => {}
                }
                if !recovery.is_empty() {
                    rows.push(recovery);
                }
                rows
            }
        };
        InlineKeyboardMarkup::new(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applicant::{AppId, Category};

    #[test]
    fn every_press_round_trips_within_64_bytes() {
        for id in [1, 42, i64::MAX] {
            for press in [
                Press::Approve(id),
                Press::Reject(id),
                Press::Reason(id, 0),
                Press::Reason(id, u32::MAX),
                Press::OtherReason(id),
                Press::Cancel(id),
                Press::Retry(id),
                Press::Refresh(id),
                Press::Delete(id),
            ] {
                let data = press.encode();
                assert!(data.len() <= CALLBACK_DATA_MAX, "{data}");
                assert_eq!(Press::decode(&data), Some(press));
                assert_eq!(press.card_id(), id);
            }
        }
    }

    #[test]
    fn garbage_and_non_canonical_data_decode_to_nothing() {
        for data in [
            "",
            "ap",
            "ap:",
            "ap:0",
            "ap:-1",
            "ap:+1",
            "ap:01",
            "ap:1:2",
            "rs:1",
            "rs:1:256",
            "rs:1:0",
            "rs:1:ABCDEF12",
            "rs:1:+bcdef12",
            "rs:1:0000000g",
            "zz:1",
            "ap:99999999999999999999",
            "ap:1 ",
            "<b>:1",
        ] {
            assert_eq!(Press::decode(data), None, "{data:?}");
        }
        assert_eq!(Press::decode(&format!("ap:{}", "1".repeat(70))), None);
    }

    #[test]
    fn escape_and_clean_make_hostile_text_safe() {
        assert_eq!(
            escape(r#"<b>"x" & y</b>"#),
            "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;"
        );
        assert_eq!(clean("a\u{0}b\u{202e}c\r\nd", 100, true), "a bc\nd");
        assert_eq!(clean("a\nb", 100, false), "a b");
        let long = "字".repeat(10_000);
        let cut = clean(&long, 10, false);
        assert_eq!(cut.chars().count(), 11);
        assert!(cut.ends_with('…'));
    }

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
            appid: AppId::parse("wx1234567890abcdef").unwrap(),
            message_id: Some(1),
            state,
            actor: None,
            action: None,
            reason: None,
            note: None,
            prompt_message_id: None,
            message_gone: false,
            version: 0,
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
