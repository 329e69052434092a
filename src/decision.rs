//! A decision on an applicant, from press or command to the edited card: claim the card (exactly
//! one of simultaneous presses wins), log the attempt, call WeChat, record and show the result.
//! When WeChat's answer is lost, the status is re-read and the card shows what is true.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::applicant::{AppId, ApplyStatus};
use crate::card::{Actor, Card, CardState, Note};
use crate::store::{StoreError, now_secs};
use crate::wechat::WeChatError;

/// What an approver can do to an applicant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `dev_agree`.
    Approve,
    /// `dev_refuse`.
    Reject,
    /// `dev_delete`.
    Delete,
}

impl Action {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Delete => "delete",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "approve" => Self::Approve,
            "reject" => Self::Reject,
            "delete" => Self::Delete,
            _ => return None,
        })
    }

    /// The card states a decision may start from.
    fn starting_states(self) -> &'static [CardState] {
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
    fn resting_state(self) -> CardState {
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
    fn target_status(self) -> Option<ApplyStatus> {
        match self {
            Self::Approve => Some(ApplyStatus::Approved),
            Self::Reject => Some(ApplyStatus::Refused),
            Self::Delete => None,
        }
    }
}

/// How a decision was asked for, for the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// A card button.
    Button,
    /// A slash command.
    Command,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Self::Button => "button",
            Self::Command => "command",
        }
    }
}

/// What became of a decision.
#[derive(Debug)]
pub enum Outcome {
    /// WeChat confirmed it (directly or on re-reading).
    Done,
    /// It failed; the card says why.
    Failed(WeChatError),
    /// Nobody knows yet: the answer was lost and the re-read failed.
    Unknown,
    /// Someone else holds the card.
    Busy(String),
    /// The card or applicant is not in a state this action applies to.
    NotApplicable,
}

/// Errcodes that mean "the applicant is not in the state you think": re-read the truth.
const STALE_STATE_ERRCODES: [i64; 4] = [89240, 89241, 89242, 89243];

/// A claimed card with its audit attempt written: the WeChat call may go out.
#[derive(Debug)]
pub struct Claim {
    card_id: i64,
    appid: AppId,
    action: Action,
    actor: Actor,
    reason: Option<String>,
    attempt: i64,
}

/// The result of trying to claim a card for a decision.
#[derive(Debug)]
pub enum Begin {
    /// This caller holds the card.
    Claimed(Claim),
    /// Someone else holds it.
    Busy(String),
    /// The card or applicant is not in a state this action applies to.
    NotApplicable,
}

/// Claims `card` for a decision (atomically: of simultaneous callers exactly one wins) and logs
/// the attempt. Fast: no WeChat call, so a press can be answered right after.
pub async fn begin(
    app: &App,
    card: &Card,
    actor: &Actor,
    action: Action,
    reason: Option<String>,
    via: Via,
) -> Result<Begin, StoreError> {
    let Some(stored) = app.store.applicant(&card.appid).await? else {
        return Ok(Begin::NotApplicable);
    };
    if stored.gone || !action.applies_to(stored.applicant.status) {
        return Ok(Begin::NotApplicable);
    }
    let reason = match action {
        Action::Reject => match reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
        {
            Some(r) => Some(r),
            None => return Ok(Begin::NotApplicable),
        },
        _ => None,
    };
    let claimed = app
        .store
        .claim_for_decision(
            card.id,
            action.starting_states(),
            actor,
            action,
            &card.appid,
            via.as_str(),
            reason.as_deref(),
        )
        .await?;
    let Some(attempt) = claimed else {
        let now = app.store.card(card.id).await?;
        return Ok(match now {
            Some(c) if c.state == CardState::Deciding => {
                Begin::Busy(c.actor.map(|a| a.name).unwrap_or_default())
            }
            _ => Begin::NotApplicable,
        });
    };
    Ok(Begin::Claimed(Claim {
        card_id: card.id,
        appid: card.appid.clone(),
        action,
        actor: actor.clone(),
        reason,
        attempt,
    }))
}

