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
