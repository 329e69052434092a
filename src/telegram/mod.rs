//! Telegram as the bot uses it, below any handler: what a card looks like (its text, buttons and
//! callback data), text made safe for HTML, who may decide (the chat's admins), and what the bot
//! notices of Telegram itself (another instance polling the token).

pub mod approver;
pub mod callback;
pub mod conflicts;
pub mod html;
pub mod limiter;
pub mod view;

use teloxide::{ApiError, RequestError};

use crate::domain::card::Actor;

/// The actor a Telegram user is: `@username`, or the full name when there is none.
pub fn actor(user: &teloxide::types::User) -> Actor {
    let name = match &user.username {
        Some(u) => format!("@{u}"),
        None => full_name(&user.first_name, user.last_name.as_deref()),
    };
    Actor {
        id: user.id.0,
        name,
    }
}

/// A person's first and last name joined as their script joins them: "张三丰" from 张 and 三丰
/// (Chinese, Japanese and Korean names are written without a space), "Ada Lovelace" otherwise.
pub fn full_name(first: &str, last: Option<&str>) -> String {
    let (first, last) = (first.trim(), last.map(str::trim).unwrap_or_default());
    if first.is_empty() || last.is_empty() {
        return format!("{first}{last}");
    }
    let cjk = |c: Option<char>| c.is_some_and(is_cjk);
    if cjk(first.chars().last()) && cjk(last.chars().next()) {
        format!("{first}{last}")
    } else {
        format!("{first} {last}")
    }
}

/// Whether `c` is of a script written without spaces between names: Han, kana, Hangul.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'   // Hiragana, Katakana
        | '\u{3400}'..='\u{4DBF}' // CJK Extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK Unified Ideographs
        | '\u{AC00}'..='\u{D7AF}' // Hangul syllables
        | '\u{F900}'..='\u{FAFF}' // CJK Compatibility Ideographs
        | '\u{20000}'..='\u{2FA1F}') // Extensions B–F, compatibility supplement
}

/// Records a failed Telegram call. A call refused because the team chat became a supergroup is
/// also counted apart and logged as an error, once per new chat id per process: it names the
/// `TEAM_CHAT_ID` to set.
///
/// The bot does not follow the migration by itself: every card's message id belongs to the old
/// chat (edits in the new one would hit other messages or none), approvers may be the old chat's
/// admins, and an operator who configured one chat should decide where approvals go.
pub fn record_error(error: &RequestError) {
    let kind = match error {
        RequestError::RetryAfter(_) => "retry_after",
        RequestError::Network(_) | RequestError::Io(_) => "network",
        RequestError::Api(ApiError::TerminatedByOtherGetUpdates) => "conflict",
        RequestError::Api(_) => "api",
        RequestError::MigrateToChatId(_) => "migrated",
        _ => "other",
    };
    crate::telemetry::telegram_error(kind);
    match error {
        RequestError::Api(ApiError::TerminatedByOtherGetUpdates) => {
            crate::telemetry::telegram_conflict();
        }
        RequestError::MigrateToChatId(new) => team_chat_upgraded(new.0),
        _ => {}
    }
}

/// Counts a call refused for an upgraded team chat and logs the new id once.
fn team_chat_upgraded(new: i64) {
    static LOGGED: std::sync::Mutex<Vec<i64>> = std::sync::Mutex::new(Vec::new());
    crate::telemetry::team_chat_upgraded();
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

#[cfg(test)]
mod tests {
    use super::full_name;

    #[test]
    fn names_are_joined_as_their_script_joins_them() {
        assert_eq!(full_name("张", Some("三丰")), "张三丰");
        assert_eq!(full_name("山田", Some("太郎")), "山田太郎");
        assert_eq!(full_name("Ada", Some("Lovelace")), "Ada Lovelace");
        assert_eq!(full_name("李", Some("Lee")), "李 Lee");
        assert_eq!(full_name("Alice", None), "Alice");
        assert_eq!(full_name(" 王 ", Some(" 小明 ")), "王小明");
    }
}
