//! Cards: the chat message that stands for each applicant, where it is in its life, who holds it
//! and what it shows. Every move is a compare-and-swap on its state or its version.

use super::sql;
use super::{Store, StoreError, StoreResult, StoredApplicant};
use crate::domain::action::Action;
use crate::domain::applicant::{AppId, ApplyStatus};
use crate::domain::audit::{Attempt, AuditOutcome, AuditResult};
use crate::domain::card::{Actor, Card, CardState, Moved, Note, Vote};
use crate::domain::now_secs;

/// What a decision's claim won: the attempt logged for it and the card's version as claimed
/// (the decision settles the card only if it is still at that version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionClaim {
    pub attempt: i64,
    pub version: i64,
}

/// A card whose applicant has waited long enough to be mentioned in a reminder.
#[derive(Clone, Debug, PartialEq)]
pub struct DueReminder {
    pub card: Card,
    pub applicant: StoredApplicant,
    /// When it began waiting: applied, or first seen when WeChat gave no time (unix seconds).
    pub since: i64,
}

row! {
    /// A `cards` row as stored.
    pub(super) struct CardRow {
        id: i64,
        chat_id: i64,
        plugin: String,
        appid: String,
        message_id: Option<i32>,
        state: CardState,
        actor_id: Option<i64>,
        actor_name: Option<String>,
        action: Option<Action>,
        reason: Option<String>,
        note: Option<String>,
        prompt_message_id: Option<i32>,
        message_gone: bool,
        previous_message_id: Option<i32>,
        version: i64,
        moved: Option<String>,
        votes: String,
        due_at: Option<i64>,
        resumed: bool,
        updated_at: i64,
    }
}

impl TryFrom<CardRow> for Card {
    type Error = StoreError;

    fn try_from(row: CardRow) -> StoreResult<Self> {
        let corrupt = |detail: String| StoreError::Corrupt {
            table: "cards",
            detail,
        };
        let appid =
            AppId::parse(&row.appid).map_err(|e| corrupt(format!("appid {:?}: {e}", row.appid)))?;
        let plugin = super::plugin_of(&row.plugin, "cards")?;
        let note = row
            .note
            .map(|n| {
                serde_json::from_str::<Note>(&n)
                    .map_err(|e| corrupt(format!("card {} note {n:?}: {e}", row.id)))
            })
            .transpose()?;
        let moved = row
            .moved
            .map(|m| {
                serde_json::from_str::<Moved>(&m)
                    .map_err(|e| corrupt(format!("card {} moved {m:?}: {e}", row.id)))
            })
            .transpose()?;
        let votes = serde_json::from_str::<Vec<Vote>>(&row.votes)
            .map_err(|e| corrupt(format!("card {} votes {:?}: {e}", row.id, row.votes)))?;
        let actor = match (row.actor_id, row.actor_name) {
            (Some(id), Some(name)) => Some(Actor {
                id: id as u64,
                name,
            }),
            _ => None,
        };
        Ok(Self {
            id: row.id,
            chat_id: row.chat_id,
            plugin,
            appid,
            message_id: row.message_id,
            state: row.state,
            actor,
            action: row.action,
            reason: row.reason,
            note,
            prompt_message_id: row.prompt_message_id,
            message_gone: row.message_gone,
            previous_message_id: row.previous_message_id,
            moved,
            votes,
            due_at: row.due_at,
            resumed: row.resumed,
            version: row.version,
            changed_at: row.updated_at,
        })
    }
}

row! {
    /// A card due for a reminder, with when its applicant began waiting.
    pub(super) struct DueRow {
        card_id: i64,
        since: i64,
    }
}

fn cards(rows: Vec<CardRow>) -> StoreResult<Vec<Card>> {
    rows.into_iter().map(Card::try_from).collect()
}

/// The slots of [`sql::cards::CLAIM`]'s and [`sql::cards::CANCEL_REASON`]'s `state IN`: the
/// wanted states, the first repeated to fill six (`None` when none are wanted: nothing matches).
fn state_slots(from: &[CardState]) -> Option<[CardState; 6]> {
    let first = *from.first()?;
    let mut slots = [first; 6];
    for (slot, state) in slots.iter_mut().zip(from) {
        *slot = *state;
    }
    debug_assert!(from.len() <= 6, "a card has six states");
    Some(slots)
}

