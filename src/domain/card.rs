//! A card's record: the chat message that stands for one applicant, as the store keeps it —
//! where it is in its life, who holds it and what it shows. Rendering lives with Telegram
//! (`telegram::view`); this is the part the store and the lifecycle share.

use serde::{Deserialize, Serialize};

use crate::domain::action::Action;
use crate::domain::applicant::AppId;

/// Where a card is in its life. Stored by its snake_case name (`choosing_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum CardState {
    /// Written, not yet confirmed sent.
    Sending,
    /// Shows ✅ / ❌ (or the recovery buttons after a failure).
    Open,
    /// Shows the preset reasons after ❌.
    ChoosingReason,
    /// Waiting for a typed reason (a ForceReply prompt is out).
    AwaitingReason,
    /// Decided by a person, waiting out the undo window (`UNDO_SECS`) before its WeChat write
    /// goes out; ↩ Undo puts it back.
    Scheduled,
    /// Claimed: a WeChat call is in flight.
    Deciding,
    /// Decided or changed elsewhere; at most 🗑 Delete remains.
    Closed,
}

/// A team member who pressed or commanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// Telegram user id.
    pub id: u64,
    /// `@username`, or the first name when there is none.
    pub name: String,
}

/// The last outcome a card shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// WeChat confirmed the decision.
    Decided {
        /// What was done.
        action: Action,
        /// The approver's display name ([`Actor::name`]).
        by: String,
        /// When (unix seconds).
        at: i64,
        /// The refusal reason.
        reason: Option<String>,
        /// Sent at start: its undo window ended while the bot was stopped.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        late: bool,
    },
    /// The decision failed; nothing changed.
    Failed {
        /// What was tried.
        action: Action,
        /// Who tried.
        by: String,
        /// Unix seconds.
        at: i64,
        /// WeChat's errcode, when it sent one.
        errcode: Option<i64>,
        /// Whether trying again can help.
        retryable: bool,
        /// The answer was unclear (lost, or -1 then "already done") and a re-read showed the
        /// applicant still where it was: WeChat did answer, but did nothing.
        #[serde(default)]
        unclear: bool,
    },
    /// A decision whose answer was lost or never recorded (a timeout, a restart, a failed store
    /// write), after which WeChat showed the status it aimed at: the bot cannot tell whether its
    /// write or someone in the console did it, so it credits nobody.
    Interrupted {
        /// What was tried.
        action: Action,
        /// Who tried.
        by: String,
        /// When the bot settled it (unix seconds).
        at: i64,
    },
    /// No reliable answer and the re-read failed too: the truth is not known yet.
    Unknown {
        /// What was tried.
        action: Action,
        /// Who tried.
        by: String,
        /// Unix seconds.
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
    /// The bot no longer serves the applicant's plugin (taken out of its configuration): the
    /// card offers nothing, and the applicant is decided in the WeChat console, or here again
    /// once the plugin is served again.
    Unserved {
        /// The plugin's AppID.
        plugin: String,
        /// When the bot closed the card.
        at: i64,
    },
}

/// An approver's ✅ on a card while a quorum (`APPROVALS_REQUIRED` of 2 or more) is gathered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The voter's Telegram user id: one vote per person.
    pub id: u64,
    /// As the card shows it.
    pub name: String,
    /// When the vote was cast (unix seconds).
    pub at: i64,
}

/// Where the team chat went, shown on a card left behind in the chat it moved from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// The new team chat.
    pub to: i64,
    /// Its title, when Telegram told it.
    pub title: Option<String>,
    /// When the card was closed for the move (unix seconds).
    pub at: i64,
}

/// A stored card.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    /// Row id; the buttons carry it.
    pub id: i64,
    /// The chat it lives in.
    pub chat_id: i64,
    /// The plugin its applicant applied to (that plugin's AppID).
    pub plugin: AppId,
    /// Whose card it is.
    pub appid: AppId,
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
    /// The message this card's row stood for before it was reused for a re-application, until
    /// that message says a newer card replaced it.
    pub previous_message_id: Option<i32>,
    /// Closed because the team chat moved elsewhere.
    pub moved: Option<Moved>,
    /// Approvers' ✅ gathered towards the quorum, in the order cast (distinct people).
    pub votes: Vec<Vote>,
    /// While scheduled: when the undo window ends and the write goes out (unix milliseconds).
    pub due_at: Option<i64>,
    /// While scheduled: its wait was taken up again after a restart.
    pub resumed: bool,
    /// Bumped by every change; the message shows the version last edited in.
    pub version: i64,
    /// When the row last changed (unix seconds): for a held card, when its holder took it.
    pub changed_at: i64,
}
