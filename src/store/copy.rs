//! Moving a team's state from its SQLite database into an empty PostgreSQL one (`migrate-db`):
//! every applicant, card and audit row with its own id, and the applicant clock, in one
//! PostgreSQL transaction, so the target ends either with everything or with nothing.

use std::str::FromStr;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{Store, StoreError, StoreResult, sql, without_password};
use crate::report::one_line;

row! {
    /// Every column of a kept refresh token.
    pub(super) struct AuthorizerCopy {
        authorizer_appid: String,
        configured: String,
        refresh_token: String,
        updated_at: i64,
    }
}

row! {
    /// Every column of an applicant, as stored.
    pub(super) struct ApplicantCopy {
        plugin: String,
        appid: String,
        status: i64,
        nickname: Option<String>,
        avatar_url: Option<String>,
        reason: Option<String>,
        apply_url: Option<String>,
        applied_at: Option<i64>,
        categories: String,
        first_seen: i64,
        updated_at: i64,
        gone: bool,
        touched: i64,
    }
}

row! {
    /// Every column of a card, as stored (states and actions as their stored names).
    pub(super) struct CardCopy {
        id: i64,
        chat_id: i64,
        plugin: String,
        appid: String,
        message_id: Option<i32>,
        state: String,
        actor_id: Option<i64>,
        actor_name: Option<String>,
        action: Option<String>,
        reason: Option<String>,
        note: Option<String>,
        prompt_message_id: Option<i32>,
        message_gone: bool,
        created_at: i64,
        updated_at: i64,
        version: i64,
        shown_version: i64,
        reminded_at: Option<i64>,
        previous_message_id: Option<i32>,
        moved: Option<String>,
        votes: String,
        due_at: Option<i64>,
        resumed: bool,
        escalated_at: Option<i64>,
    }
}

row! {
    /// Every column of a subscriber, as stored.
    pub(super) struct SubscriberCopy {
        user_id: i64,
        name: String,
        subscribed_at: i64,
        blocked_at: Option<i64>,
    }
}

row! {
    /// Every column of an audit row, as stored.
    pub(super) struct AuditCopy {
        id: i64,
        at: i64,
        plugin: String,
        appid: String,
        action: String,
        actor_id: Option<i64>,
        actor_name: Option<String>,
        via: String,
        reason: Option<String>,
        result: String,
        errcode: Option<i64>,
        detail: Option<String>,
        attempt_id: Option<i64>,
    }
}

/// What a copy moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Applicants.
    pub applicants: usize,
    /// Cards (live ones keep their message ids, so their buttons keep working).
    pub cards: usize,
    /// Audit rows.
    pub audit: usize,
    /// Approvers subscribed to direct messages.
    pub subscribers: usize,
    /// Third-party platforms' kept refresh tokens.
    pub authorizers: usize,
    /// The applicant clock.
    pub tick: i64,
}

impl Store {
    /// Copies everything this store holds into the PostgreSQL database at `url`, which gets this
    /// version's schema first and must hold nothing yet (a non-empty target is refused and left
    /// as it was). One PostgreSQL transaction: a failure part-way leaves the target empty. The
    /// SQLite side is only read. Run it with the bot stopped, or rows written meanwhile are not
    /// copied.
    pub async fn copy_to_postgres(&self, url: &str) -> StoreResult<Copied> {
        let target = connect(url, 2).await?;
        let result = self.copy_into(&target, url).await;
        target.close().await;
        result
    }

