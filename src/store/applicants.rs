//! Applicants as WeChat last listed them, and the applicant clock that orders what the bot learns
//! of them: a poll writes only over records no newer than the clock reading it took at its start.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Serialize;

use super::sql::{self, Joined};
use super::{Store, StoreError, StoreResult};
use crate::domain::applicant::{AppId, Applicant, ApplyStatus, Category};
use crate::domain::card::Card;
use crate::domain::now_secs;

/// An applicant as stored, with bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredApplicant {
    /// The plugin it applied to (that plugin's AppID).
    pub plugin: AppId,
    /// What WeChat last said.
    pub applicant: Applicant,
    /// Whether it has vanished from WeChat's list.
    pub gone: bool,
    /// The applicant clock's tick when this record was last written.
    pub touched: i64,
    /// The newest decision the bot made on it that took effect, from the audit log: what a
    /// re-applicant's card recalls. Loaded by [`Store::applicant`] only (`None` in lists).
    pub before: Option<crate::domain::audit::HistoryEntry>,
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
    /// The pending applicant that has waited longest, if any.
    pub oldest: Option<Waiting>,
}

/// A pending applicant and since when it waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub appid: String,
    pub nickname: Option<String>,
    /// Applied (WeChat's `create_time`), or first seen when WeChat gave no time (unix seconds).
    pub since: i64,
}

