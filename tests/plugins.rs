//! Several plugins in one bot (issue 20): the store knows an applicant by the plugin it applied
//! to and its own appid. A database an older version kept, from before plugins were named, is
//! opened by this version with nothing lost: its rows become the one configured plugin's.
//! Runs on SQLite, and on PostgreSQL with `WXBOT_TEST_DB=postgres`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use sqlx::Connection;
use wxplugin_bot::testbed::fake_telegram::FakeMessage;
use wxplugin_bot::testbed::sandbox::{Fault, NewApplicant};

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

/// The first plugin's name: the test app's own sandbox.
const MAPS: &str = "Maps";
/// The second plugin's name: a sandbox of its own, as a plugin whose `api_base` points at
/// another WeChat endpoint has.
const PAY: &str = "Pay";
/// The second plugin's AppID.
const PAY_APPID: &str = "wx5a4db0c0ffee0002";

/// The second plugin's WeChat, with `applicants` pending.
async fn pay_sandbox(applicants: usize) -> wxplugin_bot::testbed::sandbox::RunningSandbox {
    wxplugin_bot::testbed::sandbox::Sandbox::spawn(wxplugin_bot::testbed::sandbox::SandboxConfig {
        appid: PAY_APPID.to_owned(),
        secret: "pay-sandbox-secret".to_owned(),
        applicants,
        seed: 7,
        ..wxplugin_bot::testbed::sandbox::SandboxConfig::default()
    })
    .await
    .expect("the second sandbox starts")
}

/// Configures `app` by a `PLUGINS_FILE` of two plugins — its own sandbox as Maps, `pay` as
/// Pay — in place of the single plugin's variables; their AppSecrets come from variables the
/// file names.
fn serve_two_plugins(app: &mut TestApp, pay: &wxplugin_bot::testbed::sandbox::RunningSandbox) {
    serve_two_plugins_with(app, pay, "");
}

/// [`serve_two_plugins`], with `pay_keys` (TOML lines) added to Pay's table.
fn serve_two_plugins_with(
    app: &mut TestApp,
    pay: &wxplugin_bot::testbed::sandbox::RunningSandbox,
    pay_keys: &str,
) {
    let maps = wxplugin_bot::testbed::sandbox::SandboxConfig::default();
    let file = format!(
        r#"[[plugin]]
name = "{MAPS}"
appid = "{}"
secret_env = "MAPS_SECRET"
api_base = "{}"

[[plugin]]
name = "{PAY}"
appid = "{PAY_APPID}"
secret_env = "PAY_SECRET"
api_base = "{}"
{pay_keys}
"#,
        maps.appid, app.wx.base_url, pay.base_url
    );
    let path = app.db.path().join("plugins.toml");
    std::fs::write(&path, file).expect("plugins file written");
    for var in ["WECHAT_APPID", "WECHAT_SECRET", "WECHAT_API_BASE"] {
        app.vars.remove(var);
    }
    app.vars.insert("PLUGINS_FILE", path.display().to_string());
    app.vars.insert("MAPS_SECRET", maps.secret);
    app.vars
        .insert("PAY_SECRET", "pay-sandbox-secret".to_owned());
}

/// The live card of `appid` in the team chat under `plugin`'s name.
fn card_of(app: &TestApp, plugin: &str, appid: &str) -> Option<FakeMessage> {
    app.cards().into_iter().find(|m| {
        m.plain_text.contains(appid) && m.plain_text.contains(&format!("Plugin: {plugin}\n"))
    })
}

/// Waits until `plugin`'s card of `appid` shows `needle`.
async fn wait_card_of(app: &TestApp, plugin: &str, appid: &str, needle: &str) -> FakeMessage {
    let shown = app
        .tg
        .fake
        .wait_until(WAIT, |_| {
            card_of(app, plugin, appid).is_some_and(|m| m.plain_text.contains(needle) && armed(&m))
        })
        .await;
    assert!(
        shown,
        "{plugin}'s card of {appid} never showed {needle:?}: {:?}",
        card_of(app, plugin, appid).map(|m| m.plain_text)
    );
    card_of(app, plugin, appid).expect("the card")
}

