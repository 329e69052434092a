//! The bot's memory: applicants as last seen, the card for each, and the audit log, in SQLite
//! through sqlx with versioned migrations (`migrations/`), so nothing is lost across restarts.
//! One room per table (`applicants`, `cards`, `audit`); every statement lives in [`sql`].
//!
//! Every operation that guards a decision is one atomic compare-and-swap that says what it did
//! ([`Store::claim`] returns the new version only to the caller that won; [`Store::settle_card`]
//! writes only over the version it was given). An applicant clock orders what the bot learns of
//! WeChat: a poll writes only over records no newer than its start ([`Store::record_listing`]).
//!
//! Values go in and come out typed: enums by sqlx's derive (`CardState`, `Action`, `Via`,
//! `AuditOutcome`, stored by name), rows through `FromRow` structs whose field names are the
//! columns they read, then into domain types; a stored value that does not parse (an appid, a
//! note) is [`StoreError::Corrupt`].
//!
//! Why a test over one list of statements rather than sqlx's `query!` macros: the macros check
//! against a live database at build time, or against offline data that `cargo sqlx prepare`
//! (sqlx-cli and a running database) writes per backend — with PostgreSQL next, every build and
//! every change to a statement would need both databases and the tool. Instead each statement
//! is a typed constant in [`sql`], and a unit test prepares every one of them against a freshly
//! migrated database, checking that the columns its row struct reads are among those it returns:
//! a typo, a dropped column or a renamed table fails `cargo test` without a running bot or any
//! tool. A PostgreSQL backend adds its own list and runs the same test against its database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Declares a `FromRow` struct and its `Columns` (the field names: the columns it reads), from
/// one list, so the statement test checks exactly what the derive decodes.
macro_rules! row {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $($(#[$fmeta:meta])* $fvis:vis $field:ident: $ty:ty),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(sqlx::FromRow)]
        $vis struct $name {
            $($(#[$fmeta])* $fvis $field: $ty),*
        }

        impl $crate::store::sql::Columns for $name {
            fn columns() -> Vec<&'static str> {
                vec![$(stringify!($field)),*]
            }
        }
    };
}

mod applicants;
mod audit;
mod cards;
mod sql;

pub use applicants::{Listed, StatusCounts, StoredApplicant};
pub use cards::{DecisionClaim, DueReminder};

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
        sql::upkeep::CHECKPOINT.query().execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
