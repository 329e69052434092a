//! Applicants as WeChat last listed them, and the applicant clock that orders what the bot learns
//! of them: a poll writes only over records no newer than the clock reading it took at its start.

use std::collections::HashSet;

use serde::Serialize;
use sqlx::{SqliteConnection, SqliteExecutor};

use super::sql::{self, Joined};
use super::{Store, StoreError, StoreResult};
use crate::domain::applicant::{AppId, Applicant, ApplyStatus, Category};
use crate::domain::card::Card;
use crate::domain::now_secs;

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

/// A listed applicant with its card in the chat asked about, for `/pending` and `/list`.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub applicant: StoredApplicant,
    /// `None` when no card was ever posted for it in that chat.
    pub card: Option<Card>,
}

/// Counts by status for `/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub pending: i64,
    pub approved: i64,
    pub refused: i64,
    /// Timed out.
    pub expired: i64,
    /// Anything else still listed.
    pub other: i64,
    /// Live cards: sent, and their message not deleted.
    pub cards: i64,
}

row! {
    /// An `applicants` row as stored.
    pub(super) struct ApplicantRow {
        appid: String,
        status: i64,
        nickname: Option<String>,
        avatar_url: Option<String>,
        reason: Option<String>,
        apply_url: Option<String>,
        applied_at: Option<i64>,
        categories: String,
        gone: bool,
        touched: i64,
    }
}

impl TryFrom<ApplicantRow> for StoredApplicant {
    type Error = StoreError;

    fn try_from(row: ApplicantRow) -> StoreResult<Self> {
        let appid = AppId::parse(&row.appid).map_err(|e| StoreError::Corrupt {
            table: "applicants",
            detail: format!("appid {:?}: {e}", row.appid),
        })?;
        let categories: Vec<Category> = serde_json::from_str(&row.categories).unwrap_or_default();
        Ok(Self {
            applicant: Applicant {
                appid,
                status: ApplyStatus::from_code(row.status),
                nickname: row.nickname,
                avatar_url: row.avatar_url,
                reason: row.reason,
                apply_url: row.apply_url,
                applied_at: row
                    .applied_at
                    .and_then(|s| jiff::Timestamp::from_second(s).ok()),
                categories,
            },
            gone: row.gone,
            touched: row.touched,
        })
    }
}

row! {
    /// The id of the card joined to a row, if any.
    pub(super) struct CardRef {
        card_id: Option<i64>,
    }
}

row! {
    /// How many listed applicants have one status.
    pub(super) struct StatusCount {
        status: i64,
        n: i64,
    }
}

/// An applicant as the upsert statement reads it from its JSON array.
#[derive(Serialize)]
struct ApplicantJson<'a> {
    appid: &'a str,
    status: i64,
    nickname: Option<&'a str>,
    avatar_url: Option<&'a str>,
    reason: Option<&'a str>,
    apply_url: Option<&'a str>,
    applied_at: Option<i64>,
    /// The categories' JSON, stored as text.
    categories: String,
}

impl Store {
    /// Every stored applicant, to warm the poller's view at start.
    pub async fn applicants(&self) -> StoreResult<Vec<StoredApplicant>> {
        let rows = sql::applicants::ALL.query().fetch_all(&self.pool).await?;
        rows.into_iter().map(StoredApplicant::try_from).collect()
    }

    /// One stored applicant.
    pub async fn applicant(&self, appid: &AppId) -> StoreResult<Option<StoredApplicant>> {
        let row = sql::applicants::ONE
            .query()
            .bind(appid.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(StoredApplicant::try_from).transpose()
    }

    /// The applicant clock's reading: a poll takes it before it lists WeChat, and may then write
    /// only over records no newer than it ([`Store::record_listing`]).
    pub async fn clock(&self) -> StoreResult<i64> {
        Ok(sql::clock::READ.query().fetch_one(&self.pool).await?)
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

    /// Records a listing that began at clock reading `as_of`, in one transaction and one
    /// statement (the first poll of 10,000 applicants must not pay a commit per row). A record
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
        sql::applicants::TOUCH
            .query()
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
    ) -> StoreResult<Vec<Listed>> {
        let rows = sql::applicants::LISTED_WITH_CARDS
            .query()
            .bind(chat_id)
            .bind(status.map(ApplyStatus::code))
            .bind(status.map(ApplyStatus::code))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for Joined(applicant, card) in rows {
            let card = match card.card_id {
                Some(id) => self.card(id).await?,
                None => None,
            };
            out.push(Listed {
                applicant: applicant.try_into()?,
                card,
            });
        }
        Ok(out)
    }

    /// Counts for `/status`.
    pub async fn counts(&self, chat_id: i64) -> StoreResult<StatusCounts> {
        let rows = sql::applicants::COUNT_BY_STATUS
            .query()
            .fetch_all(&self.pool)
            .await?;
        let mut counts = StatusCounts::default();
        for StatusCount { status, n } in rows {
            match ApplyStatus::from_code(status) {
                ApplyStatus::Pending => counts.pending += n,
                ApplyStatus::Approved => counts.approved += n,
                ApplyStatus::Refused => counts.refused += n,
                ApplyStatus::Expired => counts.expired += n,
                ApplyStatus::Unknown(_) => counts.other += n,
            }
        }
        counts.cards = sql::cards::COUNT_LIVE
            .query()
            .bind(chat_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(counts)
    }
}

/// Takes the next tick of the applicant clock.
pub(super) async fn tick_with<'e>(e: impl SqliteExecutor<'e>) -> StoreResult<i64> {
    Ok(sql::clock::TICK.query().fetch_one(e).await?)
}

/// Writes applicants with `touched = tick`; with `only_older`, a record touched after `tick` is
/// left alone. Returns the appids written.
async fn upsert_with(
    tx: &mut SqliteConnection,
    list: &[Applicant],
    tick: i64,
    only_older: bool,
) -> StoreResult<HashSet<AppId>> {
    let now = now_secs();
    let mut written = HashSet::new();
    // In slices, so a first poll of a large plugin never holds the whole listing as one JSON
    // text (and SQLite its parse) at once: that peak stayed in the process's resident memory.
    for slice in list.chunks(UPSERT_SLICE) {
        let rows: Vec<ApplicantJson<'_>> = slice
            .iter()
            .map(|a| ApplicantJson {
                appid: a.appid.as_str(),
                status: a.status.code(),
                nickname: a.nickname.as_deref(),
                avatar_url: a.avatar_url.as_deref(),
                reason: a.reason.as_deref(),
                apply_url: a.apply_url.as_deref(),
                applied_at: a.applied_at.map(|t| t.as_second()),
                categories: serde_json::to_string(&a.categories).unwrap_or_else(|_| "[]".into()),
            })
            .collect();
        // Strings and numbers only: encoding cannot fail.
        let rows = serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into());
        let appids = sql::applicants::UPSERT
            .query()
            .bind(now)
            .bind(tick)
            .bind(rows)
            .bind(only_older)
            .fetch_all(&mut *tx)
            .await?;
        written.extend(appids.iter().filter_map(|appid| AppId::parse(appid).ok()));
    }
    Ok(written)
}

/// Applicants written by one upsert statement.
const UPSERT_SLICE: usize = 256;

/// Marks an applicant gone with `touched = tick`; with `as_of`, only if its record is no newer.
pub(super) async fn mark_gone_with<'e>(
    e: impl SqliteExecutor<'e>,
    appid: &AppId,
    tick: i64,
    as_of: Option<i64>,
) -> StoreResult<bool> {
    let done = sql::applicants::MARK_GONE
        .query()
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
