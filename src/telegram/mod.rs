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
        None => user.full_name(),
    };
    Actor {
        id: user.id.0,
        name,
    }
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
