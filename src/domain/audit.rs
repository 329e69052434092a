//! The audit log's vocabulary: a decision attempt as recorded before WeChat is called, its
//! result, and the two read back together for `/history`.

use crate::domain::action::{Action, Via};
use crate::domain::applicant::AppId;
use crate::domain::card::Actor;

/// A decision attempt as the audit log records it before WeChat is called.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    /// The plugin it concerns (its AppID).
    pub plugin: &'a AppId,
    /// Whom it concerns.
    pub appid: &'a AppId,
    /// What is tried.
    pub action: Action,
    /// Who asked.
    pub actor: &'a Actor,
    /// A button or a command.
    pub via: Via,
    /// The refusal reason.
    pub reason: Option<&'a str>,
}

/// What became of an attempt, as its result row says (stored by name: `ok`, `error`,
/// `unknown`), or `in-flight` when it has no result row yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum AuditOutcome {
    /// WeChat confirmed it (or a re-read did).
    Ok,
    /// It did not take effect.
    Error,
    /// WeChat's answer was lost and could not be re-read.
    Unknown,
    /// No result row yet: the call is under way, or a crash cut it short. Never written.
    #[sqlx(rename = "in-flight")]
    InFlight,
    /// A ✅ counted towards the quorum: no attempt, nothing asked of WeChat.
    Vote,
    /// A vote its voter took back.
    Withdrawn,
    /// A decision made, waiting out the undo window: nothing asked of WeChat yet.
    Scheduled,
    /// A scheduled decision taken back within its window: nothing was sent.
    Undone,
}

/// The result of an attempt, appended to the audit log beside what it settles.
#[derive(Clone, Copy, Debug)]
pub struct AuditResult<'a> {
    /// The attempt's id.
    pub attempt: i64,
    /// What became of it.
    pub result: AuditOutcome,
    /// Why, for `/history`.
    pub detail: Option<&'a str>,
}

/// One decision attempt with its latest result, for `/history`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When the attempt started (unix seconds).
    pub at: i64,
    /// The plugin it concerned (its AppID), as stored.
    pub plugin: String,
    /// Whom it concerned, as stored.
    pub appid: String,
    pub action: Action,
    /// Who decided.
    pub actor_name: Option<String>,
    pub via: Via,
    /// The refusal reason.
    pub reason: Option<String>,
    pub result: AuditOutcome,
    /// WeChat's errcode, if any.
    pub errcode: Option<i64>,
    /// Extra detail (error text, reconciliation).
    pub detail: Option<String>,
}
