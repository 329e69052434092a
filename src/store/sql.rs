//! Every SQL statement the store runs, by table, in one list: the store's operations take their
//! text from here and nowhere else, and a test prepares each one against a freshly migrated
//! database and checks that the columns its row type reads are among those it returns.
//!
//! A statement is typed by what it yields — [`Rows`] of a row struct, a [`Scalar`], or nothing
//! ([`Exec`]) — so the call site cannot decode a statement into a row type the test did not check
//! it against. Each statement has SQLite's text and PostgreSQL's: its own where the dialects
//! differ (`jsonb` for `json_extract`), else SQLite's with `$n` placeholders; `query::<DB>()`
//! takes the one its database runs, and the same test prepares both.

use std::marker::PhantomData;
use std::sync::OnceLock;

use sqlx::{Database, FromRow, Postgres, Row, Sqlite};

/// A database the store runs on: which of a statement's two texts it takes.
pub(crate) trait Dialect: Database {
    /// Whether this is PostgreSQL.
    const POSTGRES: bool;
}

impl Dialect for Sqlite {
    const POSTGRES: bool = false;
}

impl Dialect for Postgres {
    const POSTGRES: bool = true;
}

/// A row struct whose field names are the columns it reads (declared with `row!`).
pub(crate) trait Columns {
    /// The column names read, in field order.
    fn columns() -> Vec<&'static str>;
}

/// Two row structs read from one row (a join).
pub(crate) struct Joined<A, B>(pub A, pub B);

impl<'r, R, A, B> FromRow<'r, R> for Joined<A, B>
where
    R: Row,
    A: FromRow<'r, R>,
    B: FromRow<'r, R>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self(A::from_row(row)?, B::from_row(row)?))
    }
}

impl<A: Columns, B: Columns> Columns for Joined<A, B> {
    fn columns() -> Vec<&'static str> {
        let mut all = A::columns();
        all.extend(B::columns());
        all
    }
}

/// What is checked of a statement (by the test, and at every start): its text, and the columns
/// its reader needs (`None`: it returns nothing that is read by name).
pub(crate) struct Check {
    pub sql: &'static str,
    /// The statement as PostgreSQL runs it: its own text where the dialects differ, else the
    /// SQLite text with `$n` placeholders ([`postgres`]).
    pub postgres: &'static str,
    pub reads: Option<Vec<&'static str>>,
    /// Whether it must return at least one column (a scalar).
    pub returns: bool,
}

/// A statement's two texts: SQLite's, and PostgreSQL's (its own, or SQLite's translated once).
pub(crate) struct Text {
    sql: &'static str,
    own: Option<&'static str>,
    translated: OnceLock<String>,
}

impl Text {
    const fn new(sql: &'static str, own: Option<&'static str>) -> Self {
        Self {
            sql,
            own,
            translated: OnceLock::new(),
        }
    }

    /// The text PostgreSQL runs.
    fn postgres(&'static self) -> &'static str {
        match self.own {
            Some(own) => own,
            None => self.translated.get_or_init(|| postgres(self.sql)),
        }
    }

    /// The text `DB` runs.
    fn of<DB: Dialect>(&'static self) -> &'static str {
        if DB::POSTGRES {
            self.postgres()
        } else {
            self.sql
        }
    }
}

/// A statement whose rows decode into `R`.
pub(crate) struct Rows<R> {
    text: Text,
    row: PhantomData<fn() -> R>,
}

impl<R> Rows<R> {
    pub const fn new(sql: &'static str, pg: Option<&'static str>) -> Self {
        Self {
            text: Text::new(sql, pg),
            row: PhantomData,
        }
    }

    /// The query on `DB`, ready for binds.
    pub fn query<'q, DB>(
        &'static self,
    ) -> sqlx::query::QueryAs<'q, DB, R, <DB as Database>::Arguments<'q>>
    where
        DB: Dialect,
        R: for<'r> FromRow<'r, DB::Row>,
    {
        sqlx::query_as(self.text.of::<DB>())
    }
}

impl<R: Columns> Rows<R> {
    pub fn check(&'static self) -> Check {
        Check {
            sql: self.text.sql,
            postgres: self.text.postgres(),
            reads: Some(R::columns()),
            returns: true,
        }
    }
}

/// A statement whose first column is read as a `T`.
pub(crate) struct Scalar<T> {
    text: Text,
    value: PhantomData<fn() -> T>,
}

impl<T> Scalar<T> {
    pub const fn new(sql: &'static str, pg: Option<&'static str>) -> Self {
        Self {
            text: Text::new(sql, pg),
            value: PhantomData,
        }
    }

    /// The query on `DB`, ready for binds.
    pub fn query<'q, DB>(
        &'static self,
    ) -> sqlx::query::QueryScalar<'q, DB, T, <DB as Database>::Arguments<'q>>
    where
        DB: Dialect,
        (T,): for<'r> FromRow<'r, DB::Row>,
    {
        sqlx::query_scalar(self.text.of::<DB>())
    }

    pub fn check(&'static self) -> Check {
        Check {
            sql: self.text.sql,
            postgres: self.text.postgres(),
            reads: None,
            returns: true,
        }
    }
}

/// A statement run for its effect (rows affected).
pub(crate) struct Exec {
    text: Text,
}

impl Exec {
    pub const fn new(sql: &'static str, pg: Option<&'static str>) -> Self {
        Self {
            text: Text::new(sql, pg),
        }
    }

