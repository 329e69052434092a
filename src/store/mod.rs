//! The bot's memory: applicants as last seen, the card for each, and the audit log, in SQLite
//! through sqlx with versioned migrations (`migrations/`), so nothing is lost across restarts.
//!
//! Every operation that guards a decision is one atomic compare-and-swap that says what it did
//! ([`Store::claim`] returns the new version only to the caller that won; [`Store::settle_card`]
//! writes only over the version it was given). An applicant clock orders what the bot learns of
//! WeChat: a poll writes only over records no newer than its start ([`Store::record_listing`]).

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteExecutor, SqlitePool};

use crate::domain::action::Action;
use crate::domain::applicant::{AppId, Applicant, ApplyStatus, Category};
use crate::domain::audit::{Attempt, AuditResult, HistoryEntry};
use crate::domain::card::{Actor, Card, CardState, Note};
use crate::domain::now_secs;

/// Store failures: the database, or a row that no longer parses.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sqlx failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value is not what this version writes.
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// Which table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Shorthand.
pub type StoreResult<T> = Result<T, StoreError>;

/// An applicant as stored, with bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredApplicant {
    /// What WeChat last said.
    pub applicant: Applicant,
    /// Whether it has vanished from WeChat's list.
    pub gone: bool,
    /// The applicant clock's tick when this record was last written.
    pub touched: i64,
}

/// Counts by status for `/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Pending applicants.
    pub pending: i64,
    /// Approved.
    pub approved: i64,
    /// Refused.
    pub refused: i64,
    /// Timed out.
    pub expired: i64,
    /// Anything else still listed.
    pub other: i64,
    /// Live cards.
    pub cards: i64,
}

