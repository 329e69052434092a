//! The bot's memory: applicants as last seen, the card for each, and the audit log, in SQLite or
//! PostgreSQL through sqlx with versioned migrations (`migrations/`, `migrations-postgres/`), so
//! nothing is lost across restarts. One room per table (`applicants`, `cards`, `audit`, the
//! leader `lease`); every statement lives in [`sql`].
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

use crate::report::one_line;
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

/// Runs `$body` once per backend, with `$pool` the store's pool and `DB` its sqlx database:
/// the store's operations are written once and checked by the compiler for both.
macro_rules! on_pool {
    ($store:expr, $pool:ident, $body:block) => {
        match &$store.current() {
            $crate::store::Db::Sqlite($pool) => {
                #[allow(clippy::upper_case_acronyms)]
                type DB = sqlx::Sqlite;
                $body
            }
            $crate::store::Db::Postgres($pool) => {
                #[allow(clippy::upper_case_acronyms)]
                type DB = sqlx::Postgres;
                $body
            }
        }
    };
}

/// As [`on_pool!`], on the store's own pool whether or not it leads: the lease itself is never
/// fenced.
macro_rules! on_base {
    ($store:expr, $pool:ident, $body:block) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => {
                #[allow(clippy::upper_case_acronyms)]
                type DB = sqlx::Sqlite;
                $body
            }
            $crate::store::Db::Postgres($pool) => {
                #[allow(clippy::upper_case_acronyms)]
                type DB = sqlx::Postgres;
                $body
            }
        }
    };
}

// Steps shared by several operations, each run on an executor of the `DB` that `on_pool!`
// names (a pool, or `&mut *tx` inside a transaction). Macros rather than functions: one body
// for both backends without restating sqlx's bounds for every bound value. Each evaluates to
// its result and returns a database error from the enclosing operation.

/// Takes the next tick of the applicant clock.
macro_rules! tick_with {
    ($e:expr) => {
        $crate::store::sql::clock::TICK
            .query::<DB>()
            .fetch_one($e)
            .await?
    };
}

/// Marks an applicant gone with `touched = tick`; with `as_of`, only if its record is no
/// newer. Whether it was marked.
macro_rules! mark_gone_with {
    ($e:expr, $plugin:expr, $appid:expr, $tick:expr, $as_of:expr) => {{
        let as_of: Option<i64> = $as_of;
        let done = $crate::store::sql::applicants::MARK_GONE
            .query::<DB>()
            .bind($tick)
            .bind($crate::domain::now_secs())
            .bind($plugin.as_str())
            .bind($appid.as_str())
            .bind(as_of)
            .bind(as_of)
            .execute($e)
            .await?
            .rows_affected();
        done == 1
    }};
}

/// Appends a decision attempt; its id.
macro_rules! attempt_with {
    ($e:expr, $attempt:expr) => {{
        let attempt: &$crate::domain::audit::Attempt<'_> = $attempt;
        let id: i64 = $crate::store::sql::audit::ATTEMPT
            .query::<DB>()
            .bind($crate::domain::now_secs())
            .bind(attempt.plugin.as_str())
            .bind(attempt.appid.as_str())
            .bind(attempt.action)
            .bind(attempt.actor.id as i64)
            .bind(&attempt.actor.name)
            .bind(attempt.via)
            .bind(attempt.reason)
            .fetch_one($e)
            .await?;
        id
    }};
}

/// Appends a [`cards::Mark`]: an audit row that is no attempt.
macro_rules! mark_with {
    ($e:expr, $mark:expr) => {{
        let mark: &$crate::store::cards::Mark<'_> = $mark;
        $crate::store::sql::audit::MARK
            .query::<DB>()
            .bind($crate::domain::now_secs())
            .bind(mark.plugin.as_str())
            .bind(mark.appid.as_str())
            .bind(mark.action)
            .bind(mark.actor.id as i64)
            .bind(&mark.actor.name)
            .bind(mark.via)
            .bind(mark.reason)
            .bind(mark.result)
            .execute($e)
            .await?;
    }};
}

