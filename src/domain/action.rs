//! What a decision is: the action an approver takes and how it was asked for. Shared by the
//! store (which records it), the lifecycle (which carries it out) and the chat (which offers it).

use serde::{Deserialize, Serialize};

use crate::domain::applicant::ApplyStatus;
use crate::domain::card::CardState;

/// What an approver can do to an applicant. Stored by name (`approve`, `reject`, `delete`) in
/// cards, the audit log and notes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum Action {
    /// `dev_agree`.
    Approve,
    /// `dev_refuse`.
    Reject,
    /// `dev_delete`.
    Delete,
}

impl Action {
    /// The stored name, as a label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Delete => "delete",
        }
    }

    /// The card states a decision may start from.
    pub fn starting_states(self) -> &'static [CardState] {
        match self {
            Self::Approve => &[CardState::Open],
            Self::Reject => &[
                CardState::Open,
                CardState::ChoosingReason,
                CardState::AwaitingReason,
            ],
            Self::Delete => &[CardState::Closed],
        }
    }

    /// Where a card goes back to when this action did not take effect: a failed approval or
    /// refusal leaves the applicant pending (open card); a failed deletion leaves it closed.
    pub fn resting_state(self) -> CardState {
        match self {
            Self::Delete => CardState::Closed,
            Self::Approve | Self::Reject => CardState::Open,
        }
    }

    /// Whether WeChat would accept this action for `status`.
    pub fn applies_to(self, status: ApplyStatus) -> bool {
        match self {
            Self::Approve | Self::Reject => status.is_decidable(),
            Self::Delete => status.is_deletable(),
        }
    }

    /// The status WeChat shows once the action took effect (`None`: the applicant is gone).
    pub fn target_status(self) -> Option<ApplyStatus> {
        match self {
            Self::Approve => Some(ApplyStatus::Approved),
            Self::Reject => Some(ApplyStatus::Refused),
            Self::Delete => None,
        }
    }
}

/// How a decision was asked for, for the audit log. Recovery after a restart writes no attempt
/// of its own: it settles the interrupted one, whose `via` stays what it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum Via {
    /// A card button.
    Button,
    /// A slash command.
    Command,
}
