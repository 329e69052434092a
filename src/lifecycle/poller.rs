//! The poller: WeChat tells nobody when someone applies, so the bot reads the list every interval
//! (and on `/refresh`), posts a card for each new pending applicant, and updates the cards of
//! applicants whose status changed outside the bot. One step ([`poll_once`]) is separate from the
//! sleeping loop ([`run`]) so tests drive it step by step.

use std::collections::HashMap;
use std::time::Duration;

use teloxide::prelude::Requester;
use tokio_util::sync::CancellationToken;

use crate::domain::applicant::{AppId, Applicant, ApplyStatus};
use crate::domain::card::{Card, CardState, Note};
use crate::domain::now_secs;
use crate::i18n::fill;
use crate::lifecycle::app::App;
use crate::lifecycle::plugin::{MISSING_PROOF, Poller, Seen, card_agrees};
use crate::telegram::html::{escape, nickname_html};
use crate::telegram::view::{format_time, wechat_error_text};
use crate::wechat::WeChatError;

/// What one poll did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Applicants WeChat listed.
    pub listed: usize,
    /// Cards posted.
    pub new_cards: usize,
    /// Cards edited because the status changed elsewhere or the applicant vanished.
    pub updated_cards: usize,
    /// Applicants whose stored record changed.
    pub changed: usize,
}

/// Failure of a poll.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// WeChat could not be read.
    #[error(transparent)]
    WeChat(#[from] WeChatError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// WeChat's daily quota is used up; polling rests until then (unix seconds).
    #[error("WeChat's daily quota is used up; not polling before {until}")]
    QuotaPaused {
        /// When polling resumes.
        until: i64,
    },
    /// The bot is stopping; the poll ended where it was (everything sent so far is recorded).
    #[error("the bot is stopping")]
    Stopping,
    /// Another replica leads and polls; this one does not (a 🔄 or `/refresh` it received).
    #[error("this replica stands by: {} polls WeChat", leader.as_deref().unwrap_or("no replica"))]
    Standby {
        /// The leading replica, as last read (`None`: none leads just now).
        leader: Option<String>,
    },
}

