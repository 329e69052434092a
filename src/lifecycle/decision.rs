//! A decision on an applicant, from press or command to the edited card: claim the card (exactly
//! one of simultaneous presses wins), log the attempt, call WeChat, record and show the result.
//! When WeChat's answer is lost, the status is re-read and the card shows what is true; when even
//! that fails, the card says the outcome is unknown and offers no decision until a later listing
//! settles it, so a write that may have happened is never made twice.

use crate::domain::action::{Action, Via};
use crate::domain::applicant::{AppId, Applicant};
use crate::domain::audit::{Attempt, AuditOutcome, AuditResult};
use crate::domain::card::{Actor, Card, CardState, Note};
use crate::domain::now_secs;
use crate::lifecycle::app::{App, Hold};
use crate::store::StoreError;
use crate::wechat::WeChatError;
use std::sync::Arc;

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
    /// The last decision's outcome is still unknown: nothing is decided until it is re-read.
    Unsettled,
    /// It waits out its undo window for this long; ↩ Undo takes it back.
    Scheduled(std::time::Duration),
}

/// Errcodes that mean "the applicant is not in the state you think": re-read the truth.
const STALE_STATE_ERRCODES: [i64; 4] = [89240, 89241, NO_SUCH_APPLICANT, 89243];

/// WeChat's answer to a write on an appid it does not know (NOTES.md: "unknown appid 89242").
const NO_SUCH_APPLICANT: i64 = 89242;

/// How often the record of a decision WeChat confirmed is tried again while the database fails,
/// waiting 100 ms, then twice as long each time (1.5 s in all): long enough for a disk's hiccup,
/// short enough for a graceful stop, which waits for decisions in flight.
const RECORD_RETRIES: u32 = 4;

/// Runs a store write again after a database failure, up to [`RECORD_RETRIES`] times, with the
/// exponential backoff the WeChat client uses (`backon`).
async fn durably<T, F, Fut>(write: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    use backon::Retryable as _;
    let backoff = backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(100))
        .with_max_times(RECORD_RETRIES as usize);
    write
        .retry(backoff)
        // A fenced write stays fenced: another replica leads and settles this decision.
        .when(|e| matches!(e, StoreError::Db(_)) && !e.is_fenced())
        .notify(|e, wait| {
            tracing::warn!(error = %e, ?wait, "could not record what WeChat did; trying again");
        })
        .await
}

/// A claimed card with its audit attempt written: the WeChat call may go out. While it lives,
/// this process holds the card, so the sweep for abandoned decisions leaves it alone.
#[derive(Debug)]
pub struct Claim {
    settling: Settling,
    /// No write (nor resend) leaves after this ([`WRITE_WINDOW`]).
    until: Option<std::time::Instant>,
    _hold: Hold,
}

/// How long after its claim a decision may send its write, or resend it after -1, where
/// replicas share the database. Another replica settles a decision it finds abandoned (its
/// claimer died, or was paused past its lease) from WeChat's list only once this window and the
/// request timeout have passed since the claim, so no write of the claimer's can land after
/// that re-read and contradict what it records. On SQLite one process runs, and a decision left
/// behind is its own last life's: no window.
pub const WRITE_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything needed to settle a decision's card: which card at which version, what was tried
/// by whom, and the audit attempt to answer.
#[derive(Clone, Debug)]
struct Settling {
    card_id: i64,
    /// The card's version as claimed: every later change is a compare-and-swap from it.
    version: i64,
    /// The plugin the applicant applied to.
    plugin: AppId,
    appid: AppId,
    action: Action,
    actor: Actor,
    reason: Option<String>,
    attempt: Option<i64>,
    /// Cut off before WeChat's answer was recorded (a restart, a failed store write): a re-read
    /// that shows the status aimed at cannot tell this write from the console's.
    interrupted: bool,
    /// Sent at start: its undo window ended while the bot was stopped (the card says so).
    late: bool,
}

impl Settling {
    /// The applicant it is about, as the store keys it.
    fn whose(&self) -> crate::store::Whose<'_> {
        crate::store::Whose {
            plugin: &self.plugin,
            appid: &self.appid,
        }
    }
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
    /// The last decision's outcome is unknown; re-read first.
    Unsettled,
    /// The decision waits out its undo window (`UNDO_SECS`); [`open_window`] sends it after.
    Scheduled(Window),
}