#[tokio::test]
async fn two_plugins_in_one_chat_each_decide_only_their_own_applicants() {
    let mut app = TestApp::new(2).await;
    let pay = pay_sandbox(1).await;
    let maps_ids = app.appids();
    let both = maps_ids[0].clone();
    // The same mini-program applied to both plugins.
    pay.sandbox.add_applicant(NewApplicant {
        appid: Some(both.clone()),
        ..NewApplicant::default()
    });
    serve_two_plugins(&mut app, &pay);
    app.start().await;
    app.wait_cards(4).await;

    // Every card names its plugin; the shared appid has one card per plugin.
    for card in app.cards() {
        assert!(
            card.plain_text.contains(&format!("Plugin: {MAPS}\n"))
                || card.plain_text.contains(&format!("Plugin: {PAY}\n")),
            "{}",
            card.plain_text
        );
    }
    let pays = card_of(&app, PAY, &both).expect("Pay's card of the shared applicant");
    assert!(card_of(&app, MAPS, &both).is_some(), "Maps' card of it");

    // Approving it for Pay approves it in Pay's WeChat only.
    app.tg
        .fake
        .user_presses(TEAM, pays.message_id, ALICE, "✅")
        .expect("✅ on Pay's card");
    wait_card_of(&app, PAY, &both, "Approved by @alice").await;
    assert_eq!(pay.sandbox.applicant(&both).map(|a| a.status), Some(2));
    assert_eq!(app.status(&both), Some(1), "still pending for Maps");
    let maps_card = card_of(&app, MAPS, &both).expect("Maps' card");
    assert!(
        button_labels(&maps_card)
            .iter()
            .any(|b| b.starts_with('✅')),
        "Maps' card still offers a decision: {:?}",
        maps_card.buttons
    );

    // A bare appid listed by both plugins asks which; naming the plugin decides it there.
    let asked = app.command(ALICE, &format!("/approve {both}")).await;
    assert!(
        asked
            .plain_text
            .contains(&format!("/approve {MAPS} {both}"))
            && asked.plain_text.contains(&format!("/approve {PAY} {both}")),
        "{}",
        asked.plain_text
    );
    assert_eq!(
        app.status(&both),
        Some(1),
        "nothing decided on an ambiguous command"
    );
    let unknown = app.command(ALICE, &format!("/approve Mpas {both}")).await;
    assert!(
        unknown.plain_text.contains("No plugin is called 'Mpas'"),
        "{}",
        unknown.plain_text
    );
    app.command(ALICE, &format!("/approve {MAPS} {both}")).await;
    wait_card_of(&app, MAPS, &both, "Approved by @alice").await;
    assert_eq!(app.status(&both), Some(2));
    // A bare appid only one plugin lists needs no name.
    let only_pay = pay
        .sandbox
        .applicants()
        .into_iter()
        .map(|a| a.appid)
        .find(|a| *a != both)
        .expect("Pay's own applicant");
    app.command(ALICE, &format!("/reject {only_pay} not for us"))
        .await;
    wait_card_of(&app, PAY, &only_pay, "Rejected by @alice").await;
    assert_eq!(pay.sandbox.applicant(&only_pay).map(|a| a.status), Some(3));

    // The commands that read say which plugin each line is about.
    let pending = app.command(ALICE, "/pending").await;
    assert!(
        pending.plain_text.contains(&format!("Plugin: {MAPS}"))
            && pending.plain_text.contains(&maps_ids[1]),
        "{}",
        pending.plain_text
    );
    let status = app.command(ALICE, "/status").await;
    for name in [MAPS, PAY] {
        assert!(
            status.plain_text.contains(&format!("Plugin: {name}")),
            "{}",
            status.plain_text
        );
    }
    let history = app.command(ALICE, &format!("/history {PAY}")).await;
    assert!(
        history.plain_text.contains(&format!("{both} · {PAY}"))
            && !history.plain_text.contains(&format!("· {MAPS}")),
        "{}",
        history.plain_text
    );
    app.stop().await;
}

