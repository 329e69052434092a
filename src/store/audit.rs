//! The audit log: append-only, an attempt row before WeChat is called and a result row for each
//! thing learned of it after, so a crash mid-decision leaves an attempt without a result.

use super::sql;
use super::{Store, StoreResult};
use crate::domain::action::{Action, Via};
use crate::domain::applicant::AppId;
use crate::domain::audit::{Attempt, AuditOutcome, HistoryEntry};

row! {
    /// An attempt with its latest result.
    pub(super) struct HistoryRow {
        at: i64,
        plugin: String,
        appid: String,
        action: Action,
        actor_name: Option<String>,
        via: Via,
        reason: Option<String>,
        result: AuditOutcome,
        errcode: Option<i64>,
        detail: Option<String>,
    }
}

impl From<HistoryRow> for HistoryEntry {
    fn from(r: HistoryRow) -> Self {
        Self {
            at: r.at,
            plugin: r.plugin,
            appid: r.appid,
            action: r.action,
            actor_name: r.actor_name,
            via: r.via,
            reason: r.reason,
            result: r.result,
            errcode: r.errcode,
            detail: r.detail,
        }
    }
}

impl Store {
    /// Appends a decision attempt before WeChat is called; returns its id.
    pub async fn audit_attempt(&self, attempt: &Attempt<'_>) -> StoreResult<i64> {
        on_pool!(self, pool, { Ok(attempt_with!(pool, attempt)) })
    }

    /// Appends the result of attempt `attempt_id`.
    pub async fn audit_result(
        &self,
        attempt_id: i64,
        result: AuditOutcome,
        errcode: Option<i64>,
        detail: Option<&str>,
    ) -> StoreResult<()> {
        on_pool!(self, pool, {
            result_with!(pool, attempt_id, result, errcode, detail);
            Ok(())
        })
    }

    /// The open attempt on `appid` with no result yet (a crash mid-decision), if any.
    pub async fn open_attempt(&self, plugin: &AppId, appid: &AppId) -> StoreResult<Option<i64>> {
        on_pool!(self, pool, {
            Ok(sql::audit::OPEN_ATTEMPT
                .query::<DB>()
                .bind(plugin.as_str())
                .bind(appid.as_str())
                .fetch_optional(pool)
                .await?)
        })
    }

    /// When attempt `id` was made (unix seconds).
    pub async fn attempt_at(&self, id: i64) -> StoreResult<Option<i64>> {
        on_pool!(self, pool, {
            Ok(sql::audit::ATTEMPT_AT
                .query::<DB>()
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// The latest attempt on `appid`, whatever its results.
    pub async fn last_attempt(&self, plugin: &AppId, appid: &AppId) -> StoreResult<Option<i64>> {
        on_pool!(self, pool, {
            Ok(sql::audit::LAST_ATTEMPT
                .query::<DB>()
                .bind(plugin.as_str())
                .bind(appid.as_str())
                .fetch_one(pool)
                .await?)
        })
    }

    /// The newest decision on `appid` that took effect (its latest result is `ok`), if any.
    pub async fn last_done(
        &self,
        plugin: &AppId,
        appid: &AppId,
    ) -> StoreResult<Option<HistoryEntry>> {
        on_pool!(self, pool, {
            let row = sql::audit::LAST_DONE
                .query::<DB>()
                .bind(plugin.as_str())
                .bind(appid.as_str())
                .fetch_optional(pool)
                .await?;
            Ok(row.map(HistoryEntry::from))
        })
    }

    /// Attempts with their latest result, newest first: of one plugin or all, of one applicant
    /// or all.
    pub async fn history(
        &self,
        plugin: Option<&AppId>,
        appid: Option<&AppId>,
        limit: i64,
    ) -> StoreResult<Vec<HistoryEntry>> {
        on_pool!(self, pool, {
            let rows = sql::audit::HISTORY
                .query::<DB>()
                .bind(plugin.map(AppId::as_str))
                .bind(plugin.map(AppId::as_str))
                .bind(appid.map(AppId::as_str))
                .bind(appid.map(AppId::as_str))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(HistoryEntry::from).collect())
        })
    }
}