/// Makes the WeChat call for a claimed card, records the result and edits the card.
pub async fn execute(app: &App, claim: Claim) -> Result<Outcome, StoreError> {
    let Claim {
        card_id,
        appid,
        action,
        actor,
        reason,
        attempt,
    } = claim;
    tracing::info!(appid = %appid, action = action.as_str(), by = %actor.name, "deciding");
    let result = match action {
        Action::Approve => app.wechat.agree(&appid).await,
        Action::Reject => {
            app.wechat
                .refuse(&appid, reason.as_deref().unwrap_or_default())
                .await
        }
        Action::Delete => app.wechat.delete(&appid).await,
    };
    crate::telemetry::decision(action.as_str(), result.as_ref().err());
    let outcome = settle(
        app, card_id, &appid, action, &actor, reason, attempt, result,
    )
    .await?;
    if let Err(e) = app.refresh_card(card_id).await {
        tracing::warn!(card = card_id, error = %e, "could not edit the card after a decision");
    }
    Ok(outcome)
}

/// [`begin`] then [`execute`]: a whole decision, for commands.
pub async fn decide(
    app: &App,
    card: &Card,
    actor: &Actor,
    action: Action,
    reason: Option<String>,
    via: Via,
) -> Result<Outcome, StoreError> {
    match begin(app, card, actor, action, reason, via).await? {
        Begin::Claimed(claim) => execute(app, claim).await,
        Begin::Busy(name) => Ok(Outcome::Busy(name)),
        Begin::NotApplicable => Ok(Outcome::NotApplicable),
    }
}

/// Records a decision's result and sets the card's state and note (the caller edits the card).
#[allow(clippy::too_many_arguments)]
async fn settle(
    app: &App,
    card_id: i64,
    appid: &AppId,
    action: Action,
    actor: &Actor,
    reason: Option<String>,
    attempt: i64,
    result: Result<(), WeChatError>,
) -> Result<Outcome, StoreError> {
    let store = &app.store;
    let now = now_secs();
    let error = match result {
        Ok(()) => {
            let audit = Some((attempt, "ok", None));
            confirm(app, card_id, appid, action, actor, reason, now, audit).await?;
            return Ok(Outcome::Done);
        }
        Err(e) => e,
    };
    tracing::warn!(appid = %appid, action = action.as_str(), error = %error, "decision failed");
    let unknown = matches!(error, WeChatError::OutcomeUnknown { .. });
    let stale = error
        .errcode()
        .is_some_and(|c| STALE_STATE_ERRCODES.contains(&c));
    store
        .audit_result(
            attempt,
            if unknown { "unknown" } else { "error" },
            error.errcode(),
            Some(&error.to_string()),
        )
        .await?;
    if unknown || stale {
        return reconcile(
            app,
            card_id,
            appid,
            action,
            actor,
            reason,
            Some(attempt),
            error,
        )
        .await;
    }
    fail(app, card_id, action, actor, &error, now).await?;
    Ok(Outcome::Failed(error))
}