/// A decision waiting out its undo window: nothing is asked of WeChat until `due` (unix ms),
/// and ↩ Undo before then puts the card back.
#[derive(Debug)]
pub struct Window {
    card_id: i64,
    due: i64,
    via: Via,
    /// The window ended while the bot was stopped: the write goes out at once, and says so.
    late: bool,
    /// Already entered in [`App::window_cards`] before it was stored, so the poll's look for
    /// windows nobody waits on never takes it for a resumed one.
    reserved: bool,
}

impl Window {
    /// How long until the write goes out.
    pub fn remaining(&self) -> std::time::Duration {
        std::time::Duration::from_millis((self.due - crate::domain::now_millis()).max(0) as u64)
    }
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
    // A plugin the bot no longer serves is decided in the WeChat console.
    if app.poller(&card.plugin).is_none() {
        return Ok(Begin::NotApplicable);
    }
    // Held before the claim is made, so no sweep can take the claimed card for abandoned.
    let hold = app.holds.hold(card.id);
    let Some(stored) = app.store.applicant(&card.plugin, &card.appid).await? else {
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
    let attempt = Attempt {
        plugin: &card.plugin,
        appid: &card.appid,
        action,
        actor,
        via,
        reason: reason.as_deref(),
    };
    if let Some(window) = app.settings.undo_window
        && action != Action::Delete
    {
        // The deciding press: the write waits out the undo window (a delete is not a decision
        // on the application, and has no window).
        let due = crate::domain::now_millis() + window.as_millis() as i64;
        app.window_cards.insert((card.id, due), ());
        let scheduled = app
            .store
            .schedule_decision(
                card.id,
                action.starting_states(),
                &attempt,
                votes_needed(app, action),
                due,
            )
            .await;
        if matches!(scheduled, Ok(Some(_))) {
            tracing::info!(appid = %card.appid, action = action.as_str(), by = %actor.name, "decision scheduled");
            return Ok(Begin::Scheduled(Window {
                card_id: card.id,
                due,
                via,
                late: false,
                reserved: true,
            }));
        }
        app.window_cards.remove(&(card.id, due));
        scheduled?;
        return refused(app, card).await;
    }
    // Counted from before the claim is asked for: the window never outlasts what another
    // replica reading the claim's time allows for.
    let asked = std::time::Instant::now();
    let claimed = app
        .store
        .claim_for_decision(
            card.id,
            action.starting_states(),
            &attempt,
            votes_needed(app, action),
            None,
        )
        .await?;
    let Some(claimed) = claimed else {
        return refused(app, card).await;
    };
    Ok(Begin::Claimed(Claim {
        settling: Settling {
            card_id: card.id,
            version: claimed.version,
            plugin: card.plugin.clone(),
            appid: card.appid.clone(),
            action,
            actor: actor.clone(),
            reason,
            attempt: Some(claimed.attempt),
            interrupted: false,
            late: false,
        },
        until: app.store.is_postgres().then(|| asked + WRITE_WINDOW),
        _hold: hold,
    }))
}

/// Why a claim on `card` lost, from the card as it is now.
async fn refused(app: &App, card: &Card) -> Result<Begin, StoreError> {
    let now = app.store.card(card.id).await?;
    Ok(match now {
        Some(c) if matches!(c.state, CardState::Deciding | CardState::Scheduled) => {
            Begin::Busy(c.actor.map(|a| a.name).unwrap_or_default())
        }
        Some(c) if matches!(c.note, Some(Note::Unknown { .. })) => Begin::Unsettled,
        // Its card in a former team chat is being decided or has an unknown outcome: the
        // claim refused this one in the same statement, so no second write can follow.
        Some(_)
            if app
                .store
                .unsettled_elsewhere(card.chat_id, &card.plugin, &card.appid)
                .await? =>
        {
            Begin::Unsettled
        }
        _ => Begin::NotApplicable,
    })
}

/// The stored votes a card must hold for `action` to be claimed: the quorum for an approval
/// when `APPROVALS_REQUIRED` is 2 or more, else none (the first ✅ decides).
pub fn votes_needed(app: &App, action: Action) -> u32 {
    match action {
        Action::Approve if app.settings.approvals_required > 1 => app.settings.approvals_required,
        _ => 0,
    }
}

/// How long a WeChat write may take before the card shows who is deciding.
pub const SHOW_DECIDING_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Makes the WeChat call for a claimed card, records the result and edits the card.
pub async fn execute(app: &App, claim: Claim) -> Result<Outcome, StoreError> {
    let Claim {
        settling: s,
        until,
        _hold,
    } = claim;
    tracing::info!(appid = %s.appid, action = s.action.as_str(), by = %s.actor.name, "deciding");
    let work = async {
        let result = match (app.poller(&s.plugin), s.action) {
            (None, _) => Err(no_longer_served(&s.plugin)),
            (Some(p), Action::Approve) => p.wechat.agree_before(&s.appid, until).await,
            (Some(p), Action::Reject) => {
                p.wechat
                    .refuse_before(&s.appid, s.reason.as_deref().unwrap_or_default(), until)
                    .await
            }
            (Some(p), Action::Delete) => p.wechat.delete_before(&s.appid, until).await,
        };
        crate::telemetry::decision(
            app.settings.plugin_label(s.plugin.as_str()),
            s.action.as_str(),
            match &result {
                Ok(()) => "ok",
                Err(WeChatError::OutcomeUnknown { .. }) => "unknown",
                Err(_) => "error",
            },
        );
        settle(app, &s, result).await
    };
    tokio::pin!(work);
    // A write that answers at once goes without an edit of its own; one that takes longer
    // (WeChat slow, -1 retried) shows who is deciding meanwhile, so nobody presses in vain. That
    // edit holds up neither the write nor its record (it runs beside them); the last edit below
    // waits for it, so the card ends showing the outcome.
    let outcome = tokio::select! {
        outcome = &mut work => outcome,
        () = tokio::time::sleep(SHOW_DECIDING_AFTER) => {
            let show = async {
                if let Err(e) = app.desk.refresh_card(s.card_id).await {
                    tracing::warn!(card = s.card_id, error = %e, "could not show who is deciding");
                }
            };
            tokio::join!(&mut work, show).0
        }
    }?;
    if let Err(e) = app.desk.refresh_card(s.card_id).await {
        tracing::warn!(card = s.card_id, error = %e, "could not edit the card after a decision");
    }
    Ok(outcome)
}

/// [`begin`] then [`execute`]: a whole decision, for commands.
pub async fn decide(
    app: &Arc<App>,
    card: &Card,
    actor: &Actor,
    action: Action,
    reason: Option<String>,
    via: Via,
) -> Result<Outcome, StoreError> {
    finish(app, begin(app, card, actor, action, reason, via).await?).await
}

/// Carries out what [`begin`] answered: the decision when it claimed the card (or its undo
/// window, in a task of its own), else why not.
pub async fn finish(app: &Arc<App>, begun: Begin) -> Result<Outcome, StoreError> {
    match begun {
        Begin::Claimed(claim) => execute(app, claim).await,
        Begin::Scheduled(window) => {
            let left = window.remaining();
            open_window(app, window);
            Ok(Outcome::Scheduled(left))
        }
        Begin::Busy(name) => Ok(Outcome::Busy(name)),
        Begin::NotApplicable => Ok(Outcome::NotApplicable),
        Begin::Unsettled => Ok(Outcome::Unsettled),
    }
}

/// Waits out a scheduled decision's undo window in a task of its own, then claims the card and
/// makes the decision — unless ↩ Undo (or a poll that found the status changed elsewhere) moved
/// the card first: the claim from `scheduled` is a compare-and-swap, so exactly one of them
/// wins. The tasks are tracked ([`App::windows`]): a graceful stop ends their waits at once (the
/// stored deadline resumes at the next start) and waits for a write one has begun.
pub fn open_window(app: &Arc<App>, window: Window) {
    let key = (window.card_id, window.due);
    if !window.reserved && app.window_cards.insert(key, ()).is_some() {
        // This process already waits on it.
        return;
    }
    let app = Arc::clone(app);
    app.windows.clone().spawn(async move {
        let card_id = window.card_id;
        if let Err(e) = run_window(&app, window).await {
            tracing::warn!(card = card_id, error = %e, "a decision's undo window ended in a store failure; the next start or poll takes it up");
        }
        app.window_cards.remove(&key);
    });
}

async fn run_window(app: &App, window: Window) -> Result<(), StoreError> {
    tokio::select! {
        () = app.stopping.cancelled() => return Ok(()),
        () = tokio::time::sleep(window.remaining()) => {}
    }
    if app.stopping.is_cancelled() {
        return Ok(());
    }
    let hold = app.holds.hold(window.card_id);
    let Some(card) = app.store.card(window.card_id).await? else {
        return Ok(());
    };
    let (CardState::Scheduled, Some(action), Some(actor), true) = (
        card.state,
        card.action,
        card.actor.clone(),
        card.due_at == Some(window.due),
    ) else {
        // Undone (and perhaps decided again, with a window of its own), or settled by a poll:
        // nothing to send here.
        return Ok(());
    };
    let attempt = Attempt {
        plugin: &card.plugin,
        appid: &card.appid,
        action,
        actor: &actor,
        via: window.via,
        reason: card.reason.as_deref(),
    };
    let asked = std::time::Instant::now();
    let Some(claimed) = app
        .store
        .claim_for_decision(
            card.id,
            &[CardState::Scheduled],
            &attempt,
            votes_needed(app, action),
            Some(window.due),
        )
        .await?
    else {
        // ↩ Undo or a poll won the compare-and-swap: nothing is sent.
        return Ok(());
    };
    let claim = Claim {
        settling: Settling {
            card_id: card.id,
            version: claimed.version,
            plugin: card.plugin.clone(),
            appid: card.appid.clone(),
            action,
            actor: actor.clone(),
            reason: card.reason.clone(),
            attempt: Some(claimed.attempt),
            interrupted: false,
            late: window.late,
        },
        until: app.store.is_postgres().then(|| asked + WRITE_WINDOW),
        _hold: hold,
    };
    execute(app, claim).await?;
    Ok(())
}

/// Takes up every undo window no task of this process waits on: after a restart (or when
/// another replica that waited on one is gone). A window still running resumes from its stored
/// deadline and its card says it was resumed; one that ended while nobody waited goes out at
/// once, and its outcome says so. Run by the leader after each poll.
pub async fn resume_windows(app: &Arc<App>, plugin: &AppId) -> Result<usize, StoreError> {
    let mut resumed = 0;
    for card in app.store.scheduled_cards().await? {
        if card.plugin != *plugin {
            continue;
        }
        let Some(due) = card.due_at else {
            continue;
        };
        if app.window_cards.contains_key(&(card.id, due)) {
            continue;
        }
        let late = due <= crate::domain::now_millis();
        if !late
            && app.store.mark_resumed(card.id).await?
            && let Err(e) = app.desk.refresh_card(card.id).await
        {
            tracing::warn!(card = card.id, error = %e, "could not show a resumed undo window");
        }
        tracing::info!(card = card.id, appid = %card.appid, late, "taking up an undo window");
        open_window(
            app,
            Window {
                card_id: card.id,
                due,
                via: Via::Button,
                late,
                reserved: false,
            },
        );
        resumed += 1;
    }
    Ok(resumed)
}

/// Whether a failed write may still have taken effect: its answer was lost, or a resend after
/// -1 was told the applicant had already moved.
fn maybe_applied(error: &WeChatError) -> bool {
    matches!(error, WeChatError::OutcomeUnknown { .. })
}

/// Records a decision's result and sets the card's state and note (the caller edits the card).
async fn settle(
    app: &App,
    s: &Settling,
    result: Result<(), WeChatError>,
) -> Result<Outcome, StoreError> {
    let error = match result {
        Ok(()) => {
            confirm(app, s, AuditOutcome::Ok, None).await?;
            return Ok(Outcome::Done);
        }
        Err(e) => e,
    };
    tracing::warn!(appid = %s.appid, action = s.action.as_str(), error = %error, "decision failed");
    let unknown = maybe_applied(&error);
    let stale = error
        .errcode()
        .is_some_and(|c| STALE_STATE_ERRCODES.contains(&c));
    if let Some(attempt) = s.attempt {
        app.store
            .audit_result(
                attempt,
                if unknown {
                    AuditOutcome::Unknown
                } else {
                    AuditOutcome::Error
                },
                error.errcode(),
                Some(&error.to_string()),
            )
            .await?;
    }
    if unknown || stale {
        return reconcile(app, s, error).await;
    }
    fail(app, s, &error).await?;
    Ok(Outcome::Failed(error))
}

/// Re-reads WeChat's list to learn what is true after an unclear or stale-state answer, and
/// shows it: the decision took effect, did not, or the status moved elsewhere.
async fn reconcile(app: &App, s: &Settling, error: WeChatError) -> Result<Outcome, StoreError> {
    let listing = match app.poller(&s.plugin) {
        Some(poller) => poller.wechat.list_all_checked().await,
        None => Err(no_longer_served(&s.plugin)),
    };
    let listed = match listing {
        Ok(listing) => listing,
        Err(read_error) => {
            tracing::warn!(appid = %s.appid, error = %read_error, "could not re-read the status after an unclear answer");
            if !maybe_applied(&error) {
                // WeChat answered: nothing was done. Say so; the next poll shows where it stands.
                fail(app, s, &error).await?;
                return Ok(Outcome::Failed(error));
            }
            unknown(app, s).await?;
            return Ok(Outcome::Unknown);
        }
    };
    let complete = listed.complete;
    let current = listed.applicants.into_iter().find(|a| a.appid == s.appid);
    if current.is_none() && !complete {
        // WeChat ignored `page`: a listing of the first page only says nothing of an applicant
        // it leaves out. As if the re-read had failed.
        tracing::warn!(appid = %s.appid, "the re-read was partial (WeChat ignores page); the outcome waits for a complete listing");
        if !maybe_applied(&error) {
            fail(app, s, &error).await?;
            return Ok(Outcome::Failed(error));
        }
        unknown(app, s).await?;
        return Ok(Outcome::Unknown);
    }
    resolve(app, s, current.as_ref(), maybe_applied(&error), Some(error)).await
}

/// Settles a decision's card from what a listing says of its applicant (`current`; `None` when it
/// was not listed). `maybe_applied`: the decision's write may have taken effect, so the target
/// status is credited to it.
async fn resolve(
    app: &App,
    s: &Settling,
    current: Option<&Applicant>,
    maybe_applied: bool,
    error: Option<WeChatError>,
) -> Result<Outcome, StoreError> {
    if let Some(a) = current
        && reapplied_since_claim(app, s, a).await?
    {
        return reapplied(app, s, maybe_applied, error).await;
    }
    match (current, s.action.target_status()) {
        // It took effect.
        (Some(a), Some(target)) if a.status == target && maybe_applied => {
            app.store.upsert_applicant(&s.plugin, a).await?;
            confirm(
                app,
                s,
                AuditOutcome::Ok,
                Some("confirmed by re-reading the status"),
            )
            .await?;
            Ok(Outcome::Done)
        }
        (None, None) if maybe_applied => {
            confirm(
                app,
                s,
                AuditOutcome::Ok,
                Some("confirmed by re-reading: the applicant is gone"),
            )
            .await?;
            Ok(Outcome::Done)
        }
        (Some(a), _) if s.action.applies_to(a.status) => {
            not_applied(app, s, a, maybe_applied, error).await
        }
        // Pending again where this decision does not apply (a delete): the applicant applied
        // again, and a poll may have recorded that application before this re-read (seed 76396).
        // Its card is the poll's to post, as for any re-application, never "now pending" here.
        (Some(a), _) if a.status.is_decidable() => reapplied(app, s, maybe_applied, error).await,
        (Some(a), _) => moved_elsewhere(app, s, a, maybe_applied, error).await,
        // WeChat itself says it has no such applicant (89242 on a delete): gone for good.
        (None, None)
            if error.as_ref().and_then(WeChatError::errcode) == Some(NO_SUCH_APPLICANT) =>
        {
            deleted(app, s, error).await
        }
        // WeChat answered that it did nothing (89240 and the like, not after a -1): whatever a
        // listing leaves out, this decision took no effect, and one listing is no proof that the
        // applicant is gone (a delete refused as 89243 met an empty page). Say so; the next poll
        // shows where the applicant stands.
        (None, _) if !maybe_applied => match error {
            Some(error) => {
                fail(app, s, &error).await?;
                Ok(Outcome::Failed(error))
            }
            None => Ok(Outcome::NotApplicable),
        },
        // Missing from one listing is no proof it is gone (listings can come back empty or
        // partial): the outcome stays unknown until the poller has its proof.
        (None, _) => {
            if error.is_some() {
                unknown(app, s).await?;
            }
            Ok(Outcome::Unknown)
        }
    }
}

/// What a decision that did not take effect settles as: the error it got, or (when there was
/// none, after an unknown outcome) nothing at all.
fn failed_or_not_applicable(error: Option<WeChatError>) -> Outcome {
    match error {
        Some(e) => Outcome::Failed(e),
        None => Outcome::NotApplicable,
    }
}

/// Keeps what a re-read found that the decision did not do, and, when the write may have
/// happened, logs in its attempt that it did not.
async fn keep_reread(
    app: &App,
    s: &Settling,
    a: &Applicant,
    maybe_applied: bool,
    detail: &str,
) -> Result<(), StoreError> {
    app.store.upsert_applicant(&s.plugin, a).await?;
    remember(app, &s.plugin, a);
    if maybe_applied {
        record(app, s, AuditOutcome::Error, detail).await?;
    }
    Ok(())
}

/// Nothing happened: the applicant is still where it was, so the decision can be made again.
async fn not_applied(
    app: &App,
    s: &Settling,
    a: &Applicant,
    maybe_applied: bool,
    error: Option<WeChatError>,
) -> Result<Outcome, StoreError> {
    keep_reread(app, s, a, maybe_applied, "not applied (re-read the status)").await?;
    match &error {
        Some(e) => fail(app, s, e).await?,
        None => {
            // The unknown outcome is settled: nothing was done, the card is plain again.
            app.store
                .settle_card(s.card_id, s.version, s.action.resting_state(), None)
                .await?;
        }
    }
    Ok(failed_or_not_applicable(error))
}

/// Whether the listing shows an application newer than the one the store held when the
/// decision was claimed: the applicant applied again in between.
async fn reapplied_since_claim(app: &App, s: &Settling, a: &Applicant) -> Result<bool, StoreError> {
    let Some(applied) = a.applied_at else {
        return Ok(false);
    };
    // An applicant the re-read shows where this decision leads is shown as WeChat has it,
    // whatever its time says: an application made in the attempt's own second and approved by
    // it looks just like a re-application (seed 31185). Shown anywhere else (pending, or
    // refused or timed out after applying again), a newer application says the one decided is
    // over, and the status says nothing of whether the write reached it (seed 191).
    if Some(a.status) == s.action.target_status() {
        return Ok(false);
    }
    // An application made after the attempt was logged is not the one decided, whatever the
    // store holds by now: a poll may already have recorded the re-application before this
    // re-read (a listing during a long wait for WeChat's answer, or the sweep after a restart).
    // The same second counts too: the attempt's time is in whole seconds, and a pending
    // applicant taken for a new application only costs the credit (the outcome is unknown).
    if let Some(attempt) = s.attempt
        && let Some(at) = app.store.attempt_at(attempt).await?
        && applied.as_second() >= at
    {
        return Ok(true);
    }
    let stored = app.store.applicant(&s.plugin, &s.appid).await?;
    Ok(stored.is_some_and(
        |stored| matches!(stored.applicant.applied_at, Some(before) if applied > before),
    ))
}

/// The applicant applied again while the decision was on its way: the application it was about
/// is over, and this listing cannot tell whether the write reached it before that, so nobody is
/// credited and the outcome is unknown (or, when WeChat answered that nothing was done, an
/// error). The card goes back to how it stood, its record is left as it was, and the next poll
/// takes the re-application up as any other: a new card with ✅/❌ for a pending applicant.
async fn reapplied(
    app: &App,
    s: &Settling,
    maybe_applied: bool,
    error: Option<WeChatError>,
) -> Result<Outcome, StoreError> {
    let detail = "the applicant applied again before the re-read";
    // An unknown outcome was about the application that is over: it is recorded as such.
    let note = app
        .store
        .card(s.card_id)
        .await?
        .and_then(|c| c.note)
        .filter(|n| !matches!(n, Note::Unknown { .. }));
    if maybe_applied {
        record(app, s, AuditOutcome::Unknown, detail).await?;
    } else {
        record(app, s, AuditOutcome::Error, detail).await?;
    }
    app.store
        .settle_card(
            s.card_id,
            s.version,
            s.action.resting_state(),
            note.as_ref(),
        )
        .await?;
    look_again(app, &s.plugin, &s.appid);
    Ok(if maybe_applied {
        Outcome::Unknown
    } else {
        failed_or_not_applicable(error)
    })
}

/// It moved elsewhere (console, timeout, deletion): the card says where and closes.
async fn moved_elsewhere(
    app: &App,
    s: &Settling,
    a: &Applicant,
    maybe_applied: bool,
    error: Option<WeChatError>,
) -> Result<Outcome, StoreError> {
    keep_reread(app, s, a, maybe_applied, "the status moved elsewhere").await?;
    let note = Note::Elsewhere {
        status: a.status.code(),
        at: now_secs(),
    };
    close(app, s, &note, error).await
}

/// Deleted, and WeChat says so too (89242 on a delete): the applicant is gone for good.
async fn deleted(
    app: &App,
    s: &Settling,
    error: Option<WeChatError>,
) -> Result<Outcome, StoreError> {
    app.store.mark_gone(&s.plugin, &s.appid).await?;
    if let Some(poller) = app.poller(&s.plugin) {
        poller.forget(&s.appid);
    }
    close(app, s, &Note::Gone { at: now_secs() }, error).await
}

/// Closes the decision's card with `note`: the applicant is no longer where the decision found
/// it, so nothing is left to decide on this card.
async fn close(
    app: &App,
    s: &Settling,
    note: &Note,
    error: Option<WeChatError>,
) -> Result<Outcome, StoreError> {
    app.store
        .settle_card(s.card_id, s.version, CardState::Closed, Some(note))
        .await?;
    Ok(failed_or_not_applicable(error))
}

/// Appends a result to the decision's attempt, if it has one.
async fn record(
    app: &App,
    s: &Settling,
    result: AuditOutcome,
    detail: &str,
) -> Result<(), StoreError> {
    if let Some(attempt) = s.attempt {
        app.store
            .audit_result(attempt, result, None, Some(detail))
            .await?;
    }
    Ok(())
}

/// Updates the poller's memory with what a re-read found, so the next poll does not take it for
/// news.
fn remember(app: &App, plugin: &AppId, a: &Applicant) {
    if let Some(poller) = app.poller(plugin) {
        poller.remember(a);
    }
}

/// The card says the outcome is unknown and offers no decision; the applicant's record takes the
/// next tick, so only a listing that began after this moment settles it.
async fn unknown(app: &App, s: &Settling) -> Result<(), StoreError> {
    let note = Note::Unknown {
        action: s.action,
        by: s.actor.name.clone(),
        at: now_secs(),
    };
    app.store.touch(&s.plugin, &s.appid).await?;
    record(app, s, AuditOutcome::Unknown, "WeChat could not be re-read").await?;
    app.store
        .settle_card(s.card_id, s.version, s.action.resting_state(), Some(&note))
        .await?;
    Ok(())
}

/// Records a confirmed decision (status, card, audit result) in one transaction and updates
/// the poller's view so the next poll does not take it for an outside change.
async fn confirm(
    app: &App,
    s: &Settling,
    result: AuditOutcome,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    // A decision whose answer was lost (or never recorded: a restart) and that a re-read shows
    // done may have been done in the console meanwhile: the card says what WeChat shows and
    // credits nobody; the audit log says the outcome is unknown. Only WeChat's own "ok" credits
    // the person who decided.
    let (note, result, detail) = if detail.is_some() {
        let note = Note::Interrupted {
            action: s.action,
            by: s.actor.name.clone(),
            at: now_secs(),
        };
        let detail = if s.interrupted {
            "interrupted before WeChat's answer was recorded; WeChat shows it done"
        } else {
            "WeChat's answer was lost; a re-read shows it done"
        };
        (note, AuditOutcome::Unknown, Some(detail))
    } else {
        let note = Note::Decided {
            action: s.action,
            by: s.actor.name.clone(),
            at: now_secs(),
            reason: s.reason.clone(),
            late: s.late,
        };
        (note, result, detail)
    };
    let status = s.action.target_status();
    let audit = s.attempt.map(|attempt| AuditResult {
        attempt,
        result,
        detail,
    });
    // What WeChat did is a fact no later re-read can recover (the applicant may apply again
    // meanwhile): a store that fails for a moment is waited out rather than losing it.
    let settled = durably(|| {
        app.store
            .record_decision(s.card_id, s.version, s.whose(), status, &note, audit)
    })
    .await?;
    if !settled {
        tracing::warn!(card = s.card_id, appid = %s.appid, "a decision was recorded but its card had moved on");
    }
    match (app.poller(&s.plugin), status) {
        (Some(poller), Some(status)) => poller.remember_status(&s.appid, status),
        (Some(poller), None) => poller.forget(&s.appid),
        (None, _) => {}
    }
    Ok(())
}

async fn fail(app: &App, s: &Settling, error: &WeChatError) -> Result<(), StoreError> {
    let note = Note::Failed {
        action: s.action,
        by: s.actor.name.clone(),
        at: now_secs(),
        errcode: error.errcode(),
        retryable: error.is_retryable_by_person(),
        unclear: maybe_applied(error),
    };
    app.store
        .settle_card(s.card_id, s.version, s.action.resting_state(), Some(&note))
        .await?;
    Ok(())
}

/// Settles every card left in `deciding` that no decision of this process holds: interrupted by
/// a restart, or abandoned by a decision whose store write failed. Each is re-read from WeChat,
/// so its card shows the truth and the audit log gets the result that was swallowed. Runs at
/// start and after every poll. Returns how many it settled.
pub async fn recover_abandoned(app: &App, plugin: &AppId) -> Result<usize, StoreError> {
    let cards = app.store.deciding_cards().await?;
    let mut count = 0;
    for card in cards {
        if card.plugin != *plugin || app.holds.is_held(card.id) {
            continue;
        }
        count += 1;
        let (Some(action), Some(actor)) = (card.action, card.actor.clone()) else {
            app.store
                .settle_card(card.id, card.version, CardState::Open, None)
                .await?;
            continue;
        };
        let attempt = app.store.open_attempt(&card.plugin, &card.appid).await?;
        if let Some(attempt) = attempt
            && !wait_out_the_write(app, attempt).await?
        {
            break;
        }
        tracing::info!(appid = %card.appid, action = action.as_str(), "settling a decision that was interrupted");
        let s = Settling {
            card_id: card.id,
            version: card.version,
            plugin: card.plugin.clone(),
            appid: card.appid.clone(),
            action,
            actor,
            reason: card.reason.clone(),
            attempt,
            interrupted: true,
            late: false,
        };
        let cause = WeChatError::OutcomeUnknown {
            action: "restart",
            appid: card.appid.to_string(),
            cause: Box::new(WeChatError::InvalidRequest(
                "interrupted before WeChat's answer was recorded".into(),
            )),
        };
        reconcile(app, &s, cause).await?;
        look_again(app, &card.plugin, &card.appid);
        // A card in a former team chat is edited once, when it is closed for the move.
        if card.chat_id == app.desk.chat.0
            && let Err(e) = app.desk.refresh_card(card.id).await
        {
            tracing::warn!(card = card.id, error = %e, "could not edit a reconciled card");
        }
    }
    Ok(count)
}

/// A write sent just before the decision was interrupted may still reach WeChat after a re-read
/// (a crash does not recall what is on the wire): re-read only once it would have timed out.
/// Returns `false` when the bot began to stop meanwhile: the decision is left for the next start.
async fn wait_out_the_write(app: &App, attempt: i64) -> Result<bool, StoreError> {
    let Some(at) = app.store.attempt_at(attempt).await? else {
        return Ok(true);
    };
    let timeout = app
        .settings
        .plugins
        .iter()
        .map(|p| p.wechat.request_timeout)
        .max()
        .unwrap_or_default()
        .as_secs() as i64;
    // Another replica's decision may still be sending within its window; the attempt's time is
    // that replica's clock (replicas' clocks agree within a second, as NTP keeps them).
    let window = if app.store.is_postgres() {
        WRITE_WINDOW.as_secs() as i64 + 1
    } else {
        0
    };
    // Whole seconds on both sides: one more for the attempt's own rounding.
    let landed_by = at + window + timeout + 1;
    let wait = landed_by - now_secs();
    if wait > 0 {
        tracing::info!(
            seconds = wait,
            "waiting out a write that may still be on its way before re-reading"
        );
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(wait as u64)) => {}
            () = app.stopping.cancelled() => return Ok(false),
        }
    }
    Ok(true)
}