    async fn copy_into(&self, target: &PgPool, url: &str) -> StoreResult<Copied> {
        on_pool!(self, pool, {
            sqlx::migrate!("./migrations-postgres").run(target).await?;
            let problems = sql::postgres_schema_problems(target).await;
            if !problems.is_empty() {
                return Err(StoreError::Schema(problems.join("; ")));
            }
            // Read everything first, in one transaction: one consistent moment.
            let mut source = pool.begin().await?;
            let applicants = sql::copy::APPLICANTS
                .query::<DB>()
                .fetch_all(&mut *source)
                .await?;
            let cards = sql::copy::CARDS
                .query::<DB>()
                .fetch_all(&mut *source)
                .await?;
            let audit = sql::copy::AUDIT
                .query::<DB>()
                .fetch_all(&mut *source)
                .await?;
            let subscribers = sql::copy::SUBSCRIBERS
                .query::<DB>()
                .fetch_all(&mut *source)
                .await?;
            let authorizers = sql::copy::AUTHORIZERS
                .query::<DB>()
                .fetch_all(&mut *source)
                .await?;
            let tick = sql::clock::READ
                .query::<DB>()
                .fetch_one(&mut *source)
                .await?;
            source.rollback().await?;

            let mut tx = target.begin().await?;
            let held = sql::copy::ROWS
                .query::<Postgres>()
                .fetch_one(&mut *tx)
                .await?;
            if held != 0 {
                return Err(StoreError::NotEmpty {
                    url: without_password(url),
                    rows: held,
                });
            }
            for a in &applicants {
                sql::copy::PUT_APPLICANT
                    .query::<Postgres>()
                    .bind(&a.plugin)
                    .bind(&a.appid)
                    .bind(a.status)
                    .bind(&a.nickname)
                    .bind(&a.avatar_url)
                    .bind(&a.reason)
                    .bind(&a.apply_url)
                    .bind(a.applied_at)
                    .bind(&a.categories)
                    .bind(a.first_seen)
                    .bind(a.updated_at)
                    .bind(a.gone)
                    .bind(a.touched)
                    .execute(&mut *tx)
                    .await?;
            }
            for c in &cards {
                sql::copy::PUT_CARD
                    .query::<Postgres>()
                    .bind(c.id)
                    .bind(c.chat_id)
                    .bind(&c.plugin)
                    .bind(&c.appid)
                    .bind(c.message_id)
                    .bind(&c.state)
                    .bind(c.actor_id)
                    .bind(&c.actor_name)
                    .bind(&c.action)
                    .bind(&c.reason)
                    .bind(&c.note)
                    .bind(c.prompt_message_id)
                    .bind(c.message_gone)
                    .bind(c.created_at)
                    .bind(c.updated_at)
                    .bind(c.version)
                    .bind(c.shown_version)
                    .bind(c.reminded_at)
                    .bind(c.previous_message_id)
                    .bind(&c.moved)
                    .bind(&c.votes)
                    .bind(c.due_at)
                    .bind(c.resumed)
                    .bind(c.escalated_at)
                    .execute(&mut *tx)
                    .await?;
            }
            for r in &audit {
                sql::copy::PUT_AUDIT
                    .query::<Postgres>()
                    .bind(r.id)
                    .bind(r.at)
                    .bind(&r.plugin)
                    .bind(&r.appid)
                    .bind(&r.action)
                    .bind(r.actor_id)
                    .bind(&r.actor_name)
                    .bind(&r.via)
                    .bind(&r.reason)
                    .bind(&r.result)
                    .bind(r.errcode)
                    .bind(&r.detail)
                    .bind(r.attempt_id)
                    .execute(&mut *tx)
                    .await?;
            }
            for r in &subscribers {
                sql::copy::PUT_SUBSCRIBER
                    .query::<Postgres>()
                    .bind(r.user_id)
                    .bind(&r.name)
                    .bind(r.subscribed_at)
                    .bind(r.blocked_at)
                    .execute(&mut *tx)
                    .await?;
            }
            for r in &authorizers {
                sql::copy::PUT_AUTHORIZER
                    .query::<Postgres>()
                    .bind(&r.authorizer_appid)
                    .bind(&r.configured)
                    .bind(&r.refresh_token)
                    .bind(r.updated_at)
                    .execute(&mut *tx)
                    .await?;
            }
            sql::copy::SET_CLOCK
                .query::<Postgres>()
                .bind(tick)
                .execute(&mut *tx)
                .await?;
            sql::copy::CONTINUE_IDS
                .query::<Postgres>()
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Copied {
                applicants: applicants.len(),
                cards: cards.len(),
                audit: audit.len(),
                subscribers: subscribers.len(),
                authorizers: authorizers.len(),
                tick,
            })
        })
    }
}

/// A pool of `connections` on the PostgreSQL database at `url`. Any other scheme, or a server
/// that refuses the bot (a wrong password, no such database), is [`StoreError::Open`]; a server
/// that cannot be reached (down, not yet up) is [`StoreError::Unreachable`], which a restart may
/// mend. Both name the URL without its password.
pub(super) async fn connect(url: &str, connections: u32) -> StoreResult<PgPool> {
    postgres_url(url)?;
    let open_error = |e: sqlx::Error| {
        let cause = one_line(&e);
        let url = without_password(url);
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => {
                StoreError::Unreachable { url, cause }
            }
            _ => StoreError::Open { url, cause },
        }
    };
    // PostgreSQL's notices ("relation … already exists, skipping") are not the operator's news.
    let options = PgConnectOptions::from_str(url)
        .map_err(open_error)?
        .options([("client_min_messages", "warning")]);
    // One connection first, for the server's own words: a pool that cannot connect only says
    // that it timed out.
    let probe = sqlx::ConnectOptions::connect(&options)
        .await
        .map_err(open_error)?;
    let _ = sqlx::Connection::close(probe).await;
    PgPoolOptions::new()
        .max_connections(connections)
        // A server that stops answering is named within seconds, not after sqlx's 30 s.
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(open_error)
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`), before anything
/// is opened; the error names the URL without its password.
pub fn postgres_url(url: &str) -> StoreResult<()> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(());
    }
    Err(StoreError::Open {
        url: without_password(url),
        cause: "the target must be a PostgreSQL database, as postgres://USER:PASSWORD@HOST:PORT/DATABASE".to_owned(),
    })
}
