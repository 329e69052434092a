//! The audit log's vocabulary: a decision attempt as recorded before WeChat is called, its
//! result, and the two read back together for `/history`.

use crate::domain::action::Action;
use crate::domain::applicant::AppId;
use crate::domain::card::Actor;

/// A decision attempt as the audit log records it before WeChat is called.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    /// Whom it concerns.
    pub appid: &'a AppId,
    /// What is tried.
    pub action: Action,
    /// Who asked.
    pub actor: &'a Actor,
    /// `button` or `command`.
    pub via: &'a str,
    /// The refusal reason.
    pub reason: Option<&'a str>,
}

/// The result of an attempt, appended to the audit log beside what it settles.
#[derive(Clone, Copy, Debug)]
pub struct AuditResult<'a> {
    /// The attempt's id.
    pub attempt: i64,
    /// `ok`, `error` or `unknown`.
    pub result: &'a str,
    /// Why, for `/history`.
    pub detail: Option<&'a str>,
}

/// One decision attempt with its result, for `/history`.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    /// When the attempt started (unix seconds).
    pub at: i64,
    /// Whom it concerned.
    pub appid: String,
    /// approve / reject / delete.
    pub action: String,
    /// Who decided.
    pub actor_name: Option<String>,
    /// button / command / restart.
    pub via: String,
    /// The refusal reason.
    pub reason: Option<String>,
    /// ok / error / unknown / in-flight (no result row).
    pub result: String,
    /// WeChat's errcode, if any.
    pub errcode: Option<i64>,
    /// Extra detail (error text, reconciliation).
    pub detail: Option<String>,
}
