//! The store on a real PostgreSQL (issue 18): a throwaway server per test binary, started from
//! Debian's binaries on a free port in a temp dir. Skipped, saying why, where PostgreSQL is not
//! installed; under `CI=true` (`.ci/run` installs it) a missing server fails instead.

mod common;

use common::postgres::ThrowawayPostgres;
use wxplugin_bot::store::Store;

#[tokio::test]
async fn every_statement_prepares_against_the_migrated_postgres_schema() {
    let Some(server) = ThrowawayPostgres::start_or_skip("postgres::every_statement_prepares")
    else {
        return;
    };
    let url = server.database("statements").await;

    let problems = Store::migrate_postgres(&url).await.expect("migrated");

    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Migrating again changes nothing and finds nothing.
    let again = Store::migrate_postgres(&url).await.expect("migrated twice");
    assert!(again.is_empty(), "{}", again.join("\n"));
}

#[tokio::test]
async fn a_broken_postgres_schema_is_named_statement_by_statement() {
    let Some(server) = ThrowawayPostgres::start_or_skip("postgres::a_broken_schema") else {
        return;
    };
    let url = server.database("broken").await;
    Store::migrate_postgres(&url).await.expect("migrated");
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        sqlx::Executor::execute(&mut conn, "ALTER TABLE cards DROP COLUMN shown_version")
            .await
            .expect("a column dropped by hand");
    }

    let problems = Store::migrate_postgres(&url)
        .await
        .expect("migrations recorded");

    assert!(
        problems
            .iter()
            .any(|p| p.contains("shown_version") && p.contains("cards::SHOWN")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_is_one_line_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("postgres://bot:hunter2@127.0.0.1:{port}/wx");

    let error = Store::migrate_postgres(&url)
        .await
        .expect_err("nothing listens there")
        .to_string();

    assert!(!error.contains("hunter2"), "{error}");
    assert!(error.contains("bot:***@127.0.0.1"), "{error}");
    assert!(!error.contains('\n'), "{error}");
}

/// A team's SQLite state, made by the real bot: cards decided, pending and waiting, an audit log.
async fn a_team_with_history() -> (common::TestApp, String, String) {
    let mut app = common::TestApp::new(3).await;
    app.start().await;
    app.wait_cards(3).await;
    let ids = app.appids();
    let (approved, refused) = (ids[0].clone(), ids[1].clone());
    app.press(common::ALICE, &approved, "✅");
    app.wait_card_text(&approved, "Approved by @alice").await;
    app.command(common::BOB, &format!("/reject {refused} not for us"))
        .await;
    app.wait_card_text(&refused, "Rejected by @bob").await;
    app.stop().await;
    (app, approved, refused)
}

/// Every row of `table` from both databases, as text, in one order.
async fn rows_of(
    sqlite: &str,
    postgres: &str,
    table: &str,
    order: &str,
) -> (Vec<String>, Vec<String>) {
    use sqlx::Connection;
    let query = format!("SELECT * FROM {table} ORDER BY {order}");
    let mut lite = sqlx::SqliteConnection::connect(sqlite)
        .await
        .expect("sqlite");
    let lite_rows = sqlx::query(&query)
        .fetch_all(&mut lite)
        .await
        .expect("sqlite rows");
    let mut pg = sqlx::PgConnection::connect(postgres)
        .await
        .expect("postgres");
    let pg_rows = sqlx::query(&query)
        .fetch_all(&mut pg)
        .await
        .expect("postgres rows");
    (
        lite_rows.iter().map(row_text).collect(),
        pg_rows.iter().map(row_text).collect(),
    )
}

/// A row as text, each column as the integer (flags and message ids widened) or text it holds.
fn row_text<'r, R>(row: &'r R) -> String
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i32>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<bool>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    use sqlx::Column;
    // By column name: the backends' tables may order their columns differently (PostgreSQL
    // adds a column at the end where SQLite rebuilds the table).
    let mut columns: Vec<(usize, &str)> = row
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.name()))
        .collect();
    columns.sort_by_key(|(_, name)| *name);
    columns
        .into_iter()
        .map(|(i, name)| {
            let value = row
                .try_get::<Option<i64>, _>(i)
                .map(|v| format!("{v:?}"))
                .or_else(|_| {
                    row.try_get::<Option<i32>, _>(i)
                        .map(|v| format!("{:?}", v.map(i64::from)))
                })
                .or_else(|_| {
                    row.try_get::<Option<bool>, _>(i)
                        .map(|v| format!("{:?}", v.map(i64::from)))
                })
                .or_else(|_| {
                    row.try_get::<Option<String>, _>(i)
                        .map(|v| format!("{v:?}"))
                })
                .unwrap_or_default();
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join("|")
}

#[tokio::test]
async fn migrate_db_copies_every_row_and_the_clock_into_an_empty_postgres() {
    let Some(server) = ThrowawayPostgres::start_or_skip("postgres::migrate_db_copies") else {
        return;
    };
    let (mut app, approved, refused) = a_team_with_history().await;
    let target = server.database("moved").await;
    // A third-party platform's refresh token, kept as the bot keeps it.
    let store = wxplugin_bot::store::Store::open(&app.vars["DATABASE_URL"])
        .await
        .expect("the team's database");
    store
        .authorizer_refresh_token("wx5a4db0c0ffee0001", "refreshtoken@@@configured")
        .await
        .expect("taken");
    store
        .keep_refresh_token("wx5a4db0c0ffee0001", "refreshtoken@@@returned")
        .await
        .expect("kept");
    store.close().await;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wxplugin-bot"))
        .args(["migrate-db", "--to", &target])
        .env("DATABASE_URL", app.vars["DATABASE_URL"].clone())
        .output()
        .expect("the binary runs");

    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("3 applicants, 3 cards"), "{said}");
    assert!(said.contains("1 kept refresh tokens"), "{said}");
    for (table, order) in [
        ("applicants", "appid"),
        ("cards", "id"),
        ("audit", "id"),
        ("clock", "id"),
        ("authorizers", "authorizer_appid"),
    ] {
        let (lite, pg) = rows_of(&app.vars["DATABASE_URL"], &target, table, order).await;
        assert!(
            !lite.is_empty(),
            "{table} is empty: the test copied nothing"
        );
        assert_eq!(lite, pg, "{table} differs");
    }
    // New rows continue after the copied ids.
    use sqlx::Connection;
    let mut pg = sqlx::PgConnection::connect(&target)
        .await
        .expect("postgres");
    let next: i64 = sqlx::query_scalar(
        "INSERT INTO audit (at, appid, action, via, result) VALUES (0, 'wx0', 'approve', 'command', 'attempt') RETURNING id",
    )
    .fetch_one(&mut pg)
    .await
    .expect("a new audit row");
    let max_copied: i64 = sqlx::query_scalar("SELECT MAX(id) FROM audit WHERE appid != 'wx0'")
        .fetch_one(&mut pg)
        .await
        .expect("max");
    assert_eq!(next, max_copied + 1);
    pg.close().await.expect("closed");

    // The bot starts on the copy with every card still live: no card is posted again, the
    // pending one's ✅ decides, the decided ones stay as they were.
    let cards_before: Vec<i32> = app.cards().iter().map(|m| m.message_id).collect();
    app.vars.insert("DATABASE_URL", target.clone());
    app.restart_stopped().await;
    app.command(common::ALICE, "/refresh").await;
    let pending = app
        .appids()
        .into_iter()
        .find(|a| *a != approved && *a != refused)
        .expect("a pending applicant");
    app.press(common::BOB, &pending, "✅");
    app.wait_card_text(&pending, "Approved by @bob").await;
    app.stop().await;

    let cards_after: Vec<i32> = app.cards().iter().map(|m| m.message_id).collect();
    assert_eq!(
        cards_after, cards_before,
        "a card was posted again after the move"
    );
    assert_eq!(
        app.wechat_calls("dev_agree"),
        2,
        "one approval before, one after"
    );
    let history: Vec<String> = {
        let mut pg = sqlx::PgConnection::connect(&target)
            .await
            .expect("postgres");
        sqlx::query_scalar("SELECT result FROM audit WHERE appid = $1 ORDER BY id")
            .bind(&pending)
            .fetch_all(&mut pg)
            .await
            .expect("audit")
    };
    assert_eq!(
        history,
        ["attempt", "ok"],
        "the decision is recorded on PostgreSQL"
    );
}