#[tokio::test]
async fn one_plugins_slow_wechat_never_holds_up_anothers_newcomer() {
    let mut app = TestApp::new(1).await;
    let pay = pay_sandbox(1).await;
    serve_two_plugins(&mut app, &pay);
    app.vars.insert("POLL_INTERVAL_SECS", "5".to_owned());
    // Maps' WeChat answers its listings, but only after 20 s each (within the 30 s timeout).
    app.vars.insert("WECHAT_TIMEOUT_SECS", "30".to_owned());
    app.start().await;
    app.wait_cards(2).await;
    app.wx.sandbox.inject(wx_fault(
        "dev_apply_list",
        Fault::Delay(Duration::from_secs(20)),
        1000,
    ));

    let newcomer = pay.sandbox.add_applicant(NewApplicant::default());
    let since = std::time::Instant::now();
    let carded = app
        .tg
        .fake
        .wait_until(Duration::from_secs(30), |_| {
            card_of(&app, PAY, &newcomer).is_some_and(|m| armed(&m))
        })
        .await;
    let took = since.elapsed();

    assert!(carded, "Pay's newcomer was never carded");
    assert!(
        took <= Duration::from_secs(10),
        "carded after {took:?}: more than two poll intervals while Maps' WeChat was slow"
    );
    app.stop().await;
}