/// How many of `listed` have each status, every known status included (a count that drops to
/// zero shows zero).
fn status_counts(listed: &[Applicant]) -> Vec<(&'static str, usize)> {
    let mut counts: Vec<(&'static str, usize)> = ["pending", "approved", "refused", "expired"]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
    for a in listed {
        let name = a.status.name();
        match counts.iter_mut().find(|(s, _)| *s == name) {
            Some((_, n)) => *n += 1,
            None => counts.push((name, 1)),
        }
    }
    counts
}

/// Reads WeChat's list once and brings cards in line with it.
pub async fn poll_once(app: &App, poller: &Poller) -> Result<PollReport, PollError> {
    let started = std::time::Instant::now();
    let result = poll_locked(app, poller).await;
    let label = match &result {
        Ok(_) => "ok",
        Err(PollError::QuotaPaused { .. }) => "paused",
        Err(PollError::Stopping) => "stopped",
        Err(PollError::Standby { .. }) => "standby",
        Err(_) => "error",
    };
    crate::telemetry::poll(&poller.name, label, started.elapsed());
    // Judged on the whole poll, not on the listing alone: a listing the store could not record
    // (a read-only or full disk) leaves the bot as blind as one WeChat did not send.
    match &result {
        Ok(_) => note_health(app, poller, None).await,
        Err(e @ (PollError::WeChat(_) | PollError::Store(_))) => {
            note_health(app, poller, Some(e)).await
        }
        Err(PollError::QuotaPaused { .. } | PollError::Stopping | PollError::Standby { .. }) => {}
    }
    // The listing and everything built from it are dropped by now.
    crate::alloc::trim();
    result
}

async fn poll_locked(app: &App, poller: &Poller) -> Result<PollReport, PollError> {
    let _one_at_a_time = poller.poll_lock.lock().await;
    // Only the leader polls: two replicas' polls would race on every card. Asked after the lock,
    // so a poll that waited on another does not outlive the lease.
    if !app.leadership.leads() {
        return Err(PollError::Standby {
            leader: app.leadership.view().leader.map(|(name, _)| name),
        });
    }
    if let Some(until) = quota_paused_until(poller)
        && now_secs() < until
    {
        return Err(PollError::QuotaPaused { until });
    }
    // Read before listing: what this poll learns is no newer than this, and must not overwrite
    // what a decision records while the listing is still being paged.
    let as_of = app.store.clock().await?;
    let listing_began = std::time::Instant::now();
    // Reading is safe to drop halfway: a stop does not wait for WeChat's backoffs.
    let listed = tokio::select! {
        biased;
        () = app.stopping.cancelled() => return Err(PollError::Stopping),
        listed = poller.wechat.list_all_checked() => listed,
    };
    if let Err(e) = &listed
        && e.errcode() == Some(crate::wechat::DAILY_QUOTA)
    {
        // Rest at once, so a `/refresh` racing this poll does not spend more of the quota.
        note_quota(app, poller, e).await;
    }
    let crate::wechat::Listing {
        applicants: listed,
        complete,
    } = listed?;
    crate::telemetry::applicants_listed(&poller.name, &status_counts(&listed));
    let mut report = PollReport {
        listed: listed.len(),
        ..PollReport::default()
    };
    announce_burst(app, poller, &listed).await;
    let mut present = HashMap::with_capacity(listed.len());
    let mut changed = Vec::new();
    for applicant in listed {
        let unchanged = match poller.seen.get_mut(&applicant.appid) {
            Some(mut seen) => {
                seen.missed = 0;
                seen.missing_since = None;
                if seen.status == applicant.status {
                    seen.relisted = 0;
                    seen.relisted_since = None;
                }
                // `carded`: its card agrees with it (or it needs none).
                seen.lists(&applicant) && seen.carded
            }
            None => false,
        };
        if !unchanged {
            changed.push(applicant.clone());
        }
        present.insert(applicant.appid.clone(), applicant);
    }
    apply_changes(app, poller, changed, as_of, listing_began, &mut report).await?;
    if app.stopping.is_cancelled() {
        // What is left (absences, unknown outcomes, the sweep, stale edits) is judged at the
        // next start, from the store.
        return Err(PollError::Stopping);
    }
    // A WeChat that ignores `page` hides everyone past the first page: this listing proves no
    // absence (judged by this listing itself; another may have finished since).
    let missing: Vec<AppId> = poller
        .seen
        .iter_mut()
        .filter(|_| complete)
        .filter(|entry| !present.contains_key(entry.key()))
        .filter_map(|mut entry| {
            entry.missed = entry.missed.saturating_add(1);
            let since = *entry.missing_since.get_or_insert(listing_began);
            let apart = listing_began.saturating_duration_since(since);
            (entry.missed >= MISSING_PROOF && apart >= app.settings.absence_proof_after)
                .then(|| entry.key().clone())
        })
        .collect();
    for appid in missing {
        vanish(app, poller, &appid, as_of, &mut report).await?;
    }
    report.updated_cards += settle_unknown_outcomes(app, poller, &present, as_of).await?;
    match crate::lifecycle::decision::recover_abandoned(app, poller.plugin()).await {
        Ok(0) => {}
        Ok(n) => report.updated_cards += n,
        Err(e) => tracing::warn!(error = %e, "could not settle abandoned decisions"),
    }
    match close_moved_cards(app, poller).await {
        Ok(n) => report.updated_cards += n,
        Err(e) => tracing::warn!(error = %e, "could not close the cards of a former team chat"),
    }
    // Any edit a failure swallowed (a 429 past its retries, a 5xx, a timeout) is redone now: a
    // read of the store when there is none.
    report.updated_cards += app.desk.refresh_stale_cards().await.unwrap_or(0);
    if report
        != (PollReport {
            listed: report.listed,
            ..PollReport::default()
        })
    {
        tracing::info!(?report, "poll changed things");
    } else {
        tracing::debug!(listed = report.listed, "poll: nothing changed");
    }
    Ok(report)
}

/// Closes every card left in a chat that is no longer the team chat (`TEAM_CHAT_ID` changed):
/// its buttons go and it says where the team moved. A card whose decision is in flight or whose
/// outcome is unknown is settled first (by the sweep and the listing, in every chat), and only
/// then closed; until then the new chat offers no buttons for that applicant. Returns how many
/// it closed.
async fn close_moved_cards(app: &App, poller: &Poller) -> Result<usize, PollError> {
    let left: Vec<Card> = app
        .store
        .cards_elsewhere(app.desk.chat.0)
        .await?
        .into_iter()
        .filter(|card| card.plugin == *poller.plugin())
        .collect();
    if left.is_empty() {
        return Ok(0);
    }
    let title = match app.desk.bot.get_chat(app.desk.chat).await {
        Ok(chat) => chat.title().map(str::to_owned),
        Err(e) => {
            tracing::info!(error = %e, "could not read the team chat's title");
            None
        }
    };
    let moved = crate::domain::card::Moved {
        to: app.desk.chat.0,
        title,
        at: now_secs(),
    };
    let mut closed = 0;
    for card in left {
        // A decision in flight or waiting out its undo window still writes through: settled
        // first, then closed for the move.
        let unsettled = matches!(card.state, CardState::Deciding | CardState::Scheduled)
            || matches!(card.note, Some(Note::Unknown { .. }));
        if unsettled || app.stopping.is_cancelled() {
            continue;
        }
        let version = {
            let _sending_done = app.desk.lock_card(card.id).await;
            let Some(card) = app.store.card(card.id).await? else {
                continue;
            };
            if card.state == CardState::Sending {
                // Never recorded as sent: a reused row takes its old message back first.
                app.store.abandon_card(card.id).await?;
            }
            match app.store.card(card.id).await? {
                Some(card) => card.version,
                None => continue,
            }
        };
        if app.store.close_moved(card.id, version, &moved).await? {
            tracing::info!(
                card = card.id,
                from = card.chat_id,
                to = app.desk.chat.0,
                "closed a card of a former team chat"
            );
            refresh(app, card.id).await;
            closed += 1;
        }
    }
    Ok(closed)
}

/// Cards whose last decision's outcome is unknown are settled by the first listing that began
/// after the outcome was recorded and that lists their applicant. Returns how many changed.
async fn settle_unknown_outcomes(
    app: &App,
    poller: &Poller,
    present: &HashMap<AppId, Applicant>,
    as_of: i64,
) -> Result<usize, PollError> {
    let mut settled = 0;
    for card in app.store.unknown_cards().await? {
        // Another plugin's card is settled by that plugin's listing.
        if card.plugin != *poller.plugin() {
            continue;
        }
        let Some(stored) = app.store.applicant(&card.plugin, &card.appid).await? else {
            continue;
        };
        let listed = present.get(&card.appid);
        // Absent from this listing: only the poller's proof of absence settles it.
        if stored.touched > as_of || (listed.is_none() && !stored.gone) {
            continue;
        }
        if crate::lifecycle::decision::settle_unknown(app, &card, listed).await? {
            // A card in a former team chat is edited once, when it is closed for the move.
            if card.chat_id == app.desk.chat.0 {
                refresh(app, card.id).await;
            }
            settled += 1;
        }
    }
    Ok(settled)
}

/// A message about one plugin's polls, under the plugin's name when the bot serves several.
fn named(app: &App, poller: &Poller, html: String) -> String {
    match app.settings.plugin_name(poller.plugin().as_str()) {
        Some(name) => format!(
            "{}\n{html}",
            fill(app.texts().plugin_line, &[("name", &escape(name))])
        ),
        None => html,
    }
}

/// More new applicants than one minute of Telegram's group budget: their cards take minutes to
/// arrive, so the chat first gets one message listing them.
pub const DIGEST_AFTER: usize = 20;

/// Posts the digest when a poll brings more than [`DIGEST_AFTER`] applicants who need a card.
async fn announce_burst(app: &App, poller: &Poller, listed: &[Applicant]) {
    let new: Vec<&Applicant> = listed
        .iter()
        .filter(|a| a.status.is_decidable())
        .filter(|a| poller.seen.get(&a.appid).is_none_or(|s| !s.carded))
        .collect();
    if new.len() <= DIGEST_AFTER {
        return;
    }
    let t = app.texts();
    // The digest itself goes first, then each card: its message, and the edit that adds its
    // buttons once the message is recorded.
    let eta = app.desk.limiter.estimate(
        app.desk.chat.0,
        u32::try_from(2 * new.len() + 1).unwrap_or(u32::MAX),
    );
    let mut text = fill(
        t.digest_header,
        &[
            ("n", &new.len().to_string()),
            ("eta", &crate::telegram::view::format_duration(eta, t)),
        ],
    );
    for a in new.iter().take(DIGEST_AFTER) {
        let name = nickname_html(a.nickname.as_deref(), t);
        text.push_str(&format!(
            "\n• <b>{name}</b> <code>{}</code>",
            escape(a.appid.as_str())
        ));
    }
    text.push('\n');
    text.push_str(&fill(
        t.digest_more,
        &[("n", &(new.len() - DIGEST_AFTER).to_string())],
    ));
    app.desk.announce(named(app, poller, text)).await;
}

/// Above this many changed applicants in one poll, what the store knows is read in two queries
/// instead of one per applicant.
const BULK_AFTER: usize = 32;

/// Brings the store and the cards in line with the applicants that changed since the last poll:
/// one transaction for the records, then the cards one by one. Only records this poll could write
/// (none touched since `as_of`) have their cards changed.
async fn apply_changes(
    app: &App,
    poller: &Poller,
    changed: Vec<Applicant>,
    as_of: i64,
    listing_began: std::time::Instant,
    report: &mut PollReport,
) -> Result<(), PollError> {
    if changed.is_empty() {
        return Ok(());
    }
    let cards = known_cards(app, poller, &changed).await?;
    let changed = hold_unproven_relistings(app, poller, changed, &cards, listing_began).await?;
    // A decision holds these cards; it re-reads and shows the truth itself. Look again next poll.
    let changed: Vec<Applicant> = changed
        .into_iter()
        .filter(|a| {
            !cards
                .get(&a.appid)
                .is_some_and(|c| c.state == CardState::Deciding)
        })
        .collect();
    let written = app
        .store
        .record_listing(poller.plugin(), &changed, as_of)
        .await?;
    report.changed += written.len();
    for applicant in changed {
        if app.stopping.is_cancelled() {
            // Every card sent so far is recorded; the rest are posted after the restart (their
            // records say pending, and no card agrees with them).
            break;
        }
        let appid = applicant.appid.clone();
        if !written.contains(&appid) {
            // Decided or re-read while this poll was paging: its view is older. Next poll.
            continue;
        }
        let card = cards.get(&appid);
        let mut carded = !applicant.status.is_decidable();
        // A card whose details changed is re-rendered once the applicant is recorded as carded:
        // an edit that finds the message deleted marks it not carded, and that must stand, so
        // the next poll posts the card again.
        let mut rerender = None;
        if applicant.status.is_decidable() {
            match app.desk.ensure_card(poller.plugin(), &appid).await {
                Ok(true) => {
                    report.new_cards += 1;
                    // A person may have deleted the message before its buttons were added (the
                    // edit found it gone): then it is not carded, and the next poll posts it
                    // again. Read from the store, which that edit wrote before this returned.
                    carded = !app
                        .store
                        .card_for(app.desk.chat.0, poller.plugin(), &appid)
                        .await?
                        .is_some_and(|c| c.message_gone);
                }
                Ok(false) => {
                    // Carded only if a card offers ✅/❌ now. No card was sent because a decision
                    // holds it (whose outcome may close it), its card in a former chat is not
                    // settled yet, or it was decided since: the next poll looks again, or the
                    // decision's close would leave a pending applicant without buttons for good
                    // (the simulation's seed 76396).
                    carded = app
                        .store
                        .card_for(app.desk.chat.0, poller.plugin(), &appid)
                        .await?
                        .is_some_and(|c| {
                            matches!(
                                c.state,
                                CardState::Open
                                    | CardState::ChoosingReason
                                    | CardState::AwaitingReason
                            ) && !c.message_gone
                        });
                    if let Some(card) = card
                        && card.message_id.is_some()
                    {
                        // Details changed (nickname, reason): show them.
                        rerender = Some(card.id);
                    }
                }
                Err(crate::lifecycle::desk::CardError::Telegram(e))
                    if crate::lifecycle::desk::is_stopping(&e) => {}
                Err(e) => {
                    tracing::warn!(appid = %appid, error = %e, "could not post a card; will try again next poll")
                }
            }
        } else if let Some(card) = card
            && !card_agrees(card, applicant.status, false)
        {
            // Approved, refused, timed out in the WeChat console, or a status we do not know —
            // or a card a crash left offering a decision the record no longer allows.
            let note = Note::Elsewhere {
                status: applicant.status.code(),
                at: now_secs(),
            };
            carded = close_card(app, card.id, applicant.status, false, &note).await?;
            if carded {
                report.updated_cards += 1;
            }
        }
        poller.seen.insert(appid, Seen::new(&applicant, carded, 0));
        if let Some(card_id) = rerender {
            refresh(app, card_id).await;
        }
    }
    Ok(())
}

/// Leaves out of `changed` every applicant listed as pending again after a decision with no
/// newer application time, until listings at least `absence_proof_after` apart have all said so.
/// A re-application brings a newer `create_time` and is believed at once; the same time means
/// either the console moved it back or WeChat answered from a stale copy, and a stale copy must
/// not re-open a decided card (its next listing would close it again, after a new card with
/// buttons had offered a decision WeChat already has).
async fn hold_unproven_relistings(
    app: &App,
    poller: &Poller,
    changed: Vec<Applicant>,
    cards: &HashMap<AppId, Card>,
    listing_began: std::time::Instant,
) -> Result<Vec<Applicant>, PollError> {
    let mut kept = Vec::with_capacity(changed.len());
    for applicant in changed {
        let reopens = applicant.status.is_decidable()
            && cards
                .get(&applicant.appid)
                .is_some_and(|c| c.state == CardState::Closed);
        if !reopens {
            kept.push(applicant);
            continue;
        }
        let Some(stored) = app
            .store
            .applicant(poller.plugin(), &applicant.appid)
            .await?
        else {
            kept.push(applicant);
            continue;
        };
        let decided = !stored.gone && !stored.applicant.status.is_decidable();
        let newer = match (applicant.applied_at, stored.applicant.applied_at) {
            (Some(now), Some(before)) => now > before,
            _ => false,
        };
        if !decided || newer {
            kept.push(applicant);
            continue;
        }
        let proven = match poller.seen.get_mut(&applicant.appid) {
            Some(mut seen) => {
                seen.relisted = seen.relisted.saturating_add(1);
                let since = *seen.relisted_since.get_or_insert(listing_began);
                seen.relisted >= MISSING_PROOF
                    && listing_began.saturating_duration_since(since)
                        >= app.settings.absence_proof_after
            }
            None => true,
        };
        if proven {
            kept.push(applicant);
        } else {
            tracing::info!(appid = %applicant.appid, "listed as pending again with no newer application time; waiting for the next listing to confirm it");
        }
    }
    Ok(kept)
}

/// The cards of `changed`, by appid.
async fn known_cards(
    app: &App,
    poller: &Poller,
    changed: &[Applicant],
) -> Result<HashMap<AppId, Card>, PollError> {
    let mut cards = HashMap::new();
    if changed.len() > BULK_AFTER {
        for c in app.store.cards(app.desk.chat.0).await? {
            cards.insert(c.appid.clone(), c);
        }
    } else {
        for a in changed {
            if let Some(c) = app
                .store
                .card_for(app.desk.chat.0, poller.plugin(), &a.appid)
                .await?
            {
                cards.insert(a.appid.clone(), c);
            }
        }
    }
    Ok(cards)
}

async fn vanish(
    app: &App,
    poller: &Poller,
    appid: &AppId,
    as_of: i64,
    report: &mut PollReport,
) -> Result<(), PollError> {
    let plugin = poller.plugin();
    let stored = app.store.applicant(plugin, appid).await?;
    if stored.as_ref().is_some_and(|s| !s.gone) {
        if !app.store.mark_gone_as_of(plugin, appid, as_of).await? {
            // Re-read or decided since this poll began: not this poll's to judge.
            return Ok(());
        }
        report.changed += 1;
    }
    if let Some(card) = app.store.card_for(app.desk.chat.0, plugin, appid).await?
        && (card.state == CardState::Deciding || !card_agrees(&card, ApplyStatus::Pending, true))
    {
        let note = Note::Gone { at: now_secs() };
        if !close_card(app, card.id, ApplyStatus::Pending, true, &note).await? {
            // Held by a decision, or changed under this poll: the next listing without it
            // looks again (its absence stays proven).
            return Ok(());
        }
        report.updated_cards += 1;
    }
    poller.seen.remove(appid);
    Ok(())
}

/// Closes the card of an applicant that is no longer pending (`gone`: no longer listed) with
/// `note`, unless it already tells the truth. Under the card's lock, so a send in progress
/// finishes first: a card still unsent is taken back, a sent one is settled by compare-and-swap.
/// Returns whether the card now agrees with the record (`false` while a decision holds it, or when
/// it changed under this poll: the next poll looks again).
async fn close_card(
    app: &App,
    card_id: i64,
    status: ApplyStatus,
    gone: bool,
    note: &Note,
) -> Result<bool, PollError> {
    let settled = {
        let _sending_done = app.desk.lock_card(card_id).await;
        let Some(card) = app.store.card(card_id).await? else {
            return Ok(true);
        };
        match card.state {
            // Claimed since this poll read its cards: the decision re-reads or settles it, but
            // one that fails puts the card back as it was (✅/❌ for a status this poll has just
            // recorded as decided), and no later poll would look again at a record it finds
            // unchanged. Not carded: the next poll looks again.
            CardState::Deciding => return Ok(false),
            _ if card_agrees(&card, status, gone) => return Ok(true),
            CardState::Sending => {
                app.store.abandon_card(card.id).await?;
                return Ok(true);
            }
            _ => {
                app.store
                    .settle_card(card.id, card.version, CardState::Closed, Some(note))
                    .await?
            }
        }
    };
    if settled {
        refresh(app, card_id).await;
    }
    Ok(settled)
}

async fn refresh(app: &App, card_id: i64) {
    if let Err(e) = app.desk.refresh_card(card_id).await {
        tracing::warn!(card = card_id, error = %e, "could not edit a card");
    }
}

/// When polling may resume after a 45009, if it is resting.
pub fn quota_paused_until(poller: &Poller) -> Option<i64> {
    poller.health.lock().ok().and_then(|h| h.quota_paused_until)
}

/// A failed poll in the chat's language: WeChat's errcode and its meaning, or what the store
/// could not do.
pub fn poll_error_text(error: &PollError, lang: crate::i18n::Lang) -> String {
    match error {
        PollError::WeChat(e) => wechat_error_text(e, lang),
        PollError::Store(e) => fill(
            lang.texts().store_failed,
            &[(
                "error",
                &crate::telegram::html::clean(
                    &crate::report::one_line(e),
                    crate::telegram::view::ERROR_TEXT_MAX_CHARS,
                    false,
                ),
            )],
        ),
        other => crate::telegram::html::clean(
            &other.to_string(),
            crate::telegram::view::ERROR_TEXT_MAX_CHARS,
            false,
        ),
    }
}

/// WeChat's daily quota is used up: not an outage (WeChat answers, and says to stop), so polling
/// rests until the pause is over, and the chat is told once.
async fn note_quota(app: &App, poller: &Poller, e: &WeChatError) {
    let now = now_secs();
    let message = {
        let Ok(mut health) = poller.health.lock() else {
            return;
        };
        health.last_poll_at = Some(now);
        tracing::warn!(error = %e, "daily quota used up; polling rests");
        health.last_error = Some(e.to_string());
        health.last_error_text = Some(wechat_error_text(e, app.lang()));
        let until = now + app.settings.quota_pause.as_secs() as i64;
        health.quota_paused_until = Some(until);
        let first = !health.outage_announced;
        health.outage_announced = true;
        health.failing_since.get_or_insert(now);
        first.then(|| {
            fill(
                app.texts().quota_exhausted,
                &[("until", &format_time(until, &app.settings.time_zone))],
            )
        })
    };
    if let Some(message) = message {
        app.desk.announce(named(app, poller, message)).await;
    }
}

/// Tracks failures and tells the chat once when polls have failed `POLL_ALERT_AFTER` times in a
/// row, and once when they recover. The one place a failed poll is logged.
async fn note_health(app: &App, poller: &Poller, error: Option<&PollError>) {
    let now = now_secs();
    let t = app.texts();
    let message = {
        let Ok(mut health) = poller.health.lock() else {
            return;
        };
        health.last_poll_at = Some(now);
        match error {
            None => {
                health.last_ok_at = Some(now);
                health.quota_paused_until = None;
                let was_announced = health.outage_announced;
                let since = health.failing_since.take();
                health.failures_in_row = 0;
                health.outage_announced = false;
                health.reauthorize_announced = false;
                was_announced.then(|| {
                    let minutes = since.map_or(0, |s| (now - s).max(0) / 60);
                    fill(t.poll_recovered, &[("minutes", &minutes.to_string())])
                })
            }
            Some(PollError::WeChat(e)) if e.errcode() == Some(crate::wechat::DAILY_QUOTA) => {
                // Told by note_quota when the listing came back.
                None
            }
            Some(PollError::WeChat(e))
                if e.errcode() == Some(crate::wechat::REFRESH_TOKEN_INVALID) =>
            {
                // Only a person can mend this: said at once and once, on its own (not the
                // failed-polls alert beside it), and shown by /status with what to do.
                tracing::error!(error = %e, "the third-party platform's refresh token is refused (61023): the plugin's owner must authorize the platform again");
                health.last_error = Some(crate::report::one_line(e));
                let mut text = wechat_error_text(e, app.lang());
                if let Some(hint) =
                    crate::wechat::config_hint_in(crate::wechat::REFRESH_TOKEN_INVALID, app.lang())
                {
                    text.push_str(&fill(t.aside, &[("text", hint)]));
                }
                health.last_error_text = Some(text);
                health.failures_in_row += 1;
                health.failing_since.get_or_insert(now);
                let first = !health.reauthorize_announced;
                health.reauthorize_announced = true;
                health.outage_announced = true;
                first.then(|| t.reauthorize.to_owned())
            }
            Some(e) => {
                let line = match e {
                    PollError::Store(store) => {
                        format!(
                            "the store could not record the poll: {}",
                            crate::report::one_line(store)
                        )
                    }
                    other => crate::report::one_line(other),
                };
                tracing::warn!(error = %line, "poll failed");
                health.last_error = Some(line);
                health.last_error_text = Some(poll_error_text(e, app.lang()));
                health.failures_in_row += 1;
                let since = *health.failing_since.get_or_insert(now);
                if health.failures_in_row >= app.settings.poll_alert_after
                    && !health.outage_announced
                {
                    health.outage_announced = true;
                    let mut detail = poll_error_text(e, app.lang());
                    if let PollError::WeChat(w) = e
                        && let Some(hint) = w
                            .errcode()
                            .and_then(|c| crate::wechat::config_hint_in(c, app.lang()))
                    {
                        detail.push_str(&fill(t.aside, &[("text", hint)]));
                    }
                    Some(fill(
                        t.poll_outage,
                        &[
                            ("n", &health.failures_in_row.to_string()),
                            ("since", &format_time(since, &app.settings.time_zone)),
                            ("error", &escape(&detail)),
                        ],
                    ))
                } else {
                    None
                }
            }
        }
    };
    if let Some(message) = message {
        app.desk.announce(named(app, poller, message)).await;
    }
}

/// Polls `plugin`'s WeChat every interval until `shutdown` fires; a poll in progress finishes
/// first. Each plugin has a loop of its own: one plugin's outage, quota pause or slow answers
/// never holds up another's polls or cards.
pub async fn run(
    app: std::sync::Arc<App>,
    plugin: AppId,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let Some(poller) = app.poller(&plugin) else {
        return;
    };
    loop {
        let polled = poll_once(&app, poller).await;
        // Undo windows nobody here waits on (a restart, a replica gone): after the poll, which
        // closes the card of an applicant decided elsewhere meanwhile.
        if let Err(e) = crate::lifecycle::decision::resume_windows(&app, &plugin).await {
            tracing::warn!(plugin = %poller.name, error = %e, "could not look for undo windows to take up");
        }
        // Reminders cover every plugin's cards: whichever plugin's poll succeeds first once
        // they are due sends them.
        if polled.is_ok() && app.reminders_due() {
            if let Err(e) = crate::lifecycle::reminder::remind(&app).await {
                tracing::warn!(error = %e, "could not look for applicants to remind of");
            }
            if let Err(e) = crate::lifecycle::reminder::escalate(&app).await {
                tracing::warn!(error = %e, "could not look for applicants to escalate");
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
        if let Err(e) = app.store.checkpoint().await {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
        // After a 45009 the next poll waits for the quota pause, not just the interval.
        let rest = quota_paused_until(poller)
            .map(|until| Duration::from_secs((until - now_secs()).max(0) as u64))
            .unwrap_or_default()
            .max(interval);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(rest) => {}
        }
    }
    tracing::info!(plugin = %poller.name, "poller stopped");
}