/// Appends a result of attempt `attempt_id`.
macro_rules! result_with {
    ($e:expr, $attempt_id:expr, $result:expr, $errcode:expr, $detail:expr) => {{
        let errcode: Option<i64> = $errcode;
        let detail: Option<&str> = $detail;
        $crate::store::sql::audit::RESULT
            .query::<DB>()
            .bind($crate::domain::now_secs())
            .bind($result)
            .bind(errcode)
            .bind(detail)
            .bind($attempt_id)
            .execute($e)
            .await?;
    }};
}

/// Sets a card's state and note if it is still at `version`; whether it was set.
macro_rules! settle_card_with {
    ($e:expr, $card_id:expr, $version:expr, $state:expr, $note:expr) => {{
        let note: Option<&$crate::domain::card::Note> = $note;
        let note = note.and_then(|n| serde_json::to_string(n).ok());
        let done = $crate::store::sql::cards::SETTLE
            .query::<DB>()
            .bind($state)
            .bind(note)
            .bind($crate::domain::now_secs())
            .bind($card_id)
            .bind($version)
            .execute($e)
            .await?
            .rows_affected();
        done == 1
    }};
}

/// A claim's compare-and-swap (a `cards::Claiming`); the new version, or `None` when the card
/// was not in one of its states.
macro_rules! claim_with {
    ($e:expr, $card_id:expr, $claim:expr) => {{
        let claim: &Claiming<'_> = $claim;
        match state_slots(claim.from) {
            None => None,
            Some(slots) => {
                let mut query = $crate::store::sql::cards::CLAIM
                    .query::<DB>()
                    .bind(claim.to)
                    .bind(claim.actor.id as i64)
                    .bind(&claim.actor.name)
                    .bind(claim.action)
                    .bind(claim.reason)
                    .bind(claim.due_at)
                    .bind($crate::domain::now_secs())
                    .bind($card_id)
                    .bind(i64::from(claim.votes_needed));
                for state in slots {
                    query = query.bind(state);
                }
                query.bind(claim.expect_due).fetch_optional($e).await?
            }
        }
    }};
}

mod applicants;
mod audit;
mod authorizers;
mod cards;
mod copy;
mod lease;
mod sql;
mod subscribers;

pub use lease::LeaseState;

pub use applicants::{Listed, StatusCounts, StoredApplicant, Waiting};
pub use cards::{DecisionClaim, DueReminder, VoteChange, Whose};
pub use copy::{Copied, postgres_url};
pub use subscribers::Subscriber;

/// Store failures: the database, or a row that no longer parses.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sqlx failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database is not what the migrations made (a table or column gone or changed by hand):
    /// running on it would leave presses unanswered.
    #[error(
        "the database is not what this version's migrations made: {0}; restore a backup or point DATABASE_URL at a new file"
    )]
    Schema(String),
    /// The database named by `DATABASE_URL` cannot be opened: which URL, and why, in one line.
    #[error("DATABASE_URL={url}: {cause}")]
    Open {
        /// `DATABASE_URL` as given.
        url: String,
        /// Why it cannot be opened (a missing directory, a directory in place of the file, …).
        cause: String,
    },
    /// The PostgreSQL server named by `DATABASE_URL` cannot be reached (down, not up yet, a
    /// network cut): a restart may mend it.
    #[error("DATABASE_URL={url}: cannot reach the server: {cause}")]
    Unreachable {
        /// `DATABASE_URL` without its password.
        url: String,
        /// What the connection said.
        cause: String,
    },
    /// `migrate-db` copies only into an empty database.
    #[error(
        "{url} already holds {rows} rows (applicants, cards, audit, clock ticks); migrate-db copies only into an empty database, and changed nothing there"
    )]
    NotEmpty {
        /// The target, without its password.
        url: String,
        /// What it holds.
        rows: i64,
    },
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

/// A stored plugin key as the plugin's AppID. `''` marks a row from before plugins were named
/// that [`Store::claim_unnamed`] has not yet given to a plugin.
fn plugin_of(stored: &str, table: &'static str) -> StoreResult<crate::domain::applicant::AppId> {
    crate::domain::applicant::AppId::parse(stored).map_err(|e| StoreError::Corrupt {
        table,
        detail: if stored.is_empty() {
            "a row from before plugins were named, not yet claimed for a plugin".to_owned()
        } else {
            format!("plugin {stored:?}: {e}")
        },
    })
}