impl Store {
    /// Cards in `chat_id` of applicants still pending since before `applied_before` (or first
    /// seen then) and first seen before `seen_before`, never escalated, oldest first.
    pub async fn due_escalations(
        &self,
        chat_id: i64,
        applied_before: i64,
        seen_before: i64,
    ) -> StoreResult<Vec<DueReminder>> {
        on_pool!(self, pool, {
            let rows = sql::cards::DUE_ESCALATIONS
                .query::<DB>()
                .bind(chat_id)
                .bind(applied_before)
                .bind(seen_before)
                .fetch_all(pool)
                .await?;
            self.due_cards(rows).await
        })
    }

    /// Each due row with its card and applicant (a row whose card or applicant went meanwhile is
    /// left out).
    async fn due_cards(&self, rows: Vec<DueRow>) -> StoreResult<Vec<DueReminder>> {
        let mut out = Vec::with_capacity(rows.len());
        for DueRow { card_id, since } in rows {
            let Some(card) = self.card(card_id).await? else {
                continue;
            };
            if let Some(applicant) = self.applicant(&card.plugin, &card.appid).await? {
                out.push(DueReminder {
                    card,
                    applicant,
                    since,
                });
            }
        }
        Ok(out)
    }

    /// Records that the cards `ids` were escalated at `at`.
    pub async fn mark_escalated(&self, ids: &[i64], at: i64) -> StoreResult<()> {
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            for id in ids {
                sql::cards::MARK_ESCALATED
                    .query::<DB>()
                    .bind(at)
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Cards in `chat_id` of applicants still pending since before `applied_before` (or first
    /// seen then, when WeChat gave no time) and not reminded of since `reminded_before`, oldest
    /// first.
    pub async fn due_reminders(
        &self,
        chat_id: i64,
        applied_before: i64,
        reminded_before: i64,
        seen_before: i64,
    ) -> StoreResult<Vec<DueReminder>> {
        on_pool!(self, pool, {
            let rows = sql::cards::DUE_REMINDERS
                .query::<DB>()
                .bind(chat_id)
                .bind(applied_before)
                .bind(reminded_before)
                .bind(seen_before)
                .fetch_all(pool)
                .await?;
            self.due_cards(rows).await
        })
    }

    /// Records that the chat was reminded of these cards at `at`.
    pub async fn mark_reminded(&self, card_ids: &[i64], at: i64) -> StoreResult<()> {
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            for id in card_ids {
                sql::cards::MARK_REMINDED
                    .query::<DB>()
                    .bind(at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Starts a card for `plugin`'s applicant `appid` in `chat_id`: writes it in state `sending` before anything is
    /// sent. Returns `None` when a card that still stands exists (never two live cards); a closed
    /// card (the applicant is pending again) or a live one whose message a person deleted is
    /// reused for the new message — only if it is still at `read_version`, the version the
    /// caller judged it at (`None`: the caller found no card). A reused card moves to a new
    /// version and keeps its live old message in `previous_message_id`.
    pub async fn begin_card(
        &self,
        chat_id: i64,
        plugin: &AppId,
        appid: &AppId,
        read_version: Option<i64>,
    ) -> StoreResult<Option<Card>> {
        on_pool!(self, pool, {
            let now = now_secs();
            let changed = sql::cards::BEGIN
                .query::<DB>()
                .bind(chat_id)
                .bind(appid.as_str())
                .bind(now)
                .bind(now)
                .bind(read_version)
                .bind(plugin.as_str())
                .execute(pool)
                .await?
                .rows_affected();
            if changed == 0 {
                return Ok(None);
            }
            self.card_for(chat_id, plugin, appid).await
        })
    }

    /// The card of `appid` in `chat_id`, written as a closed card without a message when there
    /// is none, so a command can decide on an applicant that never had a card (the decision's
    /// claim, audit attempt and outcome live on it, as on any card).
    pub async fn card_or_record(
        &self,
        chat_id: i64,
        plugin: &AppId,
        appid: &AppId,
    ) -> StoreResult<Option<Card>> {
        on_pool!(self, pool, {
            let now = now_secs();
            sql::cards::RECORD_ONLY
                .query::<DB>()
                .bind(chat_id)
                .bind(plugin.as_str())
                .bind(appid.as_str())
                .bind(now)
                .bind(now)
                .execute(pool)
                .await?;
            self.card_for(chat_id, plugin, appid).await
        })
    }

    /// Cards in chats other than `chat_id` not yet closed for the move (the team chat changed).
    pub async fn cards_elsewhere(&self, chat_id: i64) -> StoreResult<Vec<Card>> {
        self.cards_by(&sql::cards::ELSEWHERE, chat_id).await
    }

    /// Closes a card left in a former team chat, saying where the team went, if it is still
    /// at `version` and nobody is sending or deciding on it. Returns whether it was closed.
    pub async fn close_moved(
        &self,
        card_id: i64,
        version: i64,
        moved: &Moved,
    ) -> StoreResult<bool> {
        on_pool!(self, pool, {
            let moved = serde_json::to_string(moved).map_err(|e| StoreError::Corrupt {
                table: "cards",
                detail: format!("card {card_id}: {e}"),
            })?;
            let done = sql::cards::MOVE
                .query::<DB>()
                .bind(moved)
                .bind(now_secs())
                .bind(card_id)
                .bind(version)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(done == 1)
        })
    }

    /// Whether a card of `appid` in a chat other than `chat_id` may still be written through:
    /// a decision in flight there, or one whose outcome is unknown. The new team chat offers no
    /// buttons for it until that is settled.
    pub async fn unsettled_elsewhere(
        &self,
        chat_id: i64,
        plugin: &AppId,
        appid: &AppId,
    ) -> StoreResult<bool> {
        on_pool!(self, pool, {
            let n = sql::cards::UNSETTLED_ELSEWHERE
                .query::<DB>()
                .bind(chat_id)
                .bind(plugin.as_str())
                .bind(appid.as_str())
                .fetch_one(pool)
                .await?;
            Ok(n > 0)
        })
    }

    /// Whether a card of `chat_id` records `message_id` (as its message, the one it replaced, or
    /// its reason prompt). A card message no row records is a copy Telegram took in the moment
    /// before a kill (the documented duplicate window).
    pub async fn knows_message(&self, chat_id: i64, message_id: i32) -> StoreResult<bool> {
        on_pool!(self, pool, {
            let n = sql::cards::KNOWS_MESSAGE
                .query::<DB>()
                .bind(chat_id)
                .bind(message_id)
                .fetch_one(pool)
                .await?;
            Ok(n > 0)
        })
    }

    /// Takes back a card written but not sent, for an applicant no longer pending: a card that
    /// never had a message closes; one re-opened for a re-application goes back to closed.
    pub async fn abandon_card(&self, card_id: i64) -> StoreResult<()> {
        on_pool!(self, pool, {
            sql::cards::ABANDON
                .query::<DB>()
                .bind(now_secs())
                .bind(card_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Records the message a card was sent as (without its buttons); the card is now open and
    /// its message one version behind, until the edit that adds the buttons. Returns whether it
    /// was recorded: `false` when the card was no longer being sent (its message stands for
    /// nothing).
    pub async fn card_sent(&self, card_id: i64, message_id: i32) -> StoreResult<bool> {
        on_pool!(self, pool, {
            let done = sql::cards::SENT
                .query::<DB>()
                .bind(message_id)
                .bind(now_secs())
                .bind(card_id)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(done == 1)
        })
    }

    /// Cards whose old message still has to say that a newer card replaced it, in every chat
    /// (a team chat that moved keeps its old messages true).
    pub async fn cards_to_supersede(&self) -> StoreResult<Vec<Card>> {
        on_pool!(self, pool, {
            cards(
                sql::cards::TO_SUPERSEDE
                    .query::<DB>()
                    .fetch_all(pool)
                    .await?,
            )
        })
    }

    /// Records that `message_id`, the card's old message, now says a newer card replaced it (or
    /// can no longer be edited).
    pub async fn superseded(&self, card_id: i64, message_id: i32) -> StoreResult<()> {
        on_pool!(self, pool, {
            sql::cards::SUPERSEDED
                .query::<DB>()
                .bind(card_id)
                .bind(message_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Every card in a chat (the poller reads them in bulk when many applicants changed).
    pub async fn cards(&self, chat_id: i64) -> StoreResult<Vec<Card>> {
        self.cards_by(&sql::cards::IN_CHAT, chat_id).await
    }

    /// Cards written but never confirmed sent (a failed send or a crash mid-send).
    pub async fn unsent_cards(&self, chat_id: i64) -> StoreResult<Vec<Card>> {
        self.cards_by(&sql::cards::UNSENT, chat_id).await
    }

    /// Cards left mid-decision (a crash between claiming and finishing), in every chat.
    pub async fn deciding_cards(&self) -> StoreResult<Vec<Card>> {
        on_pool!(self, pool, {
            cards(sql::cards::DECIDING.query::<DB>().fetch_all(pool).await?)
        })
    }

    /// Cards whose last decision has an unknown outcome (WeChat's answer was lost and the re-read
    /// failed), in every chat: the poller settles them from the next listing that began after.
    pub async fn unknown_cards(&self) -> StoreResult<Vec<Card>> {
        on_pool!(self, pool, {
            cards(sql::cards::UNKNOWN.query::<DB>().fetch_all(pool).await?)
        })
    }

    /// The cards of a chat that `statement` selects (its one bind is the chat).
    async fn cards_by(
        &self,
        statement: &'static sql::Rows<CardRow>,
        chat_id: i64,
    ) -> StoreResult<Vec<Card>> {
        on_pool!(self, pool, {
            let rows = statement
                .query::<DB>()
                .bind(chat_id)
                .fetch_all(pool)
                .await?;
            cards(rows)
        })
    }

    /// A card by id.
    pub async fn card(&self, id: i64) -> StoreResult<Option<Card>> {
        on_pool!(self, pool, {
            let row = sql::cards::BY_ID
                .query::<DB>()
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.map(Card::try_from).transpose()
        })
    }

    /// The card for `plugin`'s applicant in a chat.
    pub async fn card_for(
        &self,
        chat_id: i64,
        plugin: &AppId,
        appid: &AppId,
    ) -> StoreResult<Option<Card>> {
        on_pool!(self, pool, {
            let row = sql::cards::FOR_APPLICANT
                .query::<DB>()
                .bind(chat_id)
                .bind(plugin.as_str())
                .bind(appid.as_str())
                .fetch_optional(pool)
                .await?;
            row.map(Card::try_from).transpose()
        })
    }

    /// The card whose ForceReply prompt is `prompt_message_id`.
    pub async fn card_by_prompt(
        &self,
        chat_id: i64,
        prompt_message_id: i32,
    ) -> StoreResult<Option<Card>> {
        on_pool!(self, pool, {
            let row = sql::cards::BY_PROMPT
                .query::<DB>()
                .bind(chat_id)
                .bind(prompt_message_id)
                .fetch_optional(pool)
                .await?;
            row.map(Card::try_from).transpose()
        })
    }

    /// Ids of the cards waiting for a typed reason.
    pub async fn awaiting_reason_cards(&self, chat_id: i64) -> StoreResult<Vec<i64>> {
        on_pool!(self, pool, {
            Ok(sql::cards::AWAITING_REASON
                .query::<DB>()
                .bind(chat_id)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Atomically moves a card from one of `from` to `to`, recording who and what. Returns the
    /// card's new version when this caller made the move: of two simultaneous presses, exactly
    /// one gets it. A card whose last outcome is unknown is not moved (it offers no decision,
    /// not even the first step of one).
    pub async fn claim(
        &self,
        card_id: i64,
        from: &[CardState],
        to: CardState,
        actor: &Actor,
        action: Option<Action>,
        reason: Option<&str>,
    ) -> StoreResult<Option<i64>> {
        on_pool!(self, pool, {
            let claim = Claiming {
                from,
                to,
                actor,
                action,
                reason,
                votes_needed: 0,
                due_at: None,
                expect_due: None,
            };
            Ok(claim_with!(pool, card_id, &claim))
        })
    }

    /// Sets a card's state and the outcome it shows, if the card is still at `version` (the one
    /// it was read or claimed at). Returns whether it was set: a card that moved meanwhile is
    /// left to whoever moved it.
    pub async fn settle_card(
        &self,
        card_id: i64,
        version: i64,
        state: CardState,
        note: Option<&Note>,
    ) -> StoreResult<bool> {
        on_pool!(self, pool, {
            Ok(settle_card_with!(pool, card_id, version, state, note))
        })
    }

    /// Ends the reject flow (↩ Cancel): back to `open` from one of `from`, keeping the note, in
    /// one compare-and-swap. Returns whether this caller did it.
    pub async fn cancel_reason(&self, card_id: i64, from: &[CardState]) -> StoreResult<bool> {
        on_pool!(self, pool, {
            let Some(slots) = state_slots(from) else {
                return Ok(false);
            };
            let mut query = sql::cards::CANCEL_REASON
                .query::<DB>()
                .bind(now_secs())
                .bind(card_id);
            for state in slots {
                query = query.bind(state);
            }
            let done = query.execute(pool).await?.rows_affected();
            Ok(done == 1)
        })
    }

    /// Claims a card for a decision and appends the attempt to the audit log in one transaction.
    /// Returns what the claim won, or `None` when the card was not in one of `from` (someone else
    /// holds it, or it moved on): of simultaneous callers exactly one gets it.
    /// `votes_needed`: the stored votes the card must hold in the same statement (the quorum
    /// for an approval, else 0), so no approval is claimed on fewer. `expect_due`: at an undo
    /// window's end, the deadline the scheduled card must still have.
    pub async fn claim_for_decision(
        &self,
        card_id: i64,
        from: &[CardState],
        attempt: &Attempt<'_>,
        votes_needed: u32,
        expect_due: Option<i64>,
    ) -> StoreResult<Option<DecisionClaim>> {
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            // A card whose last outcome is unknown offers no decision: the write may have happened.
            let claim = Claiming {
                from,
                to: CardState::Deciding,
                actor: attempt.actor,
                action: Some(attempt.action),
                reason: attempt.reason,
                votes_needed,
                due_at: None,
                expect_due,
            };
            let Some(version) = claim_with!(&mut *tx, card_id, &claim) else {
                tx.rollback().await?;
                return Ok(None);
            };
            let attempt = attempt_with!(&mut *tx, attempt);
            tx.commit().await?;
            Ok(Some(DecisionClaim { attempt, version }))
        })
    }

    /// Claims a card for a decision that waits out its undo window: to `scheduled` until `due_at`
    /// (unix ms), with the same checks as [`Store::claim_for_decision`] (state, quorum, no
    /// unknown outcome here or unsettled decision elsewhere), and a `scheduled` audit row, in one
    /// transaction. Returns the card's version, or `None` when the claim lost.
    pub async fn schedule_decision(
        &self,
        card_id: i64,
        from: &[CardState],
        attempt: &Attempt<'_>,
        votes_needed: u32,
        due_at: i64,
    ) -> StoreResult<Option<i64>> {
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            let claim = Claiming {
                from,
                to: CardState::Scheduled,
                actor: attempt.actor,
                action: Some(attempt.action),
                reason: attempt.reason,
                votes_needed,
                due_at: Some(due_at),
                expect_due: None,
            };
            let Some(version) = claim_with!(&mut *tx, card_id, &claim) else {
                tx.rollback().await?;
                return Ok(None);
            };
            let mark = Mark {
                plugin: attempt.plugin,
                appid: attempt.appid,
                action: attempt.action,
                actor: attempt.actor,
                via: attempt.via,
                reason: attempt.reason,
                result: AuditOutcome::Scheduled,
            };
            mark_with!(&mut *tx, &mark);
            tx.commit().await?;
            Ok(Some(version))
        })
    }

    /// ↩ Undo: puts a scheduled decision's card back to open (its votes as they were) and logs
    /// who undid what, in one transaction. Returns whether this caller did it: `false` once the
    /// window's end claimed the card, or a poll settled it.
    pub async fn undo_scheduled(
        &self,
        card: &Card,
        actor: &Actor,
        via: crate::domain::action::Via,
    ) -> StoreResult<bool> {
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            let undone = sql::cards::UNDO
                .query::<DB>()
                .bind(now_secs())
                .bind(card.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if undone != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            let mark = Mark {
                plugin: &card.plugin,
                appid: &card.appid,
                action: card.action.unwrap_or(Action::Approve),
                actor,
                via,
                reason: card.reason.as_deref(),
                result: AuditOutcome::Undone,
            };
            mark_with!(&mut *tx, &mark);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Decisions waiting out their undo window, in every chat.
    pub async fn scheduled_cards(&self) -> StoreResult<Vec<Card>> {
        on_pool!(self, pool, {
            cards(sql::cards::SCHEDULED.query::<DB>().fetch_all(pool).await?)
        })
    }

    /// Marks a scheduled card's wait as taken up again after a restart. Returns whether it
    /// changed (it was scheduled and not yet marked).
    pub async fn mark_resumed(&self, card_id: i64) -> StoreResult<bool> {
        on_pool!(self, pool, {
            Ok(sql::cards::RESUMED
                .query::<DB>()
                .bind(card_id)
                .execute(pool)
                .await?
                .rows_affected()
                == 1)
        })
    }

    /// Sets an open card's votes from the version its voter read, and appends the vote or
    /// withdrawal (`result`) to the audit log, in one transaction. Returns whether it was set:
    /// a card that moved meanwhile (another vote, a decision) is read again by the caller.
    pub async fn set_votes(
        &self,
        card_id: i64,
        version: i64,
        votes: &[Vote],
        change: &VoteChange<'_>,
    ) -> StoreResult<bool> {
        let json = serde_json::to_string(votes).map_err(|e| StoreError::Corrupt {
            table: "cards",
            detail: format!("votes of card {card_id}: {e}"),
        })?;
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            let set = sql::cards::SET_VOTES
                .query::<DB>()
                .bind(&json)
                .bind(now_secs())
                .bind(card_id)
                .bind(version)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if set != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            let mark = Mark {
                plugin: change.plugin,
                appid: change.appid,
                action: Action::Approve,
                actor: change.actor,
                via: change.via,
                reason: None,
                result: if change.withdrawn {
                    AuditOutcome::Withdrawn
                } else {
                    AuditOutcome::Vote
                },
            };
            mark_with!(&mut *tx, &mark);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Records a decision WeChat confirmed, in one transaction: the applicant's new status (or
    /// that it is gone) at the next tick, the audit result, and — if the card is still at
    /// `version` — its state and note. Returns whether the card was settled.
    pub async fn record_decision(
        &self,
        card_id: i64,
        version: i64,
        whose: Whose<'_>,
        status: Option<ApplyStatus>,
        note: &Note,
        audit: Option<AuditResult<'_>>,
    ) -> StoreResult<bool> {
        let Whose { plugin, appid } = whose;
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            let tick = tick_with!(&mut *tx);
            match status {
                Some(status) => {
                    sql::applicants::SET_STATUS
                        .query::<DB>()
                        .bind(status.code())
                        .bind(tick)
                        .bind(now_secs())
                        .bind(plugin.as_str())
                        .bind(appid.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                None => {
                    let _marked = mark_gone_with!(&mut *tx, plugin, appid, tick, None);
                }
            }
            let settled =
                settle_card_with!(&mut *tx, card_id, version, CardState::Closed, Some(note));
            if let Some(r) = audit {
                result_with!(&mut *tx, r.attempt, r.result, None, r.detail);
            }
            tx.commit().await?;
            Ok(settled)
        })
    }

    /// Remembers the ForceReply prompt that asks for a typed reason (only while the card waits
    /// for one).
    pub async fn set_prompt(&self, card_id: i64, prompt_message_id: i32) -> StoreResult<()> {
        on_pool!(self, pool, {
            sql::cards::SET_PROMPT
                .query::<DB>()
                .bind(prompt_message_id)
                .bind(now_secs())
                .bind(card_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Records that the message now shows `version` of the card.
    pub async fn card_shown(&self, card_id: i64, version: i64) -> StoreResult<()> {
        on_pool!(self, pool, {
            sql::cards::SHOWN
                .query::<DB>()
                .bind(version)
                .bind(card_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Cards whose message shows an older state than the store holds (an edit a crash or a
    /// Telegram failure swallowed), in every chat.
    pub async fn stale_cards(&self) -> StoreResult<Vec<i64>> {
        on_pool!(self, pool, {
            Ok(sql::cards::STALE.query::<DB>().fetch_all(pool).await?)
        })
    }

    /// Records that a person deleted the card's message; it is not edited again.
    pub async fn mark_message_gone(&self, card_id: i64) -> StoreResult<()> {
        on_pool!(self, pool, {
            sql::cards::MESSAGE_GONE
                .query::<DB>()
                .bind(now_secs())
                .bind(card_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}

/// An audit row that is no attempt (a vote, a withdrawal, a decision scheduled or undone).
pub(super) struct Mark<'a> {
    pub plugin: &'a AppId,
    pub appid: &'a AppId,
    pub action: Action,
    pub actor: &'a Actor,
    pub via: crate::domain::action::Via,
    pub reason: Option<&'a str>,
    pub result: AuditOutcome,
}

/// Whose decision it was: the plugin the applicant applied to, and its appid.
#[derive(Clone, Copy, Debug)]
pub struct Whose<'a> {
    pub plugin: &'a AppId,
    pub appid: &'a AppId,
}

/// A vote cast or withdrawn, as the audit log records it.
#[derive(Clone, Copy, Debug)]
pub struct VoteChange<'a> {
    /// The plugin the applicant applied to.
    pub plugin: &'a AppId,
    pub appid: &'a AppId,
    pub actor: &'a Actor,
    /// A button or a command.
    pub via: crate::domain::action::Via,
    /// Taken back rather than cast.
    pub withdrawn: bool,
}

/// A claim's compare-and-swap: from one of `from` to `to`, recording who and what.
struct Claiming<'a> {
    from: &'a [CardState],
    to: CardState,
    actor: &'a Actor,
    action: Option<Action>,
    reason: Option<&'a str>,
    /// Stored votes the card must hold (0 but for an approval under a quorum).
    votes_needed: u32,
    /// When a decision claimed into `scheduled` goes out (unix ms); `None` for any other state.
    due_at: Option<i64>,
    /// The due the card must still have (an undo window's own end claiming it); `None`: any.
    expect_due: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plugin the tests' applicants applied to.
    fn plugin() -> &'static crate::domain::applicant::AppId {
        static PLUGIN: std::sync::OnceLock<crate::domain::applicant::AppId> =
            std::sync::OnceLock::new();
        PLUGIN.get_or_init(|| {
            crate::domain::applicant::AppId::parse("wxplugin0000000001").expect("a plugin appid")
        })
    }
    use crate::domain::action::Via;
    use crate::domain::applicant::{Applicant, ApplyStatus};
    use crate::domain::audit::AuditOutcome;

    /// A store with one sent card for a pending applicant.
    async fn store_with_a_card() -> (Store, AppId, Card) {
        let store = Store::in_memory().await.expect("store");
        let appid = AppId::parse("wx1234567890abcdef").expect("appid");
        store
            .upsert_applicant(
                plugin(),
                &Applicant {
                    appid: appid.clone(),
                    status: ApplyStatus::Pending,
                    nickname: None,
                    avatar_url: None,
                    reason: None,
                    apply_url: None,
                    applied_at: None,
                    categories: Vec::new(),
                },
            )
            .await
            .expect("applicant");
        let card = store
            .begin_card(-1, plugin(), &appid, None)
            .await
            .expect("begin")
            .expect("a new card");
        store.card_sent(card.id, 7).await.expect("sent");
        let card = store.card(card.id).await.expect("read").expect("card");
        (store, appid, card)
    }

    fn alice() -> Actor {
        Actor {
            id: 1,
            name: "@alice".to_owned(),
        }
    }

    #[tokio::test]
    async fn a_settle_from_an_old_version_changes_nothing_and_says_so() {
        let (store, _, read) = store_with_a_card().await;
        let claimed = store
            .claim(
                read.id,
                &[CardState::Open],
                CardState::ChoosingReason,
                &alice(),
                Some(Action::Reject),
                None,
            )
            .await
            .expect("claim")
            .expect("the claim wins");
        let note = Note::Gone { at: 1 };

        let stale = store
            .settle_card(read.id, read.version, CardState::Closed, Some(&note))
            .await
            .expect("stale settle");
        let after_stale = store.card(read.id).await.expect("read").expect("card");
        let current = store
            .settle_card(read.id, claimed, CardState::Closed, Some(&note))
            .await
            .expect("settle");
        let after = store.card(read.id).await.expect("read").expect("card");

        assert!(
            !stale,
            "a settle from an old version said it changed the card"
        );
        assert_eq!(after_stale.state, CardState::ChoosingReason);
        assert_eq!(after_stale.version, claimed);
        assert_eq!(after_stale.note, None);
        assert!(current, "a settle from the current version was refused");
        assert_eq!(after.state, CardState::Closed);
        assert_eq!(after.note, Some(note));
        assert_eq!(after.version, claimed + 1);
    }

    #[tokio::test]
    async fn a_decision_recorded_from_an_old_version_leaves_the_card_to_whoever_moved_it() {
        let (store, appid, card) = store_with_a_card().await;
        let actor = alice();
        let attempt = Attempt {
            plugin: plugin(),
            appid: &appid,
            action: Action::Approve,
            actor: &actor,
            via: Via::Button,
            reason: None,
        };
        let claim = store
            .claim_for_decision(card.id, &[CardState::Open], &attempt, 0, None)
            .await
            .expect("claim")
            .expect("the claim wins");
        // Someone else settled the card meanwhile (another instance's sweep).
        let elsewhere = Note::Elsewhere { status: 3, at: 1 };
        let moved = store
            .settle_card(card.id, claim.version, CardState::Closed, Some(&elsewhere))
            .await
            .expect("settle");
        let decided = Note::Decided {
            action: Action::Approve,
            by: actor.name.clone(),
            at: 2,
            reason: None,
            late: false,
        };

        let settled = store
            .record_decision(
                card.id,
                claim.version,
                Whose {
                    plugin: plugin(),
                    appid: &appid,
                },
                Some(ApplyStatus::Approved),
                &decided,
                Some(AuditResult {
                    attempt: claim.attempt,
                    result: AuditOutcome::Ok,
                    detail: None,
                }),
            )
            .await
            .expect("record");

        assert!(moved);
        assert!(
            !settled,
            "the decision said it settled a card that had moved"
        );
        let after = store.card(card.id).await.expect("read").expect("card");
        assert_eq!(after.note, Some(elsewhere));
        assert_eq!(after.version, claim.version + 1);
        let stored = store
            .applicant(plugin(), &appid)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(
            stored.applicant.status,
            ApplyStatus::Approved,
            "the status is kept"
        );
        let history = store
            .history(Some(plugin()), Some(&appid), 10)
            .await
            .expect("history");
        assert_eq!(history[0].result, AuditOutcome::Ok, "and the audit result");
    }

    #[tokio::test]
    async fn an_approval_is_claimed_only_on_as_many_stored_votes_as_the_quorum() {
        let (store, appid, card) = store_with_a_card().await;
        let (alice, bob) = (
            alice(),
            Actor {
                id: 2,
                name: "@bob".to_owned(),
            },
        );
        let vote = |actor: &Actor| Vote {
            id: actor.id,
            name: actor.name.clone(),
            at: 1,
        };
        let cast = |actor| VoteChange {
            plugin: plugin(),
            appid: &appid,
            actor,
            via: Via::Button,
            withdrawn: false,
        };
        let attempt = Attempt {
            plugin: plugin(),
            appid: &appid,
            action: Action::Approve,
            actor: &bob,
            via: Via::Button,
            reason: None,
        };
        let one = [vote(&alice)];
        assert!(
            store
                .set_votes(card.id, card.version, &one, &cast(&alice))
                .await
                .expect("vote")
        );
        // A vote from a version read before it is refused: Bob must read Alice's first.
        assert!(
            !store
                .set_votes(card.id, card.version, &[vote(&bob)], &cast(&bob))
                .await
                .expect("stale vote"),
            "a vote from an old version was taken"
        );
        let short = store
            .claim_for_decision(card.id, &[CardState::Open], &attempt, 2, None)
            .await
            .expect("claim");
        assert_eq!(short, None, "an approval was claimed on one vote of two");
        let now = store.card(card.id).await.expect("read").expect("card");
        assert_eq!(now.votes, one);
        let two = [vote(&alice), vote(&bob)];
        assert!(
            store
                .set_votes(now.id, now.version, &two, &cast(&bob))
                .await
                .expect("vote")
        );
        let claimed = store
            .claim_for_decision(card.id, &[CardState::Open], &attempt, 2, None)
            .await
            .expect("claim");
        assert!(claimed.is_some(), "two votes of two did not claim");
        // A card being decided takes no more votes (nor withdrawals).
        let deciding = store.card(card.id).await.expect("read").expect("card");
        assert!(
            !store
                .set_votes(deciding.id, deciding.version, &one, &cast(&bob))
                .await
                .expect("late withdrawal"),
            "a vote changed on a card being decided"
        );
        let history = store
            .history(Some(plugin()), Some(&appid), 10)
            .await
            .expect("history");
        let votes = history
            .iter()
            .filter(|e| e.result == AuditOutcome::Vote)
            .count();
        assert_eq!(votes, 2, "each vote is in the audit log: {history:?}");
    }
}