/// Re-reads WeChat's list to learn what is true after an unclear or stale-state answer, and
/// shows it: the decision took effect, did not, or the status moved elsewhere.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn reconcile(
    app: &App,
    card_id: i64,
    appid: &AppId,
    action: Action,
    actor: &Actor,
    reason: Option<String>,
    attempt: Option<i64>,
    error: WeChatError,
) -> Result<Outcome, StoreError> {
    let store = &app.store;
    let now = now_secs();
    let listed = match app.wechat.list_all().await {
        Ok(list) => list,
        Err(read_error) => {
            tracing::warn!(appid = %appid, error = %read_error, "could not re-read the status after an unclear answer");
            let back = action.resting_state();
            let note = Note::Unknown {
                action,
                by: actor.name.clone(),
                at: now,
            };
            store.settle_card(card_id, back, Some(&note)).await?;
            return Ok(Outcome::Unknown);
        }
    };
    let current = listed.into_iter().find(|a| &a.appid == appid);
    let record = |result: &'static str, detail: String| async move {
        if let Some(attempt) = attempt {
            store
                .audit_result(attempt, result, None, Some(&detail))
                .await?;
        }
        Ok::<_, StoreError>(())
    };
    match (&current, action.target_status()) {
        // It took effect.
        (Some(a), Some(target)) if a.status == target => {
            store.upsert_applicant(a).await?;
            let audit = attempt.map(|a| (a, "ok", Some("confirmed by re-reading the status")));
            confirm(app, card_id, appid, action, actor, reason, now, audit).await?;
            Ok(Outcome::Done)
        }
        (None, None) => {
            let audit = attempt.map(|a| {
                (
                    a,
                    "ok",
                    Some("confirmed by re-reading: the applicant is gone"),
                )
            });
            confirm(app, card_id, appid, action, actor, reason, now, audit).await?;
            Ok(Outcome::Done)
        }
        // Nothing happened: still where it was.
        (Some(a), _) if action.applies_to(a.status) => {
            store.upsert_applicant(a).await?;
            if attempt.is_some() && matches!(error, WeChatError::OutcomeUnknown { .. }) {
                record("error", "not applied (re-read the status)".into()).await?;
            }
            fail(app, card_id, action, actor, &error, now).await?;
            Ok(Outcome::Failed(error))
        }
        // It moved elsewhere (console, timeout, deletion).
        (Some(a), _) => {
            store.upsert_applicant(a).await?;
            let note = Note::Elsewhere {
                status: a.status.code(),
                at: now,
            };
            store
                .settle_card(card_id, CardState::Closed, Some(&note))
                .await?;
            Ok(Outcome::Failed(error))
        }
        (None, Some(_)) => {
            store.mark_gone(appid).await?;
            store
                .settle_card(card_id, CardState::Closed, Some(&Note::Gone { at: now }))
                .await?;
            app.seen.remove(appid);
            Ok(Outcome::Failed(error))
        }
    }
}

/// Records a confirmed decision (status, card, audit result) in one transaction and updates
/// the poller's view so the next poll does not take it for an outside change.
#[allow(clippy::too_many_arguments)]
async fn confirm(
    app: &App,
    card_id: i64,
    appid: &AppId,
    action: Action,
    actor: &Actor,
    reason: Option<String>,
    now: i64,
    audit: Option<(i64, &str, Option<&str>)>,
) -> Result<(), StoreError> {
    let note = Note::Decided {
        action,
        by: actor.name.clone(),
        at: now,
        reason,
    };
    let status = action.target_status();
    app.store
        .record_decision(card_id, appid, status, &note, audit)
        .await?;
    match status {
        Some(status) => {
            if let Some(mut seen) = app.seen.get_mut(appid) {
                seen.applicant.status = status;
            }
        }
        None => {
            app.seen.remove(appid);
        }
    }
    Ok(())
}

async fn fail(
    app: &App,
    card_id: i64,
    action: Action,
    actor: &Actor,
    error: &WeChatError,
    now: i64,
) -> Result<(), StoreError> {
    let back = action.resting_state();
    let note = Note::Failed {
        action,
        by: actor.name.clone(),
        at: now,
        errcode: error
            .errcode()
            .filter(|_| !matches!(error, WeChatError::OutcomeUnknown { .. })),
        retryable: error.is_retryable_by_person(),
    };
    app.store.settle_card(card_id, back, Some(&note)).await
}

/// After a restart: every card left mid-decision is settled by re-reading WeChat, so its card
/// shows the truth and the audit log gets the result the crash swallowed.
pub async fn recover_interrupted(app: &App) -> Result<usize, StoreError> {
    let cards = app.store.deciding_cards(app.chat.0).await?;
    let count = cards.len();
    for card in cards {
        let (Some(action), Some(actor)) = (card.action, card.actor.clone()) else {
            app.store
                .settle_card(card.id, CardState::Open, None)
                .await?;
            continue;
        };
        let attempt = app.store.open_attempt(&card.appid).await?;
        tracing::info!(appid = %card.appid, action = action.as_str(), "reconciling a decision interrupted by a restart");
        let cause = WeChatError::OutcomeUnknown {
            action: "restart",
            appid: card.appid.to_string(),
            cause: Box::new(WeChatError::InvalidRequest(
                "interrupted by a restart".into(),
            )),
        };
        reconcile(
            app,
            card.id,
            &card.appid,
            action,
            &actor,
            card.reason.clone(),
            attempt,
            cause,
        )
        .await?;
        if let Err(e) = app.refresh_card(card.id).await {
            tracing::warn!(card = card.id, error = %e, "could not edit a reconciled card");
        }
    }
    Ok(count)
}
