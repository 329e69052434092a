//! The leader lease: which of several replicas sharing one database polls WeChat. A replica takes
//! the lease once it has ended, keeps it by renewing, and hands it on at a clean stop; each taking
//! raises the epoch, and on PostgreSQL the leader's writes carry that epoch and are refused once
//! another replica has taken the lease (`migrations-postgres/0002_leader_lease.sql`).

use std::time::Duration;

use super::sql;
use super::{Db, Store, StoreError, StoreResult};

row! {
    /// The lease row, with the database's clock when it was read.
    pub(super) struct LeaseRow {
        epoch: i64,
        holder: Option<String>,
        since_ms: i64,
        expires_ms: i64,
        now_ms: i64,
    }
}

/// The lease as the database holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseState {
    /// Raised by each taking; 0 before the first.
    pub epoch: i64,
    /// The replica holding it, if any (released or never taken: none).
    pub holder: Option<String>,
    /// When the holder took it (unix milliseconds, the database's clock).
    pub since_ms: i64,
    /// When it ends unless renewed.
    pub expires_ms: i64,
    /// The database's clock as it was read.
    pub now_ms: i64,
}

impl LeaseState {
    /// The replica leading now: the holder, while its lease has not ended.
    pub fn leader(&self) -> Option<&str> {
        self.holder
            .as_deref()
            .filter(|_| self.expires_ms >= self.now_ms)
    }
}

/// Most connections a leader's fenced pool keeps (beside the store's own).
const FENCED_CONNECTIONS: u32 = 8;

/// How long a leader's connection may sit in an open transaction: a leader paused mid-transaction
/// would otherwise hold its share lock on the lease row, and no replica could take over.
const IDLE_IN_TRANSACTION: &str = "5s";

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// The lease as it stands.
    pub async fn lease(&self) -> StoreResult<LeaseState> {
        on_base!(self, pool, {
            let r: LeaseRow = sql::lease::READ.query::<DB>().fetch_one(pool).await?;
            Ok(LeaseState {
                epoch: r.epoch,
                holder: r.holder,
                since_ms: r.since_ms,
                expires_ms: r.expires_ms,
                now_ms: r.now_ms,
            })
        })
    }

    /// Takes the lease for `holder` for `length` if it is free or has ended (or, with
    /// `reclaim`, if it is held in `holder`'s own name): the new epoch, or `None` when another
    /// replica holds it.
    pub async fn take_lease(
        &self,
        holder: &str,
        length: Duration,
        reclaim: bool,
    ) -> StoreResult<Option<i64>> {
        on_base!(self, pool, {
            Ok(sql::lease::TAKE
                .query::<DB>()
                .bind(holder)
                .bind(millis(length))
                .bind(reclaim)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Extends the lease of `epoch` by `length` from now; false when another replica has taken
    /// it since.
    pub async fn renew_lease(
        &self,
        holder: &str,
        epoch: i64,
        length: Duration,
    ) -> StoreResult<bool> {
        on_base!(self, pool, {
            let done = sql::lease::RENEW
                .query::<DB>()
                .bind(millis(length))
                .bind(epoch)
                .bind(holder)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Gives the lease of `epoch` up, so a standby takes over without waiting for it to end.
    pub async fn release_lease(&self, holder: &str, epoch: i64) -> StoreResult<()> {
        on_base!(self, pool, {
            sql::lease::RELEASE
                .query::<DB>()
                .bind(epoch)
                .bind(holder)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// From now on this store's writes are fenced by `epoch` (on PostgreSQL: they go through
    /// connections carrying it, which the fence trigger checks; SQLite, one process on one
    /// machine, has nothing to fence).
    pub async fn lead(&self, epoch: i64) -> StoreResult<()> {
        let Db::Postgres(base) = &self.db else {
            return Ok(());
        };
        let options = (*base.connect_options()).clone().options([
            ("wxbot.epoch", epoch.to_string()),
            (
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION.to_owned(),
            ),
        ]);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(FENCED_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);
        let old = self.fenced_slot().replace(pool);
        if let Some(old) = old {
            old.close().await;
        }
        Ok(())
    }

    /// Writes are no longer fenced (the replica no longer leads).
    pub async fn follow(&self) {
        let old = self.fenced_slot().take();
        if let Some(old) = old {
            old.close().await;
        }
    }

    fn fenced_slot(&self) -> std::sync::MutexGuard<'_, Option<sqlx::PgPool>> {
        self.fenced.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StoreError {
    /// Whether the database refused a write because this replica's lease was taken over.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Self::Db(sqlx::Error::Database(e)) if e.code().as_deref() == Some("WXFEN"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_replica_holds_the_lease_until_it_ends_or_is_handed_on() {
        let store = Store::in_memory().await.expect("store");
        let long = Duration::from_secs(60);
        let first = store.take_lease("a", long, false).await.expect("take");
        assert_eq!(first, Some(1), "a free lease is taken, epoch 1");
        assert_eq!(
            store.take_lease("b", long, false).await.expect("take"),
            None
        );
        assert_eq!(
            store.take_lease("a", long, false).await.expect("take"),
            None,
            "not even by its holder, unless it reclaims"
        );
        assert!(store.renew_lease("a", 1, long).await.expect("renew"));
        assert!(!store.renew_lease("b", 1, long).await.expect("renew"));
        let lease = store.lease().await.expect("read");
        assert_eq!(lease.leader(), Some("a"));

        store.release_lease("a", 1).await.expect("release");
        assert_eq!(store.lease().await.expect("read").leader(), None);
        assert_eq!(
            store.take_lease("b", long, false).await.expect("take"),
            Some(2)
        );
        assert!(
            !store.renew_lease("a", 1, long).await.expect("renew"),
            "the old epoch cannot renew"
        );
        assert_eq!(
            store.take_lease("b", long, true).await.expect("take"),
            Some(3),
            "a replica starting again takes back its own lease at once"
        );
    }

    #[tokio::test]
    async fn a_lease_that_was_not_renewed_in_time_may_be_taken() {
        let store = Store::in_memory().await.expect("store");
        let short = Duration::from_millis(50);
        assert_eq!(
            store.take_lease("a", short, false).await.expect("take"),
            Some(1)
        );
        assert_eq!(
            store.take_lease("b", short, false).await.expect("take"),
            None
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(store.lease().await.expect("read").leader(), None);
        assert_eq!(
            store.take_lease("b", short, false).await.expect("take"),
            Some(2)
        );
        assert!(!store.renew_lease("a", 1, short).await.expect("renew"));
    }
}
