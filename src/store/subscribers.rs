//! Subscribers: approvers who asked, in a private chat with the bot, for a direct message on each
//! new card and each escalation; one who blocked the bot is recorded once and skipped after.

use super::sql;
use super::{Store, StoreResult};
use crate::domain::now_secs;

row! {
    /// A subscriber as the notifier needs it.
    pub(super) struct SubscriberRow {
        user_id: i64,
        name: String,
    }
}

/// An approver who gets direct messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    /// Telegram user id, which is also their private chat's id.
    pub user_id: i64,
    /// As they were named when they subscribed.
    pub name: String,
}

impl Store {
    /// Subscribes `user_id` (again: a user recorded as having blocked the bot starts afresh).
    pub async fn subscribe(&self, user_id: i64, name: &str) -> StoreResult<()> {
        on_pool!(self, pool, {
            sql::subscribers::SUBSCRIBE
                .query::<DB>()
                .bind(user_id)
                .bind(name)
                .bind(now_secs())
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Unsubscribes `user_id`; whether they were subscribed.
    pub async fn unsubscribe(&self, user_id: i64) -> StoreResult<bool> {
        on_pool!(self, pool, {
            Ok(sql::subscribers::UNSUBSCRIBE
                .query::<DB>()
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected()
                > 0)
        })
    }

    /// Subscribers to message: everyone who has not blocked the bot.
    pub async fn subscribers(&self) -> StoreResult<Vec<Subscriber>> {
        on_pool!(self, pool, {
            let rows: Vec<SubscriberRow> = sql::subscribers::ACTIVE
                .query::<DB>()
                .fetch_all(pool)
                .await?;
            Ok(rows
                .into_iter()
                .map(|r| Subscriber {
                    user_id: r.user_id,
                    name: r.name,
                })
                .collect())
        })
    }

    /// Records that `user_id` blocked the bot; whether this was the first time.
    pub async fn mark_blocked(&self, user_id: i64) -> StoreResult<bool> {
        on_pool!(self, pool, {
            Ok(sql::subscribers::BLOCKED
                .query::<DB>()
                .bind(now_secs())
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected()
                == 1)
        })
    }
}
