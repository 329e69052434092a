//! The authorizer's refresh token of a third-party platform calling for the plugin's owner:
//! WeChat may return a new one with every authorizer token, and only the newest is sure to work,
//! so it is kept here, across restarts and for every replica.

use super::sql;
use super::{Store, StoreResult};
use crate::domain::now_secs;

row! {
    /// A kept refresh token and the configured value it descends from.
    pub(super) struct AuthorizerRow {
        configured: String,
        refresh_token: String,
    }
}

impl Store {
    /// The refresh token to use for `authorizer_appid`: the kept one, unless `configured` is not
    /// the configured value it descends from (an operator set a new one after the owner
    /// authorized again) — then `configured` is kept, and returned.
    pub async fn authorizer_refresh_token(
        &self,
        authorizer_appid: &str,
        configured: &str,
    ) -> StoreResult<String> {
        on_pool!(self, pool, {
            let kept: Option<AuthorizerRow> = sql::authorizers::READ
                .query::<DB>()
                .bind(authorizer_appid)
                .fetch_optional(pool)
                .await?;
            match kept {
                Some(row) if row.configured == configured => Ok(row.refresh_token),
                _ => {
                    sql::authorizers::TAKE_CONFIGURED
                        .query::<DB>()
                        .bind(authorizer_appid)
                        .bind(configured)
                        .bind(now_secs())
                        .execute(pool)
                        .await?;
                    Ok(configured.to_owned())
                }
            }
        })
    }

    /// Keeps `refresh_token`, the one WeChat returned last, for `authorizer_appid`.
    pub async fn keep_refresh_token(
        &self,
        authorizer_appid: &str,
        refresh_token: &str,
    ) -> StoreResult<()> {
        on_pool!(self, pool, {
            sql::authorizers::KEEP
                .query::<DB>()
                .bind(refresh_token)
                .bind(now_secs())
                .bind(authorizer_appid)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