/// The SQLite-backed store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if missing) the database at `url` (`sqlite:path.db`) and migrates it.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Checkpoints run from the poller (Store::checkpoint), not inline in whichever commit
            // crosses 1,000 WAL pages: that commit would be a press waiting on an fsync.
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> StoreResult<Self> {
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Copies the WAL into the database without blocking writers (a no-op when nothing new was
    /// written). The poller runs it after each poll, so presses never wait on a checkpoint.
    pub async fn checkpoint(&self) -> StoreResult<()> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- applicants ----

    /// Every stored applicant, to warm the poller's view at start.
    pub async fn applicants(&self) -> StoreResult<Vec<StoredApplicant>> {
        let rows = sqlx::query("SELECT * FROM applicants ORDER BY applied_at DESC, appid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(applicant_from_row).collect()
    }

    /// One stored applicant.
    pub async fn applicant(&self, appid: &AppId) -> StoreResult<Option<StoredApplicant>> {
        let row = sqlx::query("SELECT * FROM applicants WHERE appid = ?")
            .bind(appid.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(applicant_from_row).transpose()
    }

    /// The applicant clock's reading: a poll takes it before it lists WeChat, and may then write
    /// only over records no newer than it ([`Store::record_listing`]).
    pub async fn clock(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT tick FROM clock WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Records what WeChat says about an applicant, learned just now (a re-read after a
    /// decision): it takes the next tick, so no poll that began earlier writes over it.
    pub async fn upsert_applicant(&self, a: &Applicant) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let tick = tick_with(&mut *tx).await?;
        upsert_with(&mut tx, std::slice::from_ref(a), tick, false).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a listing that began at clock reading `as_of`, in one transaction of multi-row
    /// statements (the first poll of 10,000 applicants must not pay a commit per row). A record
    /// touched after `as_of` (a decision made while the poll was paging) is left as it is.
    /// Returns the appids written: only those may have their cards changed by this poll.
    pub async fn record_listing(
        &self,
        list: &[Applicant],
        as_of: i64,
    ) -> StoreResult<HashSet<AppId>> {
        if list.is_empty() {
            return Ok(HashSet::new());
        }
        let mut tx = self.pool.begin().await?;
        let written = upsert_with(&mut tx, list, as_of, true).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Takes the next tick for an applicant whose card now says its outcome is unknown, so only a
    /// listing begun after this moment may settle it.
    pub async fn touch(&self, appid: &AppId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let tick = tick_with(&mut *tx).await?;
        sqlx::query("UPDATE applicants SET touched = ? WHERE appid = ?")
            .bind(tick)
            .bind(appid.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks an applicant as vanished from WeChat's list, as learned just now (a re-read after a
    /// deletion).
    pub async fn mark_gone(&self, appid: &AppId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let tick = tick_with(&mut *tx).await?;
        mark_gone_with(&mut *tx, appid, tick, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks an applicant as vanished according to listings begun at clock reading `as_of`,
    /// unless its record is newer. Returns whether it was marked.
    pub async fn mark_gone_as_of(&self, appid: &AppId, as_of: i64) -> StoreResult<bool> {
        mark_gone_with(&self.pool, appid, as_of, Some(as_of)).await
    }

    /// Listed applicants, optionally with one status, newest first, with their cards in `chat_id`.
    pub async fn applicants_with_cards(
        &self,
        chat_id: i64,
        status: Option<ApplyStatus>,
    ) -> StoreResult<Vec<(StoredApplicant, Option<Card>)>> {
        let rows = sqlx::query(
            "SELECT a.*, c.id AS card_id FROM applicants a
             LEFT JOIN cards c ON c.appid = a.appid AND c.chat_id = ?
             WHERE a.gone = 0 AND (? IS NULL OR a.status = ?)
             ORDER BY a.applied_at DESC, a.appid",
        )
        .bind(chat_id)
        .bind(status.map(ApplyStatus::code))
        .bind(status.map(ApplyStatus::code))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let applicant = applicant_from_row(row)?;
            let card = match row.try_get::<Option<i64>, _>("card_id")? {
                Some(id) => self.card(id).await?,
                None => None,
            };
            out.push((applicant, card));
        }
        Ok(out)
    }

    /// Counts for `/status`.
    pub async fn counts(&self, chat_id: i64) -> StoreResult<StatusCounts> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM applicants WHERE gone = 0 GROUP BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut counts = StatusCounts::default();
        for row in rows {
            let n: i64 = row.try_get("n")?;
            match ApplyStatus::from_code(row.try_get("status")?) {
                ApplyStatus::Pending => counts.pending += n,
                ApplyStatus::Approved => counts.approved += n,
                ApplyStatus::Refused => counts.refused += n,
                ApplyStatus::Expired => counts.expired += n,
                ApplyStatus::Unknown(_) => counts.other += n,
            }
        }
        counts.cards = sqlx::query_scalar(
            "SELECT COUNT(*) FROM cards WHERE chat_id = ? AND message_id IS NOT NULL AND message_gone = 0",
        )
        .bind(chat_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(counts)
    }

    // ---- reminders ----

    /// Cards in `chat_id` of applicants still pending since before `applied_before` (or first
    /// seen then, when WeChat gave no time) and not reminded of since `reminded_before`, oldest
    /// first, with when each began waiting.
    pub async fn due_reminders(
        &self,
        chat_id: i64,
        applied_before: i64,
        reminded_before: i64,
    ) -> StoreResult<Vec<(Card, StoredApplicant, i64)>> {
        let rows = sqlx::query(
            "SELECT c.id AS card_id, COALESCE(a.applied_at, a.first_seen) AS since FROM cards c JOIN applicants a ON a.appid = c.appid
             WHERE c.chat_id = ? AND a.gone = 0 AND a.status = 1
               AND c.state NOT IN ('sending', 'closed')
               AND COALESCE(a.applied_at, a.first_seen) <= ?
               AND (c.reminded_at IS NULL OR c.reminded_at <= ?)
             ORDER BY COALESCE(a.applied_at, a.first_seen), a.appid",
        )
        .bind(chat_id)
        .bind(applied_before)
        .bind(reminded_before)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(card) = self.card(row.try_get("card_id")?).await? else {
                continue;
            };
            if let Some(applicant) = self.applicant(&card.appid).await? {
                out.push((card, applicant, row.try_get("since")?));
            }
        }
        Ok(out)
    }

    /// Records that the chat was reminded of these cards at `at`.
    pub async fn mark_reminded(&self, card_ids: &[i64], at: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for id in card_ids {
            sqlx::query("UPDATE cards SET reminded_at = ? WHERE id = ?")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- cards ----

    /// Starts a card for `appid` in `chat_id`: writes it in state `sending` before anything is
    /// sent. Returns `None` when a card that still stands exists (never two live cards); a closed
    /// card (the applicant is pending again) or a live one whose message a person deleted is
    /// reused for the new message.
    pub async fn begin_card(&self, chat_id: i64, appid: &AppId) -> StoreResult<Option<Card>> {
        let now = now_secs();
        let changed = sqlx::query(
            "INSERT INTO cards (chat_id, appid, state, created_at, updated_at)
             VALUES (?, ?, 'sending', ?, ?)
             ON CONFLICT (chat_id, appid) DO UPDATE SET state = 'sending', message_id = NULL,
                 actor_id = NULL, actor_name = NULL, action = NULL, reason = NULL, note = NULL,
                 prompt_message_id = NULL, message_gone = 0, updated_at = excluded.updated_at
             WHERE cards.state = 'closed'
                OR (cards.message_gone = 1
                    AND cards.state IN ('open', 'choosing_reason', 'awaiting_reason')
                    -- An unknown outcome stays until a listing settles it: no fresh buttons.
                    AND (cards.note IS NULL OR json_extract(cards.note, '$.kind') != 'unknown'))",
        )
        .bind(chat_id)
        .bind(appid.as_str())
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        self.card_for(chat_id, appid).await
    }

    /// Takes back a card written but not sent, for an applicant no longer pending: a card that
    /// never had a message closes; one re-opened for a re-application goes back to closed.
    pub async fn abandon_card(&self, card_id: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE cards SET state = 'closed', version = version + 1, updated_at = ?
             WHERE id = ? AND state = 'sending'",
        )
        .bind(now_secs())
        .bind(card_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the message a card was sent as; the card is now open.
    pub async fn card_sent(&self, card_id: i64, message_id: i32) -> StoreResult<()> {
        sqlx::query(
            "UPDATE cards SET message_id = ?, state = 'open', version = version + 1,
                 shown_version = version + 1, updated_at = ? WHERE id = ? AND state = 'sending'",
        )
        .bind(message_id)
        .bind(now_secs())
        .bind(card_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every card in a chat (the poller reads them in bulk when many applicants changed).
    pub async fn cards(&self, chat_id: i64) -> StoreResult<Vec<Card>> {
        let rows = sqlx::query("SELECT * FROM cards WHERE chat_id = ?")
            .bind(chat_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(card_from_row).collect()
    }

    /// Cards written but never confirmed sent (a failed send or a crash mid-send).
    pub async fn unsent_cards(&self, chat_id: i64) -> StoreResult<Vec<Card>> {
        let rows =
            sqlx::query("SELECT * FROM cards WHERE chat_id = ? AND state = 'sending' ORDER BY id")
                .bind(chat_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(card_from_row).collect()
    }

    /// Cards left mid-decision (a crash between claiming and finishing).
    pub async fn deciding_cards(&self, chat_id: i64) -> StoreResult<Vec<Card>> {
        let rows =
            sqlx::query("SELECT * FROM cards WHERE chat_id = ? AND state = 'deciding' ORDER BY id")
                .bind(chat_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(card_from_row).collect()
    }

    /// Cards whose last decision has an unknown outcome (WeChat's answer was lost and the re-read
    /// failed): the poller settles them from the next listing that began after.
    pub async fn unknown_cards(&self, chat_id: i64) -> StoreResult<Vec<Card>> {
        let rows = sqlx::query(
            "SELECT * FROM cards WHERE chat_id = ? AND state != 'deciding'
               AND json_extract(note, '$.kind') = 'unknown' ORDER BY id",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(card_from_row).collect()
    }

    /// A card by id.
    pub async fn card(&self, id: i64) -> StoreResult<Option<Card>> {
        let row = sqlx::query("SELECT * FROM cards WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(card_from_row).transpose()
    }

    /// The card for an applicant in a chat.
    pub async fn card_for(&self, chat_id: i64, appid: &AppId) -> StoreResult<Option<Card>> {
        let row = sqlx::query("SELECT * FROM cards WHERE chat_id = ? AND appid = ?")
            .bind(chat_id)
            .bind(appid.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(card_from_row).transpose()
    }

    /// The card whose ForceReply prompt is `prompt_message_id`.
    pub async fn card_by_prompt(
        &self,
        chat_id: i64,
        prompt_message_id: i32,
    ) -> StoreResult<Option<Card>> {
        let row = sqlx::query(
            "SELECT * FROM cards WHERE chat_id = ? AND prompt_message_id = ? AND state = 'awaiting_reason'",
        )
        .bind(chat_id)
        .bind(prompt_message_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(card_from_row).transpose()
    }

    /// Ids of the cards waiting for a typed reason.
    pub async fn awaiting_reason_cards(&self, chat_id: i64) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cards WHERE chat_id = ? AND state = 'awaiting_reason'",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Atomically moves a card from one of `from` to `to`, recording who and what. Returns the
    /// card's new version when this caller made the move: of two simultaneous presses, exactly
    /// one gets it.
    pub async fn claim(
        &self,
        card_id: i64,
        from: &[CardState],
        to: CardState,
        actor: &Actor,
        action: Option<Action>,
        reason: Option<&str>,
    ) -> StoreResult<Option<i64>> {
        let claim = Claiming {
            from,
            to,
            actor,
            action,
            reason,
            unless_unknown: false,
        };
        claim_with(&self.pool, card_id, &claim).await
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
        settle_card_with(&self.pool, card_id, version, state, note).await
    }

    /// Ends the reject flow (↩ Cancel): back to `open` from one of `from`, keeping the note, in
    /// one compare-and-swap. Returns whether this caller did it.
    pub async fn cancel_reason(&self, card_id: i64, from: &[CardState]) -> StoreResult<bool> {
        let sql = format!(
            "UPDATE cards SET state = 'open', prompt_message_id = NULL, version = version + 1,
                 updated_at = ? WHERE id = ? AND state IN ({})",
            state_list(from)
        );
        let done = sqlx::query(&sql)
            .bind(now_secs())
            .bind(card_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(done == 1)
    }

    /// Claims a card for a decision and appends the attempt to the audit log in one transaction.
    /// Returns the attempt's id and the card's version as claimed, or `None` when the card was
    /// not in one of `from` (someone else holds it, or it moved on): of simultaneous callers
    /// exactly one gets them.
    pub async fn claim_for_decision(
        &self,
        card_id: i64,
        from: &[CardState],
        attempt: &Attempt<'_>,
    ) -> StoreResult<Option<(i64, i64)>> {
        let mut tx = self.pool.begin().await?;
        // A card whose last outcome is unknown offers no decision: the write may have happened.
        let claim = Claiming {
            from,
            to: CardState::Deciding,
            actor: attempt.actor,
            action: Some(attempt.action),
            reason: attempt.reason,
            unless_unknown: true,
        };
        let Some(version) = claim_with(&mut *tx, card_id, &claim).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let id = attempt_with(&mut *tx, attempt).await?;
        tx.commit().await?;
        Ok(Some((id, version)))
    }

    /// Records a decision WeChat confirmed, in one transaction: the applicant's new status (or
    /// that it is gone) at the next tick, the audit result, and — if the card is still at
    /// `version` — its state and note. Returns whether the card was settled.
    pub async fn record_decision(
        &self,
        card_id: i64,
        version: i64,
        appid: &AppId,
        status: Option<ApplyStatus>,
        note: &Note,
        audit: Option<AuditResult<'_>>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let tick = tick_with(&mut *tx).await?;
        match status {
            Some(status) => {
                sqlx::query(
                    "UPDATE applicants SET status = ?, touched = ?, updated_at = ? WHERE appid = ?",
                )
                .bind(status.code())
                .bind(tick)
                .bind(now_secs())
                .bind(appid.as_str())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                mark_gone_with(&mut *tx, appid, tick, None).await?;
            }
        }
        let settled =
            settle_card_with(&mut *tx, card_id, version, CardState::Closed, Some(note)).await?;
        if let Some(r) = audit {
            result_with(&mut *tx, r.attempt, r.result, None, r.detail).await?;
        }
        tx.commit().await?;
        Ok(settled)
    }

    /// Remembers the ForceReply prompt that asks for a typed reason (only while the card waits
    /// for one).
    pub async fn set_prompt(&self, card_id: i64, prompt_message_id: i32) -> StoreResult<()> {
        sqlx::query(
            "UPDATE cards SET prompt_message_id = ?, updated_at = ?
             WHERE id = ? AND state = 'awaiting_reason'",
        )
        .bind(prompt_message_id)
        .bind(now_secs())
        .bind(card_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that the message now shows `version` of the card.
    pub async fn card_shown(&self, card_id: i64, version: i64) -> StoreResult<()> {
        sqlx::query("UPDATE cards SET shown_version = MAX(shown_version, ?) WHERE id = ?")
            .bind(version)
            .bind(card_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Cards whose message shows an older state than the store holds (an edit a crash or a
    /// Telegram failure swallowed).
    pub async fn stale_cards(&self, chat_id: i64) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cards WHERE chat_id = ? AND message_id IS NOT NULL AND message_gone = 0
               AND state != 'deciding' AND shown_version < version ORDER BY id",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that a person deleted the card's message; it is not edited again.
    pub async fn mark_message_gone(&self, card_id: i64) -> StoreResult<()> {
        sqlx::query("UPDATE cards SET message_gone = 1, updated_at = ? WHERE id = ?")
            .bind(now_secs())
            .bind(card_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- audit ----

    /// Appends a decision attempt before WeChat is called; returns its id.
    pub async fn audit_attempt(&self, attempt: &Attempt<'_>) -> StoreResult<i64> {
        attempt_with(&self.pool, attempt).await
    }

    /// Appends the result of attempt `attempt_id`.
    pub async fn audit_result(
        &self,
        attempt_id: i64,
        result: &str,
        errcode: Option<i64>,
        detail: Option<&str>,
    ) -> StoreResult<()> {
        result_with(&self.pool, attempt_id, result, errcode, detail).await
    }

    /// The open attempt on `appid` with no result yet (a crash mid-decision), if any.
    pub async fn open_attempt(&self, appid: &AppId) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT a.id FROM audit a WHERE a.appid = ? AND a.attempt_id IS NULL
               AND NOT EXISTS (SELECT 1 FROM audit r WHERE r.attempt_id = a.id)
             ORDER BY a.id DESC LIMIT 1",
        )
        .bind(appid.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// When attempt `id` was made (unix seconds).
    pub async fn attempt_at(&self, id: i64) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT at FROM audit WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The latest attempt on `appid`, whatever its results.
    pub async fn last_attempt(&self, appid: &AppId) -> StoreResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT MAX(id) FROM audit WHERE appid = ? AND attempt_id IS NULL")
                .bind(appid.as_str())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Attempts with their latest result, newest first.
    pub async fn history(
        &self,
        appid: Option<&AppId>,
        limit: i64,
    ) -> StoreResult<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT a.at, a.appid, a.action, a.actor_name, a.via, a.reason,
                    COALESCE(r.result, 'in-flight') AS result, r.errcode, r.detail
             FROM audit a
             LEFT JOIN audit r ON r.id = (SELECT MAX(id) FROM audit WHERE attempt_id = a.id)
             WHERE a.attempt_id IS NULL AND (? IS NULL OR a.appid = ?)
             ORDER BY a.id DESC LIMIT ?",
        )
        .bind(appid.map(AppId::as_str))
        .bind(appid.map(AppId::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    at: r.try_get("at")?,
                    appid: r.try_get("appid")?,
                    action: r.try_get("action")?,
                    actor_name: r.try_get("actor_name")?,
                    via: r.try_get("via")?,
                    reason: r.try_get("reason")?,
                    result: r.try_get("result")?,
                    errcode: r.try_get("errcode")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Every audit row for `appid`, oldest first (attempts and results), for tests and exports.
    pub async fn audit_rows(
        &self,
        appid: &AppId,
    ) -> StoreResult<Vec<(String, String, Option<i64>)>> {
        let rows =
            sqlx::query("SELECT action, result, errcode FROM audit WHERE appid = ? ORDER BY id")
                .bind(appid.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("action")?,
                    r.try_get("result")?,
                    r.try_get("errcode")?,
                ))
            })
            .collect()
    }
}

// The statements behind the store's operations, over any executor, so a transaction can group
// several of them (a decision's records) and a single call can run one on the pool.

fn state_list(states: &[CardState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Takes the next tick of the applicant clock.
async fn tick_with<'e>(e: impl SqliteExecutor<'e>) -> StoreResult<i64> {
    Ok(
        sqlx::query_scalar("UPDATE clock SET tick = tick + 1 WHERE id = 1 RETURNING tick")
            .fetch_one(e)
            .await?,
    )
}

/// Writes applicants with `touched = tick`; with `only_older`, a record touched after `tick` is
/// left alone. Returns the appids written.
async fn upsert_with(
    tx: &mut sqlx::SqliteConnection,
    list: &[Applicant],
    tick: i64,
    only_older: bool,
) -> StoreResult<HashSet<AppId>> {
    /// Rows per statement: 12 parameters each stays far below SQLite's parameter limit.
    const ROWS: usize = 64;
    let now = now_secs();
    let guard = if only_older {
        "WHERE applicants.touched <= excluded.touched"
    } else {
        ""
    };
    let mut written = HashSet::with_capacity(list.len());
    for chunk in list.chunks(ROWS) {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO applicants (appid, status, nickname, avatar_url, reason, apply_url,
                 applied_at, categories, first_seen, updated_at, gone, touched)
             VALUES {values}
             ON CONFLICT (appid) DO UPDATE SET status = excluded.status,
                 nickname = excluded.nickname, avatar_url = excluded.avatar_url,
                 reason = excluded.reason, apply_url = excluded.apply_url,
                 applied_at = excluded.applied_at, categories = excluded.categories,
                 updated_at = excluded.updated_at, gone = 0, touched = excluded.touched
             {guard}
             RETURNING appid"
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for a in chunk {
            let categories = serde_json::to_string(&a.categories).unwrap_or_else(|_| "[]".into());
            query = query
                .bind(a.appid.as_str())
                .bind(a.status.code())
                .bind(&a.nickname)
                .bind(&a.avatar_url)
                .bind(&a.reason)
                .bind(&a.apply_url)
                .bind(a.applied_at.map(|t| t.as_second()))
                .bind(categories)
                .bind(now)
                .bind(now)
                .bind(tick);
        }
        for appid in query.fetch_all(&mut *tx).await? {
            if let Ok(appid) = AppId::parse(&appid) {
                written.insert(appid);
            }
        }
    }
    Ok(written)
}

/// Marks an applicant gone with `touched = tick`; with `as_of`, only if its record is no newer.
async fn mark_gone_with<'e>(
    e: impl SqliteExecutor<'e>,
    appid: &AppId,
    tick: i64,
    as_of: Option<i64>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE applicants SET gone = 1, touched = ?, updated_at = ?
         WHERE appid = ? AND (? IS NULL OR touched <= ?)",
    )
    .bind(tick)
    .bind(now_secs())
    .bind(appid.as_str())
    .bind(as_of)
    .bind(as_of)
    .execute(e)
    .await?
    .rows_affected();
    Ok(done == 1)
}

async fn settle_card_with<'e>(
    e: impl SqliteExecutor<'e>,
    card_id: i64,
    version: i64,
    state: CardState,
    note: Option<&Note>,
) -> StoreResult<bool> {
    let note = note.and_then(|n| serde_json::to_string(n).ok());
    let done = sqlx::query(
        "UPDATE cards SET state = ?, note = ?, prompt_message_id = NULL, version = version + 1,
             updated_at = ? WHERE id = ? AND version = ?",
    )
    .bind(state.as_str())
    .bind(note)
    .bind(now_secs())
    .bind(card_id)
    .bind(version)
    .execute(e)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// A claim's compare-and-swap: from one of `from` to `to`, recording who and what.
struct Claiming<'a> {
    from: &'a [CardState],
    to: CardState,
    actor: &'a Actor,
    action: Option<Action>,
    reason: Option<&'a str>,
    unless_unknown: bool,
}

async fn claim_with<'e>(
    e: impl SqliteExecutor<'e>,
    card_id: i64,
    claim: &Claiming<'_>,
) -> StoreResult<Option<i64>> {
    let unknown = if claim.unless_unknown {
        "AND (note IS NULL OR json_extract(note, '$.kind') != 'unknown')"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE cards SET state = ?, actor_id = ?, actor_name = ?, action = ?, reason = ?,
             version = version + 1, updated_at = ? WHERE id = ? AND state IN ({}) {unknown}
         RETURNING version",
        state_list(claim.from)
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(claim.to.as_str())
        .bind(claim.actor.id as i64)
        .bind(&claim.actor.name)
        .bind(claim.action.map(Action::as_str))
        .bind(claim.reason)
        .bind(now_secs())
        .bind(card_id)
        .fetch_optional(e)
        .await?)
}

async fn attempt_with<'e>(e: impl SqliteExecutor<'e>, attempt: &Attempt<'_>) -> StoreResult<i64> {
    let id = sqlx::query(
        "INSERT INTO audit (at, appid, action, actor_id, actor_name, via, reason, result)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'attempt')",
    )
    .bind(now_secs())
    .bind(attempt.appid.as_str())
    .bind(attempt.action.as_str())
    .bind(attempt.actor.id as i64)
    .bind(&attempt.actor.name)
    .bind(attempt.via)
    .bind(attempt.reason)
    .execute(e)
    .await?
    .last_insert_rowid();
    Ok(id)
}

async fn result_with<'e>(
    e: impl SqliteExecutor<'e>,
    attempt_id: i64,
    result: &str,
    errcode: Option<i64>,
    detail: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit (at, appid, action, actor_id, actor_name, via, reason, result, errcode, detail, attempt_id)
         SELECT ?, appid, action, actor_id, actor_name, via, reason, ?, ?, ?, id FROM audit WHERE id = ?",
    )
    .bind(now_secs())
    .bind(result)
    .bind(errcode)
    .bind(detail)
    .bind(attempt_id)
    .execute(e)
    .await?;
    Ok(())
}

fn applicant_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<StoredApplicant> {
    let raw_appid: String = row.try_get("appid")?;
    let appid = AppId::parse(&raw_appid).map_err(|e| StoreError::Corrupt {
        table: "applicants",
        detail: format!("appid {raw_appid:?}: {e}"),
    })?;
    let categories: String = row.try_get("categories")?;
    let categories: Vec<Category> = serde_json::from_str(&categories).unwrap_or_default();
    Ok(StoredApplicant {
        applicant: Applicant {
            appid,
            status: ApplyStatus::from_code(row.try_get("status")?),
            nickname: row.try_get("nickname")?,
            avatar_url: row.try_get("avatar_url")?,
            reason: row.try_get("reason")?,
            apply_url: row.try_get("apply_url")?,
            applied_at: row
                .try_get::<Option<i64>, _>("applied_at")?
                .and_then(|s| jiff::Timestamp::from_second(s).ok()),
            categories,
        },
        gone: row.try_get::<i64, _>("gone")? != 0,
        touched: row.try_get("touched")?,
    })
}

fn card_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Card> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "cards",
        detail,
    };
    let raw_appid: String = row.try_get("appid")?;
    let appid =
        AppId::parse(&raw_appid).map_err(|e| corrupt(format!("appid {raw_appid:?}: {e}")))?;
    let raw_state: String = row.try_get("state")?;
    let state =
        CardState::parse(&raw_state).ok_or_else(|| corrupt(format!("state {raw_state:?}")))?;
    let actor = match (
        row.try_get::<Option<i64>, _>("actor_id")?,
        row.try_get::<Option<String>, _>("actor_name")?,
    ) {
        (Some(id), Some(name)) => Some(Actor {
            id: id as u64,
            name,
        }),
        _ => None,
    };
    let action = row
        .try_get::<Option<String>, _>("action")?
        .and_then(|a| Action::parse(&a));
    let note = row
        .try_get::<Option<String>, _>("note")?
        .and_then(|n| serde_json::from_str::<Note>(&n).ok());
    Ok(Card {
        id: row.try_get("id")?,
        chat_id: row.try_get("chat_id")?,
        appid,
        message_id: row.try_get("message_id")?,
        state,
        actor,
        action,
        reason: row.try_get("reason")?,
        note,
        prompt_message_id: row.try_get("prompt_message_id")?,
        message_gone: row.try_get::<i64, _>("message_gone")? != 0,
        version: row.try_get("version")?,
    })
}