#[tokio::test]
async fn migrate_db_refuses_a_target_that_holds_anything_and_changes_nothing_there() {
    let Some(server) = ThrowawayPostgres::start_or_skip("postgres::migrate_db_refuses") else {
        return;
    };
    let (app, _, _) = a_team_with_history().await;
    let target = server.database("taken").await;
    let bin = env!("CARGO_BIN_EXE_wxplugin-bot");
    let first = std::process::Command::new(bin)
        .args(["migrate-db", "--to", &target])
        .env("DATABASE_URL", app.vars["DATABASE_URL"].clone())
        .output()
        .expect("runs");
    assert!(first.status.success());

    let second = std::process::Command::new(bin)
        .args(["migrate-db", "--to", &target])
        .env("DATABASE_URL", app.vars["DATABASE_URL"].clone())
        .output()
        .expect("runs");

    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{said}");
    assert!(said.contains("already holds"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    let (lite, pg) = rows_of(&app.vars["DATABASE_URL"], &target, "audit", "id").await;
    assert_eq!(lite, pg, "the refused copy changed the target");
}

#[test]
fn migrate_db_names_a_wrong_target_or_a_missing_source_in_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = env!("CARGO_BIN_EXE_wxplugin-bot");
    let missing = format!("sqlite:{}", dir.path().join("nothing.db").display());
    let out = std::process::Command::new(bin)
        .args(["migrate-db", "--to", "postgres://bot:pw@127.0.0.1:1/wx"])
        .env("DATABASE_URL", &missing)
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("there is no database at"), "{said}");
    assert!(
        !dir.path().join("nothing.db").exists(),
        "a source was created"
    );

    let out = std::process::Command::new(bin)
        .args(["migrate-db", "--to", "sqlite:other.db"])
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.path().join("b.db").display()),
        )
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("must be a PostgreSQL database"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "{said}");
}