/// Settles a card whose last decision has an unknown outcome from a listing that began after
/// the outcome was recorded (`listed`: what it said of the applicant; `None` once the poller has
/// its proof that the applicant is gone). Returns whether the card changed.
pub async fn settle_unknown(
    app: &App,
    card: &Card,
    listed: Option<&Applicant>,
) -> Result<bool, StoreError> {
    let (Some(Note::Unknown { action, .. }), Some(actor)) = (&card.note, card.actor.clone()) else {
        return Ok(false);
    };
    let attempt = app.store.last_attempt(&card.plugin, &card.appid).await?;
    let s = Settling {
        card_id: card.id,
        version: card.version,
        plugin: card.plugin.clone(),
        appid: card.appid.clone(),
        action: *action,
        actor,
        reason: card.reason.clone(),
        attempt,
        interrupted: false,
        late: false,
    };
    match listed {
        Some(listed) => {
            resolve(app, &s, Some(listed), true, None).await?;
        }
        None => {
            // Whether the write took effect no longer matters: the applicant is gone.
            record(app, &s, AuditOutcome::Unknown, "the applicant is gone").await?;
            let note = Note::Gone { at: now_secs() };
            app.store
                .settle_card(s.card_id, s.version, CardState::Closed, Some(&note))
                .await?;
        }
    }
    look_again(app, &card.plugin, &card.appid);
    Ok(true)
}

/// Has the next poll look at an applicant again, whatever it lists: its card was settled outside
/// the poll and may now need something only the poll does (a new message for a card whose
/// message a person deleted).
fn look_again(app: &App, plugin: &AppId, appid: &AppId) {
    if let Some(poller) = app.poller(plugin) {
        poller.look_again(appid);
    }
}

/// What a decision on a plugin the bot no longer serves meets: nothing is sent to WeChat.
fn no_longer_served(plugin: &AppId) -> WeChatError {
    WeChatError::InvalidRequest(format!(
        "plugin {plugin} is no longer among the plugins this bot serves"
    ))
}