row! {
    /// An `applicants` row as stored.
    pub(super) struct ApplicantRow {
        plugin: String,
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
        let plugin = super::plugin_of(&row.plugin, "applicants")?;
        let categories: Vec<Category> = serde_json::from_str(&row.categories).unwrap_or_default();
        Ok(Self {
            plugin,
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
            before: None,
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
    /// The pending applicant that has waited longest.
    pub(super) struct OldestRow {
        appid: String,
        nickname: Option<String>,
        since: i64,
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
    nickname: Option<Cow<'a, str>>,
    avatar_url: Option<Cow<'a, str>>,
    reason: Option<Cow<'a, str>>,
    apply_url: Option<Cow<'a, str>>,
    applied_at: Option<i64>,
    /// The categories' JSON, stored as text.
    categories: String,
}

/// Writes applicants of `$plugin` with `touched = tick` inside transaction `$tx`; with
/// `only_older`, a record touched after `tick` is left alone. The appids written.
macro_rules! upsert_with {
    ($tx:expr, $plugin:expr, $list:expr, $tick:expr, $only_older:expr) => {{
        let now = now_secs();
        let mut written = HashSet::new();
        for rows in upsert_slices($list) {
            let appids: Vec<String> = sql::applicants::UPSERT
                .query::<DB>()
                .bind(now)
                .bind($tick)
                .bind(rows)
                .bind($only_older)
                .bind($plugin.as_str())
                .fetch_all(&mut *$tx)
                .await?;
            written.extend(appids.iter().filter_map(|appid| AppId::parse(appid).ok()));
        }
        written
    }};
}

impl Store {
    /// Every stored applicant of `plugin`, to warm its poller's view at start.
    pub async fn applicants(&self, plugin: &AppId) -> StoreResult<Vec<StoredApplicant>> {
        on_pool!(self, pool, {
            let rows = sql::applicants::ALL
                .query::<DB>()
                .bind(plugin.as_str())
                .fetch_all(pool)
                .await?;
            rows.into_iter().map(StoredApplicant::try_from).collect()
        })
    }

    /// One stored applicant of `plugin`.
    pub async fn applicant(
        &self,
        plugin: &AppId,
        appid: &AppId,
    ) -> StoreResult<Option<StoredApplicant>> {
        on_pool!(self, pool, {
            let row = sql::applicants::ONE
                .query::<DB>()
                .bind(plugin.as_str())
                .bind(appid.as_str())
                .fetch_optional(pool)
                .await?;
            let Some(mut stored) = row.map(StoredApplicant::try_from).transpose()? else {
                return Ok(None);
            };
            stored.before = self.last_done(plugin, appid).await?;
            Ok(Some(stored))
        })
    }

    /// The applicant clock's reading: a poll takes it before it lists WeChat, and may then write
    /// only over records no newer than it ([`Store::record_listing`]).
    pub async fn clock(&self) -> StoreResult<i64> {
        on_pool!(self, pool, {
            Ok(sql::clock::READ.query::<DB>().fetch_one(pool).await?)
        })
    }

    /// Records what WeChat says about an applicant, learned just now (a re-read after a
    /// decision): it takes the next tick, so no poll that began earlier writes over it.
    pub async fn upsert_applicant(&self, plugin: &AppId, a: &Applicant) -> StoreResult<()> {
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            let tick = tick_with!(&mut *tx);
            upsert_with!(tx, plugin, std::slice::from_ref(a), tick, false);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a listing that began at clock reading `as_of`, in one transaction and one
    /// statement (the first poll of 10,000 applicants must not pay a commit per row). A record
    /// touched after `as_of` (a decision made while the poll was paging) is left as it is.
    /// Returns the appids written: only those may have their cards changed by this poll.
    pub async fn record_listing(
        &self,
        plugin: &AppId,
        list: &[Applicant],
        as_of: i64,
    ) -> StoreResult<HashSet<AppId>> {
        on_pool!(self, pool, {
            if list.is_empty() {
                return Ok(HashSet::new());
            }
            let mut tx = pool.begin().await?;
            let written = upsert_with!(tx, plugin, list, as_of, true);
            tx.commit().await?;
            Ok(written)
        })
    }

    /// Takes the next tick for an applicant whose card now says its outcome is unknown, so only a
    /// listing begun after this moment may settle it.
    pub async fn touch(&self, plugin: &AppId, appid: &AppId) -> StoreResult<()> {
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            let tick = tick_with!(&mut *tx);
            sql::applicants::TOUCH
                .query::<DB>()
                .bind(tick)
                .bind(plugin.as_str())
                .bind(appid.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Marks an applicant as vanished from WeChat's list, as learned just now (a re-read after a
    /// deletion).
    pub async fn mark_gone(&self, plugin: &AppId, appid: &AppId) -> StoreResult<()> {
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            let tick = tick_with!(&mut *tx);
            let _marked = mark_gone_with!(&mut *tx, plugin, appid, tick, None);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Marks an applicant as vanished according to listings begun at clock reading `as_of`,
    /// unless its record is newer. Returns whether it was marked.
    pub async fn mark_gone_as_of(
        &self,
        plugin: &AppId,
        appid: &AppId,
        as_of: i64,
    ) -> StoreResult<bool> {
        on_pool!(self, pool, {
            Ok(mark_gone_with!(pool, plugin, appid, as_of, Some(as_of)))
        })
    }

    /// Listed applicants of every plugin, optionally with one status, by plugin and oldest first,
    /// with their cards in `chat_id`.
    pub async fn applicants_with_cards(
        &self,
        chat_id: i64,
        status: Option<ApplyStatus>,
    ) -> StoreResult<Vec<Listed>> {
        on_pool!(self, pool, {
            let rows = sql::applicants::LISTED_WITH_CARDS
                .query::<DB>()
                .bind(chat_id)
                .bind(status.map(ApplyStatus::code))
                .bind(status.map(ApplyStatus::code))
                .fetch_all(pool)
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
        })
    }

    /// How many rows kept from before plugins were named are not yet named for a plugin.
    pub async fn unnamed_rows(&self) -> StoreResult<i64> {
        on_base!(self, pool, {
            Ok(sql::applicants::UNNAMED
                .query::<DB>()
                .fetch_one(pool)
                .await?)
        })
    }

    /// Gives the rows kept from before plugins were named (an older version's database) to
    /// `plugin`, the one plugin that version served: its applicants (their cards follow) and
    /// its audit log, in one transaction. Returns how many rows it claimed (0 once done). On
    /// the store's own pool whether or not this replica leads: it only names rows that no
    /// statement of this version can read before they are named, and every replica of one
    /// deployment names them alike.
    pub async fn claim_unnamed(&self, plugin: &AppId) -> StoreResult<i64> {
        on_base!(self, pool, {
            let mut tx = pool.begin().await?;
            let unnamed = sql::applicants::UNNAMED
                .query::<DB>()
                .fetch_one(&mut *tx)
                .await?;
            if unnamed > 0 {
                for statement in [
                    &sql::applicants::CLAIM_UNNAMED,
                    &sql::applicants::CLAIM_UNNAMED_AUDIT,
                ] {
                    statement
                        .query::<DB>()
                        .bind(plugin.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(unnamed)
        })
    }

    /// Counts of `plugin`'s applicants for `/status` (live cards: of every plugin in `chat_id`).
    pub async fn counts(&self, plugin: &AppId, chat_id: i64) -> StoreResult<StatusCounts> {
        on_pool!(self, pool, {
            let rows = sql::applicants::COUNT_BY_STATUS
                .query::<DB>()
                .bind(plugin.as_str())
                .fetch_all(pool)
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
                .query::<DB>()
                .bind(chat_id)
                .fetch_one(pool)
                .await?;
            counts.oldest = sql::applicants::OLDEST_PENDING
                .query::<DB>()
                .bind(plugin.as_str())
                .fetch_optional(pool)
                .await?
                .map(|r| Waiting {
                    appid: r.appid,
                    nickname: r.nickname,
                    since: r.since,
                });
            Ok(counts)
        })
    }
}

/// The applicants as the upsert statement reads them: JSON arrays of [`ApplicantJson`], in
/// slices, so a first poll of a large plugin never holds the whole listing as one JSON text
/// (and the database its parse) at once: that peak stayed in the process's resident memory.
///
/// NUL characters are dropped: PostgreSQL's text cannot hold them, and a card never shows one,
/// so both databases keep the same text.
fn upsert_slices(list: &[Applicant]) -> impl Iterator<Item = String> + '_ {
    list.chunks(UPSERT_SLICE).map(|slice| {
        let rows: Vec<ApplicantJson<'_>> = slice
            .iter()
            .map(|a| ApplicantJson {
                appid: a.appid.as_str(),
                status: a.status.code(),
                nickname: a.nickname.as_deref().map(without_nul),
                avatar_url: a.avatar_url.as_deref().map(without_nul),
                reason: a.reason.as_deref().map(without_nul),
                apply_url: a.apply_url.as_deref().map(without_nul),
                applied_at: a.applied_at.map(|t| t.as_second()),
                categories: serde_json::to_string(
                    &a.categories
                        .iter()
                        .map(|c| Category {
                            first: without_nul(&c.first).into_owned(),
                            second: without_nul(&c.second).into_owned(),
                        })
                        .collect::<Vec<_>>(),
                )
                .unwrap_or_else(|_| "[]".into()),
            })
            .collect();
        // Strings and numbers only: encoding cannot fail.
        serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
    })
}

/// `text` without NUL characters.
fn without_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', ""))
    } else {
        Cow::Borrowed(text)
    }
}

/// Applicants written by one upsert statement.
const UPSERT_SLICE: usize = 256;