impl StoreError {
    /// Whether the operator must change something before a restart can help (the database
    /// cannot be opened, or is not what this version's migrations made): restarting in a loop
    /// would only repeat the same line.
    pub fn needs_the_operator(&self) -> bool {
        matches!(
            self,
            Self::Open { .. } | Self::Schema(_) | Self::Migrate(_) | Self::NotEmpty { .. }
        )
    }
}

/// What `check` learns of the database without changing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseState {
    /// No file yet: the bot creates it at start (its directory exists and may be written).
    WillBeCreated {
        /// The file's path.
        path: String,
    },
    /// The file opens; this many of this version's migrations are not applied yet (they are
    /// applied at start).
    Ready {
        /// The file's path.
        path: String,
        /// Migrations the start will apply.
        pending: usize,
    },
}

/// A database URL as it may be shown: a password in it (`postgres://user:secret@host/db`)
/// becomes `***`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let Some((user, _)) = userinfo.split_once(':') else {
        return url.to_owned();
    };
    let slash = if rest.contains('/') { "/" } else { "" };
    format!("{scheme}://{user}:***@{host}{slash}{tail}")
}

/// Connections a PostgreSQL store keeps: presses, a poll and its card sends at once, with room
/// for the server's other clients.
const POSTGRES_CONNECTIONS: u32 = 8;

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The file a `sqlite:` URL names, or `None` for an in-memory database.
fn sqlite_path(url: &str) -> Result<Option<std::path::PathBuf>, String> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        let scheme = url.split_once(':').map_or(url, |(s, _)| s);
        return Err(format!(
            "'{scheme}' is not a database this bot can use: SQLite as sqlite:PATH (e.g. sqlite:/var/lib/wxplugin-bot/bot.db), or PostgreSQL as postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        ));
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let file = rest.split_once('?').map_or(rest, |(f, _)| f);
    if file.is_empty() || file == ":memory:" || url.contains("mode=memory") {
        return Ok(None);
    }
    Ok(Some(std::path::PathBuf::from(file)))
}

/// Why the database at `url` cannot be opened, in words an operator acts on: the scheme, the
/// directory, the path, or failing those what SQLite said (`fallback`).
fn why_unopenable(url: &str, fallback: &dyn std::fmt::Display) -> StoreError {
    let cause = match sqlite_path(url) {
        Err(scheme) => scheme,
        Ok(None) => format!("cannot open an in-memory database: {fallback}"),
        Ok(Some(path)) => path_problem(&path)
            .unwrap_or_else(|| format!("cannot open {}: {fallback}", path.display())),
    };
    StoreError::Open {
        url: url.to_owned(),
        cause,
    }
}

/// What stands in the way of using `path` as a database file, if anything visible does.
fn path_problem(path: &std::path::Path) -> Option<String> {
    let shown = path.display();
    if path.is_dir() {
        return Some(format!("{shown} is a directory, not a database file"));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    match std::fs::metadata(&parent) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Some(format!(
                "cannot create {shown}: {} is not a directory",
                parent.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(format!(
                "cannot create {shown}: the directory {} does not exist",
                parent.display()
            ));
        }
        // A directory on the way that this user may not enter.
        Err(e) => {
            return Some(format!(
                "cannot reach the directory {} as this user (uid {}): {e}",
                parent.display(),
                // SAFETY: getuid has no preconditions and cannot fail.
                unsafe { libc::getuid() }
            ));
        }
    }
    let writable = |p: &std::path::Path| {
        use std::os::unix::ffi::OsStrExt as _;
        std::ffi::CString::new(p.as_os_str().as_bytes())
            // SAFETY: a valid NUL-terminated path; access(2) only reads it.
            .is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0)
    };
    if !path.exists() && !writable(&parent) {
        return Some(format!(
            "cannot create {shown}: this user (uid {}) may not write the directory {}",
            // SAFETY: getuid has no preconditions and cannot fail.
            unsafe { libc::getuid() },
            parent.display()
        ));
    }
    if path.exists() && !writable(path) {
        return Some(format!(
            "{shown} may not be written by this user (uid {})",
            // SAFETY: as above.
            unsafe { libc::getuid() }
        ));
    }
    None
}

/// The database behind a store.
#[derive(Clone)]
pub(crate) enum Db {
    /// The embedded default: one file, one process.
    Sqlite(SqlitePool),
    /// A server several replicas can share.
    Postgres(sqlx::PgPool),
}

/// The store, on SQLite or PostgreSQL (`DATABASE_URL` says which). Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// While this replica leads on PostgreSQL: connections carrying its lease's epoch, which
    /// every write goes through so that it is refused once another replica takes over.
    fenced: std::sync::Arc<std::sync::Mutex<Option<sqlx::PgPool>>>,
}

