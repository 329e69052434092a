//! Several plugins in one bot (issue 20): the store knows an applicant by the plugin it applied
//! to and its own appid. A database an older version kept, from before plugins were named, is
//! opened by this version with nothing lost: its rows become the one configured plugin's.
//! Runs on SQLite, and on PostgreSQL with `WXBOT_TEST_DB=postgres`.

mod common;

use std::path::Path;

use common::*;
use sqlx::Connection;

/// The last migration of the schema before plugins were named, per backend.
const LAST_UNNAMED_SQLITE: i64 = 10;
const LAST_UNNAMED_POSTGRES: i64 = 6;

/// Tables the older schema has, parents first.
const TABLES: [&str; 7] = [
    "applicants",
    "cards",
    "audit",
    "clock",
    "leader_lease",
    "subscribers",
    "authorizers",
];

/// A new database at the schema before plugins were named (this repository's own migrations up
/// to that point, as the older version ran them), holding every row of `from` in that schema's
/// columns: what that version would have left. Returns its URL.
async fn as_the_older_version_kept(app: &TestApp, from: &str) -> String {
    if app.on_postgres() {
        let url = common::postgres::fresh_database().await;
        let migrator = older_migrations("migrations-postgres", LAST_UNNAMED_POSTGRES).await;
        let mut target = sqlx::PgConnection::connect(&url).await.expect("target");
        migrator.run(&mut target).await.expect("older migrations");
        let mut source = sqlx::PgConnection::connect(from).await.expect("source");
        for table in TABLES {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut target)
                .await
                .expect("emptied");
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT row_to_json(t)::TEXT FROM {table} t ORDER BY 1"
            ))
            .fetch_all(&mut source)
            .await
            .expect("rows read");
            for row in rows {
                // The older table's columns only: the plugin column is not among them.
                sqlx::query(&format!(
                    "INSERT INTO {table} SELECT * FROM json_populate_record(NULL::{table}, $1::JSON)"
                ))
                .bind(row)
                .execute(&mut target)
                .await
                .expect("row written");
            }
        }
        for table in ["cards", "audit"] {
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                     COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ))
            .execute(&mut target)
            .await
            .expect("ids continue");
        }
        url
    } else {
        let path = app.db.path().join("older.db");
        let url = format!("sqlite:{}?mode=rwc", path.display());
        let migrator = older_migrations("migrations", LAST_UNNAMED_SQLITE).await;
        let mut target = sqlx::SqliteConnection::connect(&url).await.expect("target");
        migrator.run(&mut target).await.expect("older migrations");
        let source = from.trim_start_matches("sqlite:");
        sqlx::query("ATTACH DATABASE $1 AS newer")
            .bind(source)
            .execute(&mut target)
            .await
            .expect("attached");
        for table in TABLES {
            let columns: Vec<String> =
                sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .fetch_all(&mut target)
                    .await
                    .expect("columns");
            let columns = columns.join(", ");
            sqlx::query(&format!(
                "INSERT OR REPLACE INTO main.{table} ({columns}) SELECT {columns} FROM newer.{table}"
            ))
            .execute(&mut target)
            .await
            .expect("rows copied");
        }
        target.close().await.expect("closed");
        format!("sqlite:{}", path.display())
    }
}

/// This repository's migrations in `dir` up to `last`.
async fn older_migrations(dir: &str, last: i64) -> sqlx::migrate::Migrator {
    let mut migrator =
        sqlx::migrate::Migrator::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
            .await
            .expect("migrations read");
    let older: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= last)
        .cloned()
        .collect();
    assert_eq!(older.len() as i64, last, "the older version's migrations");
    migrator.migrations = older.into();
    migrator
}

#[tokio::test]
async fn a_database_from_before_plugins_were_named_is_opened_with_nothing_lost() {
    let mut app = TestApp::new(3).await;
    let ids = app.appids();
    app.start().await;
    app.wait_cards(3).await;
    app.press(ALICE, &ids[0], "✅");
    app.wait_card_text(&ids[0], "✅ Approved by @alice").await;
    app.stop().await;
    let newer = app.vars["DATABASE_URL"].clone();
    let older = as_the_older_version_kept(&app, &newer).await;
    let sent = app.tg.fake.call_count("sendMessage");

    app.vars.insert("DATABASE_URL", older);
    app.restart_stopped().await;
    app.command(ALICE, "/refresh").await;

    // The cards it kept are its cards: none posted again (the one message sent is /refresh's
    // reply), and their buttons still decide.
    assert_eq!(
        app.tg.fake.call_count("sendMessage") - sent,
        1,
        "messages sent since the restart: {:?}",
        app.tg
            .fake
            .bot_messages(TEAM)
            .last()
            .map(|m| m.plain_text.clone())
    );
    assert_eq!(app.cards().len(), 3, "cards in the chat");
    app.press(ALICE, &ids[1], "✅");
    app.wait_card_text(&ids[1], "✅ Approved by @alice").await;
    assert_eq!(app.status(&ids[1]), Some(2), "approved in WeChat");
    assert!(
        app.card(&ids[0]).plain_text.contains("Approved by @alice"),
        "the decided card still says so"
    );
    // The audit log it kept answers /history.
    let history = app.command(ALICE, "/history").await;
    for appid in &ids[..2] {
        assert!(
            history.plain_text.contains(appid.as_str()),
            "{appid} in {}",
            history.plain_text
        );
    }
    // Every kept row now names the plugin.
    let db = app.database().await;
    for table in ["applicants", "cards", "audit"] {
        let unnamed: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE plugin != $1"))
                .bind(&app.vars["WECHAT_APPID"])
                .fetch_one(&db)
                .await
                .expect("counted");
        assert_eq!(unnamed, 0, "{table} rows not named for the plugin");
    }
}