#[tokio::test]
async fn healthz_fails_when_one_plugins_polls_fail_and_names_it() {
    let mut app = TestApp::new(1).await;
    let pay = pay_sandbox(1).await;
    serve_two_plugins(&mut app, &pay);
    let process = app
        .start_process(
            1,
            &[
                ("METRICS_ADDR", "127.0.0.1:0"),
                ("POLL_INTERVAL_SECS", "5"),
                ("POLL_ALERT_AFTER", "100"),
            ],
        )
        .await;
    let base = metrics_base(&process).await;
    app.wait_cards(2).await;
    let (status, _) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    pay.sandbox
        .inject(wx_fault("any", Fault::Http(502), 10_000));

    let (status, body) = healthz_once_failing(&base).await;

    assert_eq!(status, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        health["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("plugin {PAY}: ")) && e.contains("502")),
        "{body}"
    );
    let plugins = health["plugins"].as_array().expect("each plugin's health");
    let ok_of = |name: &str| {
        plugins
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["ok"].clone())
    };
    assert_eq!(ok_of(MAPS), Some(serde_json::Value::Bool(true)), "{body}");
    assert_eq!(ok_of(PAY), Some(serde_json::Value::Bool(false)), "{body}");
    // Metrics tell the plugins apart.
    let (_, text) = get(&format!("{base}/metrics")).await;
    assert!(
        metric(
            &text,
            &format!(r#"wxplugin_polls_total{{plugin="{PAY}",result="error"}}"#)
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            &format!(r#"wxplugin_polls_total{{plugin="{MAPS}",result="ok"}}"#)
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    drop(process);
}

#[tokio::test]
async fn a_plugin_taken_out_of_the_file_has_its_cards_closed_and_nothing_sent_for_it() {
    let mut app = TestApp::new(1).await;
    let pay = pay_sandbox(1).await;
    serve_two_plugins(&mut app, &pay);
    app.start().await;
    app.wait_cards(2).await;
    let maps_appid = app.appids()[0].clone();
    let pay_appid = pay.sandbox.applicants()[0].appid.clone();
    app.stop().await;

    // The service provider's client leaves: Pay is taken out of the file.
    let path = app.vars["PLUGINS_FILE"].clone();
    let file = std::fs::read_to_string(&path).expect("plugins file");
    let maps_only = file
        .split("\n\n")
        .next()
        .expect("the first plugin's table")
        .to_owned();
    std::fs::write(&path, maps_only).expect("rewritten");
    app.restart_stopped().await;

    let closed = app
        .tg
        .fake
        .wait_until(WAIT, |_| {
            app.card_for(&pay_appid).is_some_and(|m| {
                m.plain_text
                    .contains(&format!("This bot no longer serves plugin {PAY_APPID}"))
                    && m.buttons.is_empty()
            })
        })
        .await;
    assert!(
        closed,
        "Pay's card: {:?}",
        app.card_for(&pay_appid).map(|m| (m.plain_text, m.buttons))
    );
    // Maps' card still decides; nothing is listed or decided for Pay.
    assert!(armed(&app.card(&maps_appid)));
    let pending = app.command(ALICE, "/pending").await;
    assert!(
        pending.plain_text.contains(&maps_appid) && !pending.plain_text.contains(&pay_appid),
        "{}",
        pending.plain_text
    );
    let refused = app.command(ALICE, &format!("/approve {pay_appid}")).await;
    assert!(
        refused
            .plain_text
            .contains(&format!("No applicant {pay_appid} is known")),
        "{}",
        refused.plain_text
    );
    // A press forged with the old ✅'s data does nothing either.
    let card = app.card(&pay_appid);
    let id: i64 = sqlx::query_scalar("SELECT id FROM cards WHERE plugin = $1 AND appid = $2")
        .bind(PAY_APPID)
        .bind(&pay_appid)
        .fetch_one(&app.database().await)
        .await
        .expect("Pay's card row");
    let forged = app
        .tg
        .fake
        .press_raw(TEAM, card.message_id, ALICE, &format!("ap:{id}"));
    app.answer(&forged).await;
    assert_eq!(
        pay.sandbox.applicant(&pay_appid).map(|a| a.status),
        Some(1),
        "nothing was sent for Pay"
    );
    assert_eq!(
        pay.sandbox
            .calls()
            .iter()
            .filter(|c| c.action.as_deref() == Some("dev_agree"))
            .count(),
        0
    );
    app.stop().await;

    // Put back, its applicant gets a card that decides again.
    std::fs::write(&path, file).expect("restored");
    app.restart_stopped().await;
    let again = app
        .tg
        .fake
        .wait_until(WAIT, |_| {
            app.cards()
                .iter()
                .any(|m| m.plain_text.contains(&pay_appid) && armed(m))
        })
        .await;
    assert!(
        again,
        "Pay's applicant was not carded again: {:?}",
        app.cards()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_plugin_with_approvers_of_its_own_is_decided_by_them_alone() {
    let mut app = TestApp::new(1).await;
    let pay = pay_sandbox(1).await;
    // Maps: APPROVER_IDS (Alice and Bob); Pay: Bob alone.
    serve_two_plugins_with(&mut app, &pay, &format!("approver_ids = [{BOB}]"));
    app.start().await;
    app.wait_cards(2).await;
    let pay_appid = pay.sandbox.applicants()[0].appid.clone();
    let maps_appid = app.appids()[0].clone();
    let pays = card_of(&app, PAY, &pay_appid).expect("Pay's card");

    // Alice decides for Maps, not for Pay: her ✅ on Pay's card and her command do nothing.
    let pressed = app
        .tg
        .fake
        .user_presses(TEAM, pays.message_id, ALICE, "✅")
        .expect("✅ on Pay's card");
    let (alert, _) = app.answer(&pressed).await;
    assert!(
        alert.as_deref().is_some_and(|a| a.contains("approver")),
        "{alert:?}"
    );
    let refused = app
        .command(ALICE, &format!("/approve {PAY} {pay_appid}"))
        .await;
    assert!(
        refused
            .plain_text
            .contains("Only approvers can decide on plugin applications."),
        "{}",
        refused.plain_text
    );
    assert_eq!(pay.sandbox.applicant(&pay_appid).map(|a| a.status), Some(1));
    app.press(ALICE, &maps_appid, "✅");
    wait_card_of(&app, MAPS, &maps_appid, "Approved by @alice").await;

    // Bob decides for Pay.
    app.tg
        .fake
        .user_presses(TEAM, pays.message_id, BOB, "✅")
        .expect("✅ on Pay's card");
    wait_card_of(&app, PAY, &pay_appid, "Approved by @bob").await;
    assert_eq!(pay.sandbox.applicant(&pay_appid).map(|a| a.status), Some(2));
    app.stop().await;
}