impl Store {
    /// Opens the database at `url` and migrates it: `sqlite:path.db` (the file is created if
    /// missing) or `postgres://…` (the database must exist). A database that cannot be opened is
    /// [`StoreError::Open`], naming the path or server (never a password) and the cause.
    pub async fn open(url: &str) -> StoreResult<Self> {
        if is_postgres(url) {
            return Self::open_postgres(url).await;
        }
        if let Err(scheme) = sqlite_path(url) {
            return Err(StoreError::Open {
                url: url.to_owned(),
                cause: scheme,
            });
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| why_unopenable(url, &e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Checkpoints run from the poller (Store::checkpoint), not inline in whichever commit
            // crosses 1,000 WAL pages: that commit would be a press waiting on an fsync.
            .pragma("wal_autocheckpoint", "0")
            // SQLite's default page cache is up to 2 MiB per connection, and the pool keeps four:
            // the working set here (applicants, cards, the audit log's recent rows) fits in far
            // less, and the rest would only sit in resident memory.
            .pragma("cache_size", "-512");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| why_unopenable(url, &one_line(&e)))?;
        Self::migrated(pool).await
    }

    /// What `check` says of the database at `url`, without creating or changing it: whether it
    /// opens, and how many migrations the start will apply.
    pub async fn inspect(url: &str) -> StoreResult<DatabaseState> {
        use sqlx::migrate::Migrate as _;
        if is_postgres(url) {
            let pool = copy::connect(url, 1).await?;
            let pending = match pool.acquire().await {
                Ok(mut conn) => {
                    // No migrations table: a database this bot never started on.
                    let applied = conn.list_applied_migrations().await.unwrap_or_default();
                    sqlx::migrate!("./migrations-postgres")
                        .iter()
                        .filter(|m| m.migration_type.is_up_migration())
                        .filter(|m| !applied.iter().any(|a| a.version == m.version))
                        .count()
                }
                Err(e) => {
                    return Err(StoreError::Open {
                        url: without_password(url),
                        cause: one_line(&e),
                    });
                }
            };
            pool.close().await;
            return Ok(DatabaseState::Ready {
                path: without_password(url),
                pending,
            });
        }
        let path = match sqlite_path(url) {
            Err(scheme) => {
                return Err(StoreError::Open {
                    url: url.to_owned(),
                    cause: scheme,
                });
            }
            Ok(None) => {
                return Ok(DatabaseState::WillBeCreated {
                    path: ":memory:".to_owned(),
                });
            }
            Ok(Some(path)) => path,
        };
        let shown = path.display().to_string();
        if !path.exists() {
            return match path_problem(&path) {
                Some(cause) => Err(StoreError::Open {
                    url: url.to_owned(),
                    cause,
                }),
                None => Ok(DatabaseState::WillBeCreated { path: shown }),
            };
        }
        if let Some(cause) = path_problem(&path) {
            return Err(StoreError::Open {
                url: url.to_owned(),
                cause,
            });
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| why_unopenable(url, &e))?
            .read_only(true);
        let mut conn = sqlx::ConnectOptions::connect(&options)
            .await
            .map_err(|e| why_unopenable(url, &one_line(&e)))?;
        let migrator = sqlx::migrate!("./migrations");
        // No migrations table: a database this bot never started on, so every one is pending.
        let applied = conn.list_applied_migrations().await.unwrap_or_default();
        let pending = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
            .count();
        let _ = sqlx::Connection::close(conn).await;
        Ok(DatabaseState::Ready {
            path: shown,
            pending,
        })
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
        // Migrations recorded as applied say nothing of a table dropped since: every statement
        // must prepare against what is there, or the bot refuses to start.
        let problems = sql::schema_problems(&pool).await;
        if !problems.is_empty() {
            pool.close().await;
            return Err(StoreError::Schema(problems.join("; ")));
        }
        Ok(Self::on(Db::Sqlite(pool)))
    }

    /// [`Store::open`] for PostgreSQL: this version's migrations (`migrations-postgres/`), then
    /// every statement prepared against what is there, as on SQLite.
    async fn open_postgres(url: &str) -> StoreResult<Self> {
        let pool = copy::connect(url, POSTGRES_CONNECTIONS).await?;
        sqlx::migrate!("./migrations-postgres").run(&pool).await?;
        let problems = sql::postgres_schema_problems(&pool).await;
        if !problems.is_empty() {
            pool.close().await;
            return Err(StoreError::Schema(problems.join("; ")));
        }
        Ok(Self::on(Db::Postgres(pool)))
    }

    fn on(db: Db) -> Self {
        Self {
            db,
            fenced: Default::default(),
        }
    }

    /// The pool the next statement runs on: the fenced one while this replica leads.
    fn current(&self) -> Db {
        match &*self.fenced.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(fenced) => Db::Postgres(fenced.clone()),
            None => self.db.clone(),
        }
    }