#[tokio::test]
async fn a_leader_whose_lease_was_taken_over_cannot_write_and_a_replica_not_leading_can() {
    let Some(server) = ThrowawayPostgres::start_or_skip("postgres::fencing") else {
        return;
    };
    let url = server.database("fencing").await;
    let old = Store::open(&url).await.expect("the old leader's store");
    let new = Store::open(&url).await.expect("the new leader's store");
    let appid = wxplugin_bot::domain::applicant::AppId::parse("wx5a4db0c0ffee0001").expect("id");
    let short = std::time::Duration::from_millis(300);

    let epoch = old
        .take_lease("old", short, false)
        .await
        .expect("take")
        .expect("a free lease");
    old.lead(epoch).await.expect("lead");
    old.touch(&appid, &appid).await.expect("the leader writes");

    // The old leader is paused past its lease; another replica takes over.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let taken = new
        .take_lease("new", std::time::Duration::from_secs(60), false)
        .await
        .expect("take")
        .expect("an ended lease is taken");
    assert_eq!(taken, epoch + 1);
    new.lead(taken).await.expect("lead");

    let fenced = old
        .touch(&appid, &appid)
        .await
        .expect_err("the stale leader's write");
    assert!(fenced.is_fenced(), "refused by the fence: {fenced}");
    assert!(
        !old.renew_lease("old", epoch, short).await.expect("renew"),
        "nor can it renew"
    );
    new.touch(&appid, &appid)
        .await
        .expect("the new leader writes");

    // Stepped down, it writes as any replica deciding a press does: unfenced, guarded by the
    // compare-and-swaps of each operation.
    old.follow().await;
    old.touch(&appid, &appid)
        .await
        .expect("a replica not leading writes");
    old.close().await;
    new.close().await;
}

#[tokio::test]
async fn a_postgresql_that_requires_tls_is_reached_over_tls() {
    // Managed PostgreSQL services take only TLS connections: `sslmode=require` (or
    // `verify-full` with the provider's CA) in DATABASE_URL must work.
    let server = match ThrowawayPostgres::start_with_tls() {
        Ok(server) => server,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("postgres::tls: {e} (CI runs every PostgreSQL test)")
        }
        Err(e) => {
            eprintln!("SKIPPED postgres::tls: {e}");
            return;
        }
    };
    let url = format!("{}?sslmode=require", server.database("tls").await);

    let store = Store::open(&url).await.expect("opened over TLS");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .expect("pg_stat_ssl");
    assert!(encrypted, "the connection is encrypted");
    assert_eq!(store.backend(), "PostgreSQL");
    assert!(store.lease().await.is_ok(), "the store works over TLS");
    pool.close().await;
    store.close().await;
}