    /// The query on `DB`, ready for binds.
    pub fn query<'q, DB: Dialect>(
        &'static self,
    ) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>> {
        sqlx::query(self.text.of::<DB>())
    }

    pub fn check(&'static self) -> Check {
        Check {
            sql: self.text.sql,
            postgres: self.text.postgres(),
            reads: None,
            returns: false,
        }
    }
}

/// Declares the statements, one module per table, and [`all`]: the list the test walks, built
/// from the same declarations so a new statement cannot be left out of it.
macro_rules! statements {
    ($(
        $(#[doc = $mdoc:literal])*
        mod $table:ident {
            $(
                $(#[doc = $doc:literal])*
                $name:ident: $ty:ty = $sql:expr $(, postgres: $pg:expr)?;
            )*
        }
    )*) => {
        $(
            $(#[doc = $mdoc])*
            pub(in crate::store) mod $table {
                #[allow(unused_imports)]
                use super::{Exec, Joined, Rows, Scalar};
                #[allow(unused_imports)]
                use crate::store::{
                    applicants::*, audit::*, authorizers::*, cards::*, copy::*, lease::*,
                    subscribers::*,
                };
                $(
                    $(#[doc = $doc])*
                    pub(in crate::store) static $name: $ty =
                        <$ty>::new($sql, postgres_only!($($pg)?));
                )*
            }
        )*

        /// Every statement with its name (`table::NAME`), for the check that prepares each.
        pub(crate) fn all() -> Vec<(&'static str, Check)> {
            vec![$($((concat!(stringify!($table), "::", stringify!($name)), $table::$name.check()),)*)*]
        }
    };
}

/// A statement's own PostgreSQL text, if it has one.
macro_rules! postgres_only {
    () => {
        None
    };
    ($pg:expr) => {
        Some($pg)
    };
}

/// SQLite's placeholders in PostgreSQL's form: `?N` becomes `$N`, and each bare `?` the next
/// `$n` in order, as SQLite numbers them; text inside single quotes is left alone.
pub(crate) fn postgres(sqlite: &str) -> String {
    let mut out = String::with_capacity(sqlite.len() + 8);
    let mut next = 0;
    let mut quoted = false;
    let mut chars = sqlite.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    next + 1
                } else {
                    digits.parse().unwrap_or(next + 1)
                };
                next = next.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// A card's state in one of up to six states: `state IN` these slots, bound by
/// [`crate::store::cards`] with the wanted states repeated to fill them.
macro_rules! state_in {
    () => {
        "state IN (?, ?, ?, ?, ?, ?)"
    };
}

statements! {
    /// The store's own upkeep.
    mod upkeep {
        /// SQLite's write-ahead log folded back into the file; PostgreSQL checkpoints by itself.
        CHECKPOINT: Exec = "PRAGMA wal_checkpoint(PASSIVE)", postgres: "SELECT 1";
    }

    /// The leader lease (one row). Times are the database's clock in milliseconds, so replicas
    /// whose machines' clocks differ agree on when a lease ends.
    mod lease {
        READ: Rows<LeaseRow> = "SELECT epoch, holder, since_ms, expires_ms,
                 CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) AS now_ms
             FROM leader_lease WHERE id = 1",
        postgres: "SELECT epoch, holder, since_ms, expires_ms,
                 (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT AS now_ms
             FROM leader_lease WHERE id = 1";
        /// Binds: holder, lease length (ms), whether the holder may take back a lease in its own
        /// name before it ends (a replica starting again after a crash). Yields the new epoch
        /// only to the one that took it.
        TAKE: Scalar<i64> = "UPDATE leader_lease SET epoch = epoch + 1, holder = ?1,
                 since_ms = CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER),
                 renewed_ms = CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER),
                 expires_ms = CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) + ?2
             WHERE id = 1 AND (holder IS NULL
                 OR expires_ms < CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)
                 OR (holder = ?1 AND ?3))
             RETURNING epoch",
        postgres: "UPDATE leader_lease SET epoch = epoch + 1, holder = $1,
                 since_ms = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT,
                 renewed_ms = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT,
                 expires_ms = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT + $2
             WHERE id = 1 AND (holder IS NULL
                 OR expires_ms < (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT
                 OR (holder = $1 AND $3))
             RETURNING epoch";
        /// Binds: lease length (ms), epoch, holder. Nothing when another took the lease since.
        RENEW: Exec = "UPDATE leader_lease SET
                 renewed_ms = CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER),
                 expires_ms = CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) + ?1
             WHERE id = 1 AND epoch = ?2 AND holder = ?3",
        postgres: "UPDATE leader_lease SET
                 renewed_ms = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT,
                 expires_ms = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT + $1
             WHERE id = 1 AND epoch = $2 AND holder = $3";
        /// Binds: epoch, holder. A clean stop hands the lease on at once.
        RELEASE: Exec = "UPDATE leader_lease SET holder = NULL, expires_ms = 0
             WHERE id = 1 AND epoch = ? AND holder = ?";
    }

    /// The applicant clock (one row).
    mod clock {
        READ: Scalar<i64> = "SELECT tick FROM clock WHERE id = 1";
        TICK: Scalar<i64> = "UPDATE clock SET tick = tick + 1 WHERE id = 1 RETURNING tick";
    }

    /// Applicants as WeChat last listed them.
    mod applicants {
        /// Binds: plugin.
        ALL: Rows<ApplicantRow> =
            "SELECT * FROM applicants WHERE plugin = ? ORDER BY applied_at DESC, appid";
        /// Binds: plugin, appid.
        ONE: Rows<ApplicantRow> = "SELECT * FROM applicants WHERE plugin = ? AND appid = ?";
        /// Binds: now, tick, the applicants as a JSON array of [`ApplicantJson`], whether to
        /// write only over records no newer than `tick`, the plugin they applied to.
        UPSERT: Scalar<String> = "INSERT INTO applicants (plugin, appid, status, nickname,
                 avatar_url, reason, apply_url, applied_at, categories, first_seen, updated_at,
                 gone, touched)
             SELECT ?5, json_extract(value, '$.appid'), json_extract(value, '$.status'),
                 json_extract(value, '$.nickname'), json_extract(value, '$.avatar_url'),
                 json_extract(value, '$.reason'), json_extract(value, '$.apply_url'),
                 json_extract(value, '$.applied_at'), json_extract(value, '$.categories'),
                 ?1, ?1, FALSE, ?2
             FROM json_each(?3) WHERE true
             ON CONFLICT (plugin, appid) DO UPDATE SET status = excluded.status,
                 nickname = excluded.nickname, avatar_url = excluded.avatar_url,
                 reason = excluded.reason, apply_url = excluded.apply_url,
                 applied_at = excluded.applied_at, categories = excluded.categories,
                 updated_at = excluded.updated_at, gone = FALSE, touched = excluded.touched
             WHERE ?4 = FALSE OR applicants.touched <= excluded.touched
             RETURNING appid",
        postgres: "INSERT INTO applicants (plugin, appid, status, nickname,
                 avatar_url, reason, apply_url, applied_at, categories, first_seen, updated_at,
                 gone, touched)
             SELECT $5::TEXT, v ->> 'appid', (v ->> 'status')::BIGINT, v ->> 'nickname',
                 v ->> 'avatar_url', v ->> 'reason', v ->> 'apply_url',
                 (v ->> 'applied_at')::BIGINT, v ->> 'categories',
                 $1::BIGINT, $1::BIGINT, FALSE, $2::BIGINT
             FROM jsonb_array_elements($3::TEXT::JSONB) AS v
             ON CONFLICT (plugin, appid) DO UPDATE SET status = excluded.status,
                 nickname = excluded.nickname, avatar_url = excluded.avatar_url,
                 reason = excluded.reason, apply_url = excluded.apply_url,
                 applied_at = excluded.applied_at, categories = excluded.categories,
                 updated_at = excluded.updated_at, gone = FALSE, touched = excluded.touched
             WHERE $4::BOOLEAN = FALSE OR applicants.touched <= excluded.touched
             RETURNING appid";
        /// Binds: tick, plugin, appid.
        TOUCH: Exec = "UPDATE applicants SET touched = ? WHERE plugin = ? AND appid = ?";
        /// Binds: status, tick, now, plugin, appid.
        SET_STATUS: Exec = "UPDATE applicants SET status = ?, touched = ?, updated_at = ?
             WHERE plugin = ? AND appid = ?";
        /// Binds: tick, now, plugin, appid, `as_of` twice (NULL: unconditionally).
        MARK_GONE: Exec = "UPDATE applicants SET gone = TRUE, touched = ?, updated_at = ?
             WHERE plugin = ? AND appid = ? AND (? IS NULL OR touched <= ?)",
        postgres: "UPDATE applicants SET gone = TRUE, touched = $1, updated_at = $2
             WHERE plugin = $3 AND appid = $4 AND ($5::BIGINT IS NULL OR touched <= $6)";
        /// Binds: chat, status code twice (NULL: any status).
        LISTED_WITH_CARDS: Rows<Joined<ApplicantRow, CardRef>> =
            "SELECT a.*, c.id AS card_id FROM applicants a
             LEFT JOIN cards c ON c.plugin = a.plugin AND c.appid = a.appid AND c.chat_id = ?
             WHERE a.gone = FALSE AND (? IS NULL OR a.status = ?)
             ORDER BY a.plugin, COALESCE(a.applied_at, a.first_seen), a.appid",
        postgres: "SELECT a.*, c.id AS card_id FROM applicants a
             LEFT JOIN cards c ON c.plugin = a.plugin AND c.appid = a.appid AND c.chat_id = $1
             WHERE a.gone = FALSE AND ($2::BIGINT IS NULL OR a.status = $3)
             ORDER BY a.plugin, COALESCE(a.applied_at, a.first_seen), a.appid";
        /// Binds: plugin.
        OLDEST_PENDING: Rows<OldestRow> = "SELECT appid, nickname,
                    COALESCE(applied_at, first_seen) AS since
             FROM applicants WHERE plugin = ? AND gone = FALSE AND status = 1
             ORDER BY COALESCE(applied_at, first_seen), appid LIMIT 1";
        /// Binds: plugin.
        COUNT_BY_STATUS: Rows<StatusCount> = "SELECT status, COUNT(*) AS n FROM applicants
             WHERE plugin = ? AND gone = FALSE GROUP BY status";
        /// Rows left from before plugins were named (plugin ''), in applicants and the audit log.
        UNNAMED: Scalar<i64> = "SELECT (SELECT COUNT(*) FROM applicants WHERE plugin = '')
                 + (SELECT COUNT(*) FROM audit WHERE plugin = '')";
        /// Binds: plugin. Their cards follow (ON UPDATE CASCADE).
        CLAIM_UNNAMED: Exec = "UPDATE applicants SET plugin = ? WHERE plugin = ''";
        /// Binds: plugin.
        CLAIM_UNNAMED_AUDIT: Exec = "UPDATE audit SET plugin = ? WHERE plugin = ''";
    }

    /// The card posted for each applicant in a chat.
    mod cards {
        COUNT_LIVE: Scalar<i64> = "SELECT COUNT(*) FROM cards
             WHERE chat_id = ? AND message_id IS NOT NULL AND message_gone = FALSE";
        /// Binds: chat, applied before, reminded before, first seen before.
        DUE_REMINDERS: Rows<DueRow> =
            "SELECT c.id AS card_id, COALESCE(a.applied_at, a.first_seen) AS since
             FROM cards c JOIN applicants a ON a.plugin = c.plugin AND a.appid = c.appid
             WHERE c.chat_id = ? AND a.gone = FALSE AND a.status = 1
               AND c.state NOT IN ('sending', 'closed', 'scheduled')
               AND COALESCE(a.applied_at, a.first_seen) <= ?
               AND (c.reminded_at IS NULL OR c.reminded_at <= ?)
               AND a.first_seen <= ?
             ORDER BY COALESCE(a.applied_at, a.first_seen), a.appid";
        MARK_REMINDED: Exec = "UPDATE cards SET reminded_at = ? WHERE id = ?";
        /// Binds: chat, waiting since at most, first seen at most. Pending applicants with a
        /// live card that have waited long enough and were never escalated.
        DUE_ESCALATIONS: Rows<DueRow> =
            "SELECT c.id AS card_id, COALESCE(a.applied_at, a.first_seen) AS since
             FROM cards c JOIN applicants a ON a.plugin = c.plugin AND a.appid = c.appid
             WHERE c.chat_id = ? AND a.gone = FALSE AND a.status = 1
               AND c.state NOT IN ('sending', 'closed', 'scheduled')
               AND COALESCE(a.applied_at, a.first_seen) <= ?
               AND c.escalated_at IS NULL
               AND a.first_seen <= ?
             ORDER BY COALESCE(a.applied_at, a.first_seen), a.appid";
        MARK_ESCALATED: Exec = "UPDATE cards SET escalated_at = ? WHERE id = ?";
        /// Binds: chat, appid, now, now, the version the caller read (NULL: no row expected), plugin.
        /// A reused row's version moves on, so nothing that read it before can settle the new
        /// card; its live old message waits in `previous_message_id` to be superseded.
        BEGIN: Exec = "INSERT INTO cards (chat_id, plugin, appid, state, created_at, updated_at)
             VALUES (?1, ?6, ?2, 'sending', ?3, ?4)
             ON CONFLICT (chat_id, plugin, appid) DO UPDATE SET state = 'sending', message_id = NULL,
                 previous_message_id = CASE
                     WHEN cards.message_id IS NOT NULL AND cards.message_gone = FALSE
                     THEN cards.message_id ELSE cards.previous_message_id END,
                 actor_id = NULL, actor_name = NULL, action = NULL, reason = NULL, note = NULL,
                 prompt_message_id = NULL, message_gone = FALSE, reminded_at = NULL, moved = NULL,
                 votes = '[]', escalated_at = NULL, version = cards.version + 1, updated_at = excluded.updated_at
             WHERE (?5 IS NULL OR cards.version = ?5)
               AND (cards.state = 'closed'
                OR (cards.message_gone = TRUE
                    AND cards.state IN ('open', 'choosing_reason', 'awaiting_reason')
                    -- An unknown outcome stays until a listing settles it: no fresh buttons.
                    AND (cards.note IS NULL OR json_extract(cards.note, '$.kind') != 'unknown')))",
        postgres: "INSERT INTO cards (chat_id, plugin, appid, state, created_at, updated_at)
             VALUES ($1, $6, $2, 'sending', $3, $4)
             ON CONFLICT (chat_id, plugin, appid) DO UPDATE SET state = 'sending', message_id = NULL,
                 previous_message_id = CASE
                     WHEN cards.message_id IS NOT NULL AND cards.message_gone = FALSE
                     THEN cards.message_id ELSE cards.previous_message_id END,
                 actor_id = NULL, actor_name = NULL, action = NULL, reason = NULL, note = NULL,
                 prompt_message_id = NULL, message_gone = FALSE, reminded_at = NULL, moved = NULL,
                 votes = '[]', escalated_at = NULL, version = cards.version + 1, updated_at = excluded.updated_at
             WHERE ($5::BIGINT IS NULL OR cards.version = $5)
               AND (cards.state = 'closed'
                OR (cards.message_gone = TRUE
                    AND cards.state IN ('open', 'choosing_reason', 'awaiting_reason')
                    -- An unknown outcome stays until a listing settles it: no fresh buttons.
                    AND (cards.note IS NULL OR (cards.note::JSONB ->> 'kind') != 'unknown')))";
        /// A row reused for a re-application takes its old message back (still showing the
        /// last outcome; the bump has it re-rendered from the record).
        /// Binds: chat, plugin, appid, now, now. A card that is only a record, never a message: what a
        /// command's decision claims when the applicant never had a card (refused or timed out
        /// before the bot first saw it pending).
        RECORD_ONLY: Exec = "INSERT INTO cards (chat_id, plugin, appid, state, created_at, updated_at)
             VALUES (?, ?, ?, 'closed', ?, ?) ON CONFLICT (chat_id, plugin, appid) DO NOTHING";
        ABANDON: Exec = "UPDATE cards SET state = 'closed',
                 message_id = COALESCE(message_id, previous_message_id), previous_message_id = NULL,
                 version = version + 1, updated_at = ?
             WHERE id = ? AND state = 'sending'";
        /// The message went out without its buttons: it shows an older version than the row's
        /// until the edit that adds them (`SHOWN`), so the stale sweep adds them if that fails.
        SENT: Exec = "UPDATE cards SET message_id = ?, state = 'open', version = version + 1,
                 shown_version = version, updated_at = ? WHERE id = ? AND state = 'sending'";
        IN_CHAT: Rows<CardRow> = "SELECT * FROM cards WHERE chat_id = ?";
        ELSEWHERE: Rows<CardRow> =
            "SELECT * FROM cards WHERE chat_id != ? AND moved IS NULL ORDER BY id";
        /// Binds: moved, now, card, version. Never a card being decided or whose outcome is
        /// unknown: it may still write through, and is settled first.
        MOVE: Exec = "UPDATE cards SET state = 'closed', prompt_message_id = NULL, moved = ?,
                 version = version + 1, updated_at = ?
             WHERE id = ? AND version = ? AND state NOT IN ('sending', 'deciding', 'scheduled')
               AND (note IS NULL OR json_extract(note, '$.kind') != 'unknown')",
        postgres: "UPDATE cards SET state = 'closed', prompt_message_id = NULL, moved = $1,
                 version = version + 1, updated_at = $2
             WHERE id = $3 AND version = $4 AND state NOT IN ('sending', 'deciding', 'scheduled')
               AND (note IS NULL OR (note::JSONB ->> 'kind') != 'unknown')";
        /// Binds: chat, plugin, appid.
        UNSETTLED_ELSEWHERE: Scalar<i64> = "SELECT COUNT(*) FROM cards
             WHERE chat_id != ? AND plugin = ? AND appid = ?
               AND (state IN ('deciding', 'scheduled') OR json_extract(note, '$.kind') = 'unknown')",
        postgres: "SELECT COUNT(*) FROM cards
             WHERE chat_id != $1 AND plugin = $2 AND appid = $3
               AND (state IN ('deciding', 'scheduled') OR (note::JSONB ->> 'kind') = 'unknown')";
        /// Cards whose old message still waits to say a newer card replaced it, in every chat:
        /// one left in a former team chat is marked there too.
        TO_SUPERSEDE: Rows<CardRow> = "SELECT * FROM cards
             WHERE previous_message_id IS NOT NULL AND state != 'sending'
             ORDER BY id";
        /// Binds: card, the old message.
        SUPERSEDED: Exec = "UPDATE cards SET previous_message_id = NULL
             WHERE id = ? AND previous_message_id = ?";
        UNSENT: Rows<CardRow> =
            "SELECT * FROM cards WHERE chat_id = ? AND state = 'sending' ORDER BY id";
        /// In every chat: a decision left in a former team chat is settled too.
        DECIDING: Rows<CardRow> = "SELECT * FROM cards WHERE state = 'deciding' ORDER BY id";
        /// In every chat: decisions waiting out their undo window.
        SCHEDULED: Rows<CardRow> = "SELECT * FROM cards WHERE state = 'scheduled' ORDER BY id";
        /// Binds: now, card. ↩ Undo: a scheduled decision back to an open card (its votes as
        /// they were), only while it is still scheduled.
        UNDO: Exec = "UPDATE cards SET state = 'open', due_at = NULL, resumed = FALSE,
                 prompt_message_id = NULL, version = version + 1, updated_at = ?
             WHERE id = ? AND state = 'scheduled'";
        /// Binds: card. A scheduled decision whose wait a restart took up again.
        RESUMED: Exec = "UPDATE cards SET resumed = TRUE, version = version + 1
             WHERE id = ? AND state = 'scheduled' AND resumed = FALSE";
        /// In every chat, as `DECIDING`.
        UNKNOWN: Rows<CardRow> = "SELECT * FROM cards WHERE state != 'deciding'
               AND json_extract(note, '$.kind') = 'unknown' ORDER BY id",
        postgres: "SELECT * FROM cards WHERE state != 'deciding'
               AND (note::JSONB ->> 'kind') = 'unknown' ORDER BY id";
        BY_ID: Rows<CardRow> = "SELECT * FROM cards WHERE id = ?";
        /// Binds: chat, message. Whether any card of the chat knows the message: as its card, the
        /// card it replaced, or its reason prompt.
        KNOWS_MESSAGE: Scalar<i64> = "SELECT COUNT(*) FROM cards WHERE chat_id = ?1
             AND (message_id = ?2 OR previous_message_id = ?2 OR prompt_message_id = ?2)";
        /// Binds: chat, plugin, appid.
        FOR_APPLICANT: Rows<CardRow> =
            "SELECT * FROM cards WHERE chat_id = ? AND plugin = ? AND appid = ?";
        BY_PROMPT: Rows<CardRow> = "SELECT * FROM cards
             WHERE chat_id = ? AND prompt_message_id = ? AND state = 'awaiting_reason'";
        AWAITING_REASON: Scalar<i64> =
            "SELECT id FROM cards WHERE chat_id = ? AND state = 'awaiting_reason'";
        /// Binds: to, actor id, actor name, action, reason, due (to `scheduled`, else NULL),
        /// now, card, votes needed, six `from` slots, the due a scheduled card must still have
        /// (NULL: any). A card whose last outcome is unknown is never claimed: the write may have
        /// happened; nor is one whose applicant has such a card (or one being decided or
        /// scheduled) in a former team chat; nor an approval on fewer stored votes than needed;
        /// nor, at an undo window's end, a card undone and decided again (its due moved on).
        CLAIM: Scalar<i64> = concat!(
            "UPDATE cards SET state = ?, actor_id = ?, actor_name = ?, action = ?, reason = ?,
                 due_at = ?, resumed = FALSE, version = version + 1, updated_at = ? WHERE id = ?
               AND json_array_length(votes) >= ? AND ", state_in!(), "
               AND COALESCE(due_at, 0) = COALESCE(?, COALESCE(due_at, 0))
               AND (note IS NULL OR json_extract(note, '$.kind') != 'unknown')
               AND NOT EXISTS (SELECT 1 FROM cards AS o
                   WHERE o.plugin = cards.plugin AND o.appid = cards.appid
                     AND o.chat_id != cards.chat_id
                     AND (o.state IN ('deciding', 'scheduled')
                          OR json_extract(o.note, '$.kind') = 'unknown'))
             RETURNING version"
        ),
        postgres: "UPDATE cards SET state = $1, actor_id = $2, actor_name = $3, action = $4,
                 reason = $5, due_at = $6, resumed = FALSE, version = version + 1, updated_at = $7
             WHERE id = $8 AND json_array_length(votes::JSON) >= $9
               AND state IN ($10, $11, $12, $13, $14, $15)
               AND COALESCE(due_at, 0) = COALESCE($16::BIGINT, COALESCE(due_at, 0))
               AND (note IS NULL OR (note::JSONB ->> 'kind') != 'unknown')
               AND NOT EXISTS (SELECT 1 FROM cards AS o
                   WHERE o.plugin = cards.plugin AND o.appid = cards.appid
                     AND o.chat_id != cards.chat_id
                     AND (o.state IN ('deciding', 'scheduled')
                          OR (o.note::JSONB ->> 'kind') = 'unknown'))
             RETURNING version";
        /// Binds: votes (JSON), now, card, version. A vote is cast or withdrawn only on an open
        /// card at the version its voter read: never one being decided, nor one whose last
        /// outcome is unknown.
        SET_VOTES: Exec = "UPDATE cards SET votes = ?, version = version + 1, updated_at = ?
             WHERE id = ? AND version = ? AND state = 'open'
               AND (note IS NULL OR json_extract(note, '$.kind') != 'unknown')",
        postgres: "UPDATE cards SET votes = $1, version = version + 1, updated_at = $2
             WHERE id = $3 AND version = $4 AND state = 'open'
               AND (note IS NULL OR (note::JSONB ->> 'kind') != 'unknown')";
        /// Binds: state, note, now, card, version.
        SETTLE: Exec = "UPDATE cards SET state = ?, note = ?, prompt_message_id = NULL,
                 version = version + 1, updated_at = ? WHERE id = ? AND version = ?";
        /// Binds: now, card, six `from` slots.
        CANCEL_REASON: Exec = concat!(
            "UPDATE cards SET state = 'open', prompt_message_id = NULL, version = version + 1,
                 updated_at = ? WHERE id = ? AND ", state_in!()
        );
        SET_PROMPT: Exec = "UPDATE cards SET prompt_message_id = ?, updated_at = ?
             WHERE id = ? AND state = 'awaiting_reason'";
        SHOWN: Exec = "UPDATE cards SET shown_version = MAX(shown_version, ?) WHERE id = ?",
        postgres: "UPDATE cards SET shown_version = GREATEST(shown_version, $1) WHERE id = $2";
        /// In every chat: a card closed for a move is edited in the chat it was left in.
        STALE: Scalar<i64> = "SELECT id FROM cards
             WHERE message_id IS NOT NULL AND message_gone = FALSE
               AND state != 'deciding' AND shown_version < version ORDER BY id";
        MESSAGE_GONE: Exec = "UPDATE cards SET message_gone = TRUE, updated_at = ? WHERE id = ?";
    }

    /// Moving a team's state from SQLite into an empty PostgreSQL (`migrate-db`): every column of
    /// every row read on one side, written with its own id on the other.
    mod copy {
        APPLICANTS: Rows<ApplicantCopy> = "SELECT * FROM applicants ORDER BY plugin, appid";
        CARDS: Rows<CardCopy> = "SELECT * FROM cards ORDER BY id";
        AUDIT: Rows<AuditCopy> = "SELECT * FROM audit ORDER BY id";
        /// How many rows the three tables hold, and the clock: a target that is not empty (or
        /// whose clock moved) is refused.
        ROWS: Scalar<i64> = "SELECT (SELECT COUNT(*) FROM applicants)
                 + (SELECT COUNT(*) FROM cards) + (SELECT COUNT(*) FROM audit)
                 + (SELECT COUNT(*) FROM subscribers) + (SELECT COUNT(*) FROM authorizers)
                 + (SELECT tick FROM clock WHERE id = 1)";
        PUT_APPLICANT: Exec = "INSERT INTO applicants (plugin, appid, status, nickname, avatar_url,
                 reason, apply_url, applied_at, categories, first_seen, updated_at, gone, touched)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        PUT_CARD: Exec = "INSERT INTO cards (id, chat_id, plugin, appid, message_id, state, actor_id,
                 actor_name, action, reason, note, prompt_message_id, message_gone, created_at,
                 updated_at, version, shown_version, reminded_at, previous_message_id, moved,
                 votes, due_at, resumed, escalated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        SUBSCRIBERS: Rows<SubscriberCopy> = "SELECT * FROM subscribers ORDER BY user_id";
        PUT_SUBSCRIBER: Exec = "INSERT INTO subscribers (user_id, name, subscribed_at, blocked_at)
             VALUES (?, ?, ?, ?)";
        AUTHORIZERS: Rows<AuthorizerCopy> = "SELECT * FROM authorizers ORDER BY authorizer_appid";
        PUT_AUTHORIZER: Exec = "INSERT INTO authorizers
                 (authorizer_appid, configured, refresh_token, updated_at)
             VALUES (?, ?, ?, ?)";
        PUT_AUDIT: Exec = "INSERT INTO audit (id, at, plugin, appid, action, actor_id, actor_name,
                 via, reason, result, errcode, detail, attempt_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        SET_CLOCK: Exec = "UPDATE clock SET tick = ? WHERE id = 1";
        /// New ids continue after the copied ones (SQLite's AUTOINCREMENT needs nothing).
        CONTINUE_IDS: Exec = "SELECT 1",
        postgres: "SELECT setval(pg_get_serial_sequence('cards', 'id'),
                     COALESCE((SELECT MAX(id) FROM cards), 0) + 1, false),
                 setval(pg_get_serial_sequence('audit', 'id'),
                     COALESCE((SELECT MAX(id) FROM audit), 0) + 1, false)";
    }

    /// A third-party platform's refresh token per authorizer, kept across restarts.
    mod authorizers {
        READ: Rows<AuthorizerRow> = "SELECT configured, refresh_token FROM authorizers
             WHERE authorizer_appid = ?";
        /// Binds: authorizer, configured, now. The configured token, taken afresh.
        TAKE_CONFIGURED: Exec = "INSERT INTO authorizers
                 (authorizer_appid, configured, refresh_token, updated_at)
             VALUES (?1, ?2, ?2, ?3)
             ON CONFLICT (authorizer_appid) DO UPDATE SET configured = excluded.configured,
                 refresh_token = excluded.refresh_token, updated_at = excluded.updated_at",
        postgres: "INSERT INTO authorizers
                 (authorizer_appid, configured, refresh_token, updated_at)
             VALUES ($1, $2, $2, $3)
             ON CONFLICT (authorizer_appid) DO UPDATE SET configured = excluded.configured,
                 refresh_token = excluded.refresh_token, updated_at = excluded.updated_at";
        /// Binds: refresh token, now, authorizer.
        KEEP: Exec = "UPDATE authorizers SET refresh_token = ?, updated_at = ?
             WHERE authorizer_appid = ?";
    }

    /// Approvers who get a direct message for each new card and each escalation.
    mod subscribers {
        /// Binds: user, name, now. Subscribing again (after blocking the bot) starts afresh.
        SUBSCRIBE: Exec = "INSERT INTO subscribers (user_id, name, subscribed_at)
             VALUES (?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET name = excluded.name,
                 subscribed_at = excluded.subscribed_at, blocked_at = NULL";
        UNSUBSCRIBE: Exec = "DELETE FROM subscribers WHERE user_id = ?";
        ACTIVE: Rows<SubscriberRow> = "SELECT user_id, name FROM subscribers
             WHERE blocked_at IS NULL ORDER BY user_id";
        /// Binds: now, user. Recorded once: a user already marked keeps the first time.
        BLOCKED: Exec = "UPDATE subscribers SET blocked_at = ?
             WHERE user_id = ? AND blocked_at IS NULL";
    }

    /// The append-only audit log: an attempt row (its `result` is `attempt`) before WeChat is
    /// called, and result rows pointing back to it.
    mod audit {
        /// Binds: now, plugin, appid, action, actor id, actor name, via, reason.
        ATTEMPT: Scalar<i64> = "INSERT INTO audit (at, plugin, appid, action, actor_id,
                 actor_name, via, reason, result)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'attempt') RETURNING id";
        /// Binds: now, result, errcode, detail, attempt.
        RESULT: Exec = "INSERT INTO audit (at, plugin, appid, action, actor_id, actor_name, via,
                 reason, result, errcode, detail, attempt_id)
             SELECT ?, plugin, appid, action, actor_id, actor_name, via, reason, ?, ?, ?, id
             FROM audit WHERE id = ?";
        /// Binds: now, plugin, appid, action, actor id, actor name, via, reason, result (`vote`,
        /// `withdrawn`, `scheduled`, `undone`). A mark is no attempt: nothing was asked of WeChat.
        MARK: Exec = "INSERT INTO audit (at, plugin, appid, action, actor_id, actor_name, via,
                 reason, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
        /// Binds: plugin, appid.
        OPEN_ATTEMPT: Scalar<i64> = "SELECT a.id FROM audit a
             WHERE a.plugin = ? AND a.appid = ? AND a.attempt_id IS NULL AND a.result = 'attempt'
               AND NOT EXISTS (SELECT 1 FROM audit r WHERE r.attempt_id = a.id)
             ORDER BY a.id DESC LIMIT 1";
        ATTEMPT_AT: Scalar<i64> = "SELECT at FROM audit WHERE id = ?";
        /// Binds: plugin, appid.
        LAST_ATTEMPT: Scalar<Option<i64>> =
            "SELECT MAX(id) FROM audit WHERE plugin = ? AND appid = ? AND attempt_id IS NULL
               AND result = 'attempt'";
        /// The newest attempt on an applicant that took effect. Binds: plugin, appid.
        LAST_DONE: Rows<HistoryRow> = "SELECT a.at, a.plugin, a.appid, a.action, a.actor_name, a.via, a.reason,
                    r.result, r.errcode, r.detail
             FROM audit a
             JOIN audit r ON r.id = (SELECT MAX(id) FROM audit WHERE attempt_id = a.id)
             WHERE a.attempt_id IS NULL AND a.result = 'attempt' AND a.plugin = ? AND a.appid = ?
               AND r.result = 'ok'
             ORDER BY a.id DESC LIMIT 1";
        /// Binds: plugin twice (NULL: every plugin), appid twice (NULL: every applicant), limit. Attempts with their latest
        /// result, and votes and withdrawals as they are.
        HISTORY: Rows<HistoryRow> = "SELECT a.at, a.plugin, a.appid, a.action, a.actor_name, a.via, a.reason,
                    CASE WHEN a.result != 'attempt' THEN a.result
                         ELSE COALESCE(r.result, 'in-flight') END AS result, r.errcode, r.detail
             FROM audit a
             LEFT JOIN audit r ON r.id = (SELECT MAX(id) FROM audit WHERE attempt_id = a.id)
             WHERE a.attempt_id IS NULL AND (? IS NULL OR a.plugin = ?)
               AND (? IS NULL OR a.appid = ?)
             ORDER BY a.id DESC LIMIT ?",
        postgres: "SELECT a.at, a.plugin, a.appid, a.action, a.actor_name, a.via, a.reason,
                    CASE WHEN a.result != 'attempt' THEN a.result
                         ELSE COALESCE(r.result, 'in-flight') END AS result, r.errcode, r.detail
             FROM audit a
             LEFT JOIN audit r ON r.id = (SELECT MAX(id) FROM audit WHERE attempt_id = a.id)
             WHERE a.attempt_id IS NULL AND ($1::TEXT IS NULL OR a.plugin = $2)
               AND ($3::TEXT IS NULL OR a.appid = $4)
             ORDER BY a.id DESC LIMIT $5";
    }
}