    /// Whether this store is on PostgreSQL (replicas may share it).
    pub fn is_postgres(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    /// Which database this store runs on, for `/status` and the start's log line.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "SQLite",
            Db::Postgres(_) => "PostgreSQL",
        }
    }

    /// Brings the PostgreSQL database at `url` to this version's schema (`migrations-postgres/`)
    /// and says what is wrong with it for the store's statements, as the SQLite start does: one
    /// entry per problem, empty when every statement prepares and returns what is read. The
    /// first part of the PostgreSQL backend (issue 18): the statement list covers both.
    pub async fn migrate_postgres(url: &str) -> StoreResult<Vec<String>> {
        let pool = copy::connect(url, 2).await?;
        sqlx::migrate!("./migrations-postgres").run(&pool).await?;
        let problems = sql::postgres_schema_problems(&pool).await;
        pool.close().await;
        Ok(problems)
    }

    /// Copies the WAL into the database without blocking writers (a no-op when nothing new was
    /// written). The poller runs it after each poll, so presses never wait on a checkpoint.
    pub async fn checkpoint(&self) -> StoreResult<()> {
        if let Db::Sqlite(pool) = &self.db {
            sql::upkeep::CHECKPOINT
                .query::<sqlx::Sqlite>()
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Closes the pool (on SQLite, flushing the WAL).
    pub async fn close(&self) {
        self.follow().await;
        match &self.db {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
mod url_tests {
    use super::without_password;

    #[test]
    fn a_database_password_is_never_shown() {
        assert_eq!(
            without_password("postgres://bot:s3cr%40t@db.internal:5432/wx?sslmode=require"),
            "postgres://bot:***@db.internal:5432/wx?sslmode=require"
        );
        assert_eq!(
            without_password("postgres://bot@db/wx"),
            "postgres://bot@db/wx"
        );
        assert_eq!(without_password("sqlite:bot.db"), "sqlite:bot.db");
        assert_eq!(
            without_password("postgres://u:p@host"),
            "postgres://u:***@host"
        );
    }
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
    use crate::domain::action::{Action, Via};
    use crate::domain::applicant::{AppId, Applicant, ApplyStatus, Category};
    use crate::domain::audit::{Attempt, AuditOutcome};
    use crate::domain::card::{Actor, CardState};

    fn applicant(appid: &str, nickname: &str) -> Applicant {
        Applicant {
            appid: AppId::parse(appid).expect("an appid"),
            status: ApplyStatus::Pending,
            nickname: Some(nickname.to_owned()),
            avatar_url: None,
            reason: Some("{\"kind\": \"json-looking\"} 'quoted' \\ \\u0000 \u{7}".to_owned()),
            apply_url: Some("https://example.invalid/?a=1&b=\"2\"".to_owned()),
            applied_at: jiff::Timestamp::from_second(1_700_000_000).ok(),
            categories: vec![Category {
                first: "工具".to_owned(),
                second: "效率".to_owned(),
            }],
        }
    }

    #[tokio::test]
    async fn a_listing_comes_back_exactly_as_written_and_an_older_poll_leaves_newer_records() {
        let store = Store::in_memory().await.expect("store");
        let a = applicant("wx1234567890abcdef", "小程序 🚀 \"<b>\"");
        let mut b = applicant("wxabcdef1234567890", "");
        b.nickname = None;
        b.applied_at = None;
        b.categories.clear();

        let as_of = store.clock().await.expect("clock");
        let written = store
            .record_listing(plugin(), &[a.clone(), b.clone()], as_of)
            .await
            .expect("listing");
        let mut newer = a.clone();
        newer.status = ApplyStatus::Approved;
        store
            .upsert_applicant(plugin(), &newer)
            .await
            .expect("re-read");
        let stale = store
            .record_listing(plugin(), std::slice::from_ref(&a), as_of)
            .await
            .expect("stale listing");

        assert_eq!(written.len(), 2);
        assert!(stale.is_empty(), "an older poll wrote over a newer record");
        let stored = store.applicant(plugin(), &a.appid).await.expect("read");
        assert_eq!(stored.map(|s| s.applicant), Some(newer));
        let stored = store.applicant(plugin(), &b.appid).await.expect("read");
        assert_eq!(stored.map(|s| s.applicant), Some(b));
    }

    #[tokio::test]
    async fn nul_characters_are_the_one_thing_dropped_from_an_applicants_text() {
        // PostgreSQL's text cannot hold NUL; both databases keep the same text without it.
        let store = Store::in_memory().await.expect("store");
        let mut a = applicant("wx1234567890abcdef", "a\u{0}b");
        a.reason = Some("x\u{0}y \\u0000".to_owned());
        a.categories[0].second = "效\u{0}率".to_owned();

        store.upsert_applicant(plugin(), &a).await.expect("written");

        let stored = store
            .applicant(plugin(), &a.appid)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(stored.applicant.nickname.as_deref(), Some("ab"));
        assert_eq!(stored.applicant.reason.as_deref(), Some("xy \\u0000"));
        assert_eq!(stored.applicant.categories[0].second, "效率");
    }

    #[tokio::test]
    async fn a_listing_longer_than_one_upsert_is_written_whole_in_one_transaction() {
        let store = Store::in_memory().await.expect("store");
        let list: Vec<Applicant> = (0..700)
            .map(|i| applicant(&format!("wx{i:016x}"), &format!("n{i}")))
            .collect();

        let as_of = store.clock().await.expect("clock");
        let written = store
            .record_listing(plugin(), &list, as_of)
            .await
            .expect("listing");

        assert_eq!(written.len(), list.len());
        let stored = store.applicants(plugin()).await.expect("read");
        assert_eq!(stored.len(), list.len());
        for a in [&list[0], &list[255], &list[256], &list[699]] {
            let s = store.applicant(plugin(), &a.appid).await.expect("read");
            assert_eq!(s.map(|s| s.applicant).as_ref(), Some(a));
        }
    }

    #[tokio::test]
    async fn typed_values_round_trip_through_cards_and_the_audit_log() {
        let store = Store::in_memory().await.expect("store");
        let a = applicant("wx1234567890abcdef", "n");
        store
            .upsert_applicant(plugin(), &a)
            .await
            .expect("applicant");
        let card = store
            .begin_card(-1, plugin(), &a.appid, None)
            .await
            .expect("begin")
            .expect("a new card");
        store.card_sent(card.id, 7).await.expect("sent");
        let actor = Actor {
            id: 42,
            name: "@alice".to_owned(),
        };
        let attempt = Attempt {
            plugin: plugin(),
            appid: &a.appid,
            action: Action::Reject,
            actor: &actor,
            via: Via::Button,
            reason: Some("vague"),
        };

        let claimed = store
            .claim_for_decision(card.id, Action::Reject.starting_states(), &attempt, 0, None)
            .await
            .expect("claim");
        let again = store
            .claim_for_decision(card.id, Action::Reject.starting_states(), &attempt, 0, None)
            .await
            .expect("second claim");
        let claimed = claimed.expect("the first claim wins");
        store
            .audit_result(claimed.attempt, AuditOutcome::Error, Some(89240), None)
            .await
            .expect("result");

        assert_eq!(again, None, "two claims on one card");
        let card = store.card(card.id).await.expect("read").expect("card");
        assert_eq!(card.state, CardState::Deciding);
        assert_eq!(card.action, Some(Action::Reject));
        assert_eq!(card.version, claimed.version);
        let history = store
            .history(Some(plugin()), Some(&a.appid), 10)
            .await
            .expect("history");
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].action, Action::Reject);
        assert_eq!(history[0].via, Via::Button);
        assert_eq!(history[0].result, AuditOutcome::Error);
        assert_eq!(history[0].errcode, Some(89240));
    }

    #[tokio::test]
    async fn an_attempt_without_a_result_reads_as_in_flight() {
        let store = Store::in_memory().await.expect("store");
        let appid = AppId::parse("wx1234567890abcdef").expect("appid");
        let actor = Actor {
            id: 1,
            name: "@bob".to_owned(),
        };
        store
            .audit_attempt(&Attempt {
                plugin: plugin(),
                appid: &appid,
                action: Action::Approve,
                actor: &actor,
                via: Via::Command,
                reason: None,
            })
            .await
            .expect("attempt");

        let history = store.history(None, None, 10).await.expect("history");

        assert_eq!(history.len(), 1);
        assert_eq!(history[0].result, AuditOutcome::InFlight);
        assert_eq!(history[0].via, Via::Command);
    }

    #[tokio::test]
    async fn a_reused_card_moves_to_a_new_version_and_only_from_the_version_judged() {
        let store = Store::in_memory().await.expect("store");
        let a = applicant("wx1234567890abcdef", "n");
        store
            .upsert_applicant(plugin(), &a)
            .await
            .expect("applicant");
        let card = store
            .begin_card(-1, plugin(), &a.appid, None)
            .await
            .expect("begin")
            .expect("a new card");
        assert!(store.card_sent(card.id, 7).await.expect("sent"));
        let open = store.card(card.id).await.expect("read").expect("card");
        assert!(
            store
                .settle_card(card.id, open.version, CardState::Closed, None)
                .await
                .expect("close")
        );
        let closed = store.card(card.id).await.expect("read").expect("card");

        // Judged at an older version: not reused.
        let stale = store
            .begin_card(-1, plugin(), &a.appid, Some(open.version))
            .await
            .expect("begin");
        assert!(stale.is_none(), "a card reused from a version it had left");
        let reused = store
            .begin_card(-1, plugin(), &a.appid, Some(closed.version))
            .await
            .expect("begin")
            .expect("reused");
        assert_eq!(reused.id, card.id);
        assert!(
            reused.version > closed.version,
            "a reused row keeps its version"
        );
        assert_eq!(reused.previous_message_id, Some(7));
        assert_eq!(reused.message_id, None);
        // Whoever read the closed card cannot settle the new one.
        assert!(
            !store
                .settle_card(card.id, closed.version, CardState::Closed, None)
                .await
                .expect("settle")
        );
        // Abandoned before it was sent: the row takes its old message back.
        store.abandon_card(card.id).await.expect("abandon");
        let back = store.card(card.id).await.expect("read").expect("card");
        assert_eq!(back.message_id, Some(7));
        assert_eq!(back.previous_message_id, None);
        assert!(back.version > reused.version);
        // Not being sent any more: a late `card_sent` records nothing and says so.
        assert!(!store.card_sent(card.id, 8).await.expect("sent"));
    }
}