/// What is wrong with `pool`'s schema for these statements, one entry per distinct problem
/// naming the first statement it breaks: a missing table or column, or a column a reader needs
/// that a statement no longer returns. Empty when every statement prepares and returns what is
/// read.
pub(crate) async fn schema_problems(pool: &sqlx::SqlitePool) -> Vec<String> {
    problems_of(pool, |check| check.sql).await
}

/// [`schema_problems`] of a PostgreSQL database, for each statement's PostgreSQL text.
pub(crate) async fn postgres_schema_problems(pool: &sqlx::PgPool) -> Vec<String> {
    problems_of(pool, |check| check.postgres).await
}

async fn problems_of<'p, DB, P>(pool: P, text: impl Fn(&Check) -> &str) -> Vec<String>
where
    DB: sqlx::Database,
    P: sqlx::Executor<'p, Database = DB> + Copy,
{
    use sqlx::{Column, Statement};

    let mut problems: Vec<(String, &'static str)> = Vec::new();
    let mut note = |problem: String, name: &'static str| {
        if !problems.iter().any(|(p, _)| *p == problem) {
            problems.push((problem, name));
        }
    };
    for (name, check) in all() {
        let prepared = match pool.prepare(text(&check)).await {
            Ok(prepared) => prepared,
            Err(e) => {
                let problem = match e.as_database_error() {
                    Some(db) => db.message().to_owned(),
                    None => e.to_string(),
                };
                note(problem, name);
                continue;
            }
        };
        let returned: Vec<&str> = prepared.columns().iter().map(|c| c.name()).collect();
        if check.returns && returned.is_empty() {
            note("returns no column".to_owned(), name);
        }
        for column in check.reads.iter().flatten() {
            if !returned.contains(column) {
                note(format!("column {column:?} is not returned"), name);
            }
        }
    }
    problems
        .into_iter()
        .map(|(problem, name)| format!("{problem} ({name})"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn every_statement_prepares_against_the_migrated_schema_and_returns_what_is_read() {
        let store = Store::in_memory().await.expect("a migrated database");
        assert!(!all().is_empty());

        let crate::store::Db::Sqlite(pool) = &store.db else {
            panic!("an in-memory store is SQLite");
        };
        let failures = schema_problems(pool).await;

        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn placeholders_become_postgres_numbered_ones_outside_quotes() {
        assert_eq!(
            postgres("UPDATE t SET a = ?, b = '?' WHERE id = ? AND c = ?"),
            "UPDATE t SET a = $1, b = '?' WHERE id = $2 AND c = $3"
        );
        assert_eq!(
            postgres("VALUES (?1, ?2, ?1) WHERE ?3 IS NULL OR x = ?"),
            "VALUES ($1, $2, $1) WHERE $3 IS NULL OR x = $4"
        );
        assert_eq!(postgres("SELECT '$.kind'"), "SELECT '$.kind'");
    }

    /// The guard on the list itself: outside this file the store writes no SQL, so every
    /// statement it runs is one the test above prepared.
    #[test]
    fn no_sql_is_written_outside_this_file() {
        let sources = [
            ("mod.rs", include_str!("mod.rs")),
            ("applicants.rs", include_str!("applicants.rs")),
            ("cards.rs", include_str!("cards.rs")),
            ("copy.rs", include_str!("copy.rs")),
            ("audit.rs", include_str!("audit.rs")),
        ];
        for (file, code) in sources {
            for keyword in ["\"SELECT", "\"UPDATE", "\"INSERT", "\"DELETE", "\"PRAGMA"] {
                assert!(!code.contains(keyword), "{file} writes SQL ({keyword})");
            }
            for call in [
                "query(\"",
                "query_as(\"",
                "query_scalar(\"",
                "format!(\"SELECT",
            ] {
                assert!(
                    !code.contains(call),
                    "{file} builds a query itself ({call})"
                );
            }
        }
    }
}
