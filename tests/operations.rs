//! Running it in production: reminders of waiting applicants, Prometheus metrics and the health
//! check, and webhook mode with its secret token — the bot against the WeChat sandbox and the
//! fake Bot API.

mod common;

use std::time::Duration;

use common::*;
use wxplugin_bot::testbed::sandbox::{Fault, NewApplicant};

fn reminders(app: &TestApp) -> Vec<wxplugin_bot::testbed::fake_telegram::FakeMessage> {
    app.tg
        .fake
        .bot_messages(TEAM)
        .into_iter()
        .filter(|m| m.plain_text.starts_with('⏰'))
        .collect()
}

async fn wait_reminders(app: &TestApp, n: usize) {
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |_| reminders(app).len() >= n)
        .await;
    assert!(ok, "expected {n} reminders, have {}", reminders(app).len());
}

#[tokio::test]
async fn waiting_applicants_are_listed_once_a_day_with_links_to_their_cards() {
    let mut app = TestApp::new(0).await;
    let now = jiff::Timestamp::now().as_second();
    let old = app.wx.sandbox.add_applicant(NewApplicant {
        nickname: Some("Old <one> & co".into()),
        create_time: Some(now - 30 * 3600),
        ..NewApplicant::default()
    });
    let fresh = app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(now - 3600),
        ..NewApplicant::default()
    });
    let decided = app.wx.sandbox.add_applicant(NewApplicant {
        status: Some(2),
        create_time: Some(now - 90 * 3600),
        ..NewApplicant::default()
    });

    app.start().await;
    app.wait_cards(2).await;
    wait_reminders(&app, 1).await;
    let reminder = reminders(&app).remove(0);
    assert!(
        reminder
            .plain_text
            .contains("Still waiting for a decision after more than 24 h (1):"),
        "{}",
        reminder.plain_text
    );
    assert!(reminder.plain_text.contains("Old <one> & co"));
    assert!(reminder.text.contains("Old &lt;one&gt; &amp; co"));
    assert!(reminder.plain_text.contains(&old));
    assert!(reminder.plain_text.contains("waiting 30 h"));
    assert!(!reminder.plain_text.contains(&fresh));
    assert!(!reminder.plain_text.contains(&decided));
    let card = app.card(&old);
    let link = format!("https://t.me/c/1234567890/{}", card.message_id);
    assert!(reminder.text.contains(&link), "{}", reminder.text);

    // A restart does not repeat it; an applicant that became due since is listed alone.
    let later = app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(now - 50 * 3600),
        ..NewApplicant::default()
    });
    app.restart().await;
    wait_reminders(&app, 2).await;
    let second = reminders(&app).remove(1);
    assert!(second.plain_text.contains(&later), "{}", second.plain_text);
    assert!(second.plain_text.contains("waiting 2 days"));
    assert!(!second.plain_text.contains(&old), "{}", second.plain_text);
    app.stop().await;
}

#[tokio::test]
async fn reminders_follow_bot_lang_and_can_be_turned_off() {
    let mut app = TestApp::new(0).await;
    let now = jiff::Timestamp::now().as_second();
    app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(now - 80 * 3600),
        ..NewApplicant::default()
    });
    app.vars.insert("BOT_LANG", "zh".to_owned());
    app.vars.insert("REMIND_AFTER_HOURS", "48".to_owned());
    app.start().await;
    wait_reminders(&app, 1).await;
    let text = reminders(&app).remove(0).plain_text;
    assert!(text.contains("已等待超过 48 小时"), "{text}");
    assert!(text.contains("已等待 3 天"), "{text}");

    // Off: a second bot on a fresh database, same applicants, says nothing of them.
    let mut quiet = TestApp::new(0).await;
    quiet.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(now - 80 * 3600),
        ..NewApplicant::default()
    });
    quiet.vars.insert("REMIND_AFTER_HOURS", "0".to_owned());
    quiet.start().await;
    quiet.wait_cards(1).await;
    // With reminders on, the reminder follows the first poll's cards within milliseconds.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(reminders(&quiet).is_empty());
    quiet.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_what_the_bot_did_and_health_follows_polls() {
    let app = TestApp::new(2).await;
    let process = app
        .start_process(1, &[("METRICS_ADDR", "127.0.0.1:0")])
        .await;
    let base = metrics_base(&process).await;
    app.wait_cards(2).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "✅ Approved by @alice").await;
    let refused = app.appids()[1].clone();
    app.wx
        .sandbox
        .inject(wx_fault("dev_agree", Fault::Errcode(89237), 1));
    app.press(BOB, &refused, "✅");
    app.wait_card_text(&refused, "89237").await;
    app.command(ALICE, "/refresh").await;

    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(
        metric(
            &text,
            &format!(r#"wxplugin_cards_posted_total{{plugin="{}"}}"#, plugin())
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            &format!(
                r#"wxplugin_decisions_total{{plugin="{}",action="approve",result="ok"}}"#,
                plugin()
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            &format!(
                r#"wxplugin_decisions_total{{plugin="{}",action="approve",result="error"}}"#,
                plugin()
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            &format!(
                r#"wxplugin_wechat_calls_total{{plugin="{}",action="dev_agree",errcode="89237"}}"#,
                plugin()
            )
        ),
        Some(1.0)
    );
    let list_calls = metric(
        &text,
        &format!(
            r#"wxplugin_wechat_calls_total{{plugin="{}",action="dev_apply_list",errcode="0"}}"#,
            plugin()
        ),
    )
    .expect("list calls counted");
    assert_eq!(list_calls as usize, app.wechat_calls("dev_apply_list"));
    assert_eq!(
        metric(
            &text,
            &format!(
                r#"wxplugin_applicants{{plugin="{}",status="pending"}}"#,
                plugin()
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            &format!(
                r#"wxplugin_applicants{{plugin="{}",status="approved"}}"#,
                plugin()
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            &format!(
                r#"wxplugin_token_refreshes_total{{plugin="{}",mode="stable",result="ok"}}"#,
                plugin()
            )
        ),
        Some(1.0)
    );
    assert!(
        metric(
            &text,
            &format!(
                r#"wxplugin_polls_total{{plugin="{}",result="ok"}}"#,
                plugin()
            )
        )
        .is_some_and(|n| n >= 2.0)
    );
    assert!(text.contains(&format!(
        r#"wxplugin_poll_duration_seconds_bucket{{plugin="{}",le="0.1"}}"#,
        plugin()
    )));
    let (status, body) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(health["ok"], true);
    assert!(!text.contains(FAKE_BOT_TOKEN_SECRET_PART));
    drop(process);
}

/// The plugin the test apps serve: metrics label it by its name, its AppID when the
/// `WECHAT_*` variables configure it.
fn plugin() -> String {
    wxplugin_bot::testbed::sandbox::SandboxConfig::default().appid
}

/// The secret half of the fake bot token: it must never appear in anything the bot serves.
const FAKE_BOT_TOKEN_SECRET_PART: &str = "FAKE-telegram-token";

#[tokio::test]
async fn health_fails_when_wechat_has_not_been_read_for_three_intervals() {
    let app = TestApp::new(1).await;
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
    app.wait_cards(1).await;
    let (status, _) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    app.wx
        .sandbox
        .inject(wx_fault("any", Fault::Http(502), 10_000));
    let (status, body) = healthz_once_failing(&base).await;
    assert_eq!(status, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(health["ok"], false);
    assert_eq!(health["max_age_secs"], 15);
    assert!(
        health["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("502")),
        "{body}"
    );
    let (_, text) = get(&format!("{base}/metrics")).await;
    assert!(
        metric(
            &text,
            &format!(r#"wxplugin_wechat_calls_total{{plugin="{}",action="dev_apply_list",errcode="http_502"}}"#, plugin())
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            &format!(
                r#"wxplugin_polls_total{{plugin="{}",result="error"}}"#,
                plugin()
            )
        )
        .is_some_and(|n| n >= 1.0)
    );
    drop(process);
}

#[tokio::test]
async fn webhook_mode_takes_updates_only_with_the_secret_and_shares_its_listener() {
    let mut app = TestApp::new(2).await;
    let port = free_port();
    // Telegram posts only to HTTPS; the fake plays the TLS-terminating proxy in front of the
    // listener, so forged requests below go straight to the plain-HTTP listener.
    let url = format!("https://127.0.0.1:{port}/telegram/hook");
    let listener_url = format!("http://127.0.0.1:{port}/telegram/hook");
    let secret = "team_hook-secret-42";
    app.vars.insert("TELEGRAM_WEBHOOK_URL", url.clone());
    app.vars
        .insert("TELEGRAM_WEBHOOK_LISTEN", format!("127.0.0.1:{port}"));
    app.vars
        .insert("TELEGRAM_WEBHOOK_SECRET", secret.to_owned());
    app.vars.insert("METRICS_ADDR", format!("127.0.0.1:{port}"));
    app.start().await;
    app.wait_cards(2).await;
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |f| f.webhook().is_some())
        .await;
    assert!(ok, "the bot never set a webhook");
    assert_eq!(
        app.tg.fake.webhook(),
        Some((url.clone(), Some(secret.to_owned())))
    );

    // Updates arrive through the webhook: a press decides, a command is answered.
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "✅ Approved by @alice").await;
    let reply = app.command(BOB, "/chatid").await;
    assert!(reply.plain_text.contains(&TEAM.to_string()));
    assert_eq!(app.tg.fake.call_count("getUpdates"), 0);
    let deliveries = app.tg.fake.deliveries();
    assert!(deliveries.len() >= 2);
    assert!(
        deliveries.iter().all(|d| d.status == Some(200)),
        "{deliveries:?}"
    );

    // A forged press, without or with a wrong secret, is refused and does nothing.
    let other = app.appids()[1].clone();
    let card = app.card(&other);
    let data = card.buttons[0][0]
        .callback_data
        .clone()
        .expect("callback data");
    let forged = serde_json::json!({
        "update_id": 9_000_001,
        "callback_query": {
            "id": "forged-1",
            "from": { "id": ALICE, "is_bot": false, "first_name": "Alice", "username": "alice" },
            "message": {
                "message_id": card.message_id,
                "date": 0,
                "chat": { "id": TEAM, "type": "supergroup", "title": "Plugin team" },
                "from": { "id": 123_456, "is_bot": true, "first_name": "WxPlugin Bot" },
                "text": "card"
            },
            "chat_instance": "x",
            "data": data
        }
    });
    let http = reqwest::Client::new();
    for header in [None, Some("wrong-secret")] {
        let mut request = http.post(&listener_url).json(&forged);
        if let Some(h) = header {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", h);
        }
        let status = request.send().await.expect("POST").status().as_u16();
        assert_eq!(status, 401, "secret {header:?}");
    }
    // The listener shares /healthz and /metrics.
    let (status, _) = get(&format!("http://127.0.0.1:{port}/healthz")).await;
    assert_eq!(status, 200);
    let (status, text) = get(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(status, 200);
    assert!(text.contains("wxplugin_cards_posted_total"));
    assert_eq!(metric(&text, "wxplugin_webhook_refused_total"), Some(2.0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.status(&other), Some(1), "a forged press decided");
    assert_eq!(app.wechat_calls("dev_agree"), 1);
    assert!(
        !app.tg
            .fake
            .callback_answers()
            .iter()
            .any(|a| a.callback_query_id == "forged-1")
    );

    // Stopping removes the webhook, so a later long-polling start works.
    app.stop().await;
    assert!(app.tg.fake.call_count("deleteWebhook") >= 1);
    assert_eq!(app.tg.fake.webhook(), None);
}

/// Connections a flood opens, far past what 1,024 descriptors allow.
const FLOOD: usize = 1_100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_neither_starves_a_press_nor_the_health_check() {
    let mut app = TestApp::new(2).await;
    let port = free_port();
    let secret = "flood-secret-1";
    app.vars.insert(
        "TELEGRAM_WEBHOOK_URL",
        format!("https://127.0.0.1:{port}/telegram/hook"),
    );
    app.vars
        .insert("TELEGRAM_WEBHOOK_LISTEN", format!("127.0.0.1:{port}"));
    app.vars
        .insert("TELEGRAM_WEBHOOK_SECRET", secret.to_owned());
    app.vars.insert("METRICS_ADDR", format!("127.0.0.1:{port}"));
    // The default descriptor limit of a service without `LimitNOFILE`.
    let process = app.start_process_limited(1, &[], 1024).await;
    app.wait_cards(2).await;

    // Arrange: idle connections that never send a byte, held open by this test (loopback only,
    // bounded in count, each connect bounded in time: a SYN the loaded machine drops is sent
    // again after 1 s).
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
        match tokio::time::timeout(Duration::from_secs(2), connect).await {
            Ok(Ok(stream)) => flood.push(stream),
            Ok(Err(e)) => panic!("connection {} failed: {e}", flood.len()),
            Err(_) => panic!("connection {} was not accepted within 2 s", flood.len()),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Act: a real press through the webhook while the flood is held.
    let appid = app.appids()[0].clone();
    let pressed = std::time::Instant::now();
    let callback = app.press(ALICE, &appid, "✅");
    let decided = app
        .tg
        .fake
        .wait_until(Duration::from_secs(5), |_| {
            app.card_for(&appid)
                .is_some_and(|m| m.plain_text.contains("✅ Approved by @alice"))
        })
        .await;
    let latency = pressed.elapsed();
    let health = tokio::time::timeout(
        Duration::from_secs(2),
        reqwest::get(format!("http://127.0.0.1:{port}/healthz")),
    )
    .await;

    // Assert
    let held = flood.len();
    // The newest connection is never made room for; it is closed for sending no headers.
    let mut newest = flood.pop().expect("a flood");
    drop(flood);
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(
        Duration::from_secs(7),
        tokio::io::AsyncReadExt::read(&mut newest, &mut byte),
    )
    .await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a connection that sent nothing was kept open: {closed:?}"
    );
    assert!(
        decided,
        "the press was not decided during a flood of {held} connections; the bot printed:\n{}",
        process.printed()
    );
    eprintln!("flood of {held} idle connections: press decided in {latency:?}");
    assert!(
        latency < Duration::from_secs(1),
        "the press took {latency:?} during the flood"
    );
    let (answer, _) = app.answer(&callback).await;
    assert!(answer.is_some());
    let health = health
        .expect("/healthz answered within 2 s during the flood")
        .expect("/healthz reachable");
    assert_eq!(health.status().as_u16(), 200);
    drop(process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_body_that_does_not_parse_is_logged_by_size_not_whole() {
    let mut app = TestApp::new(1).await;
    let port = free_port();
    let secret = "body-secret-1";
    app.vars.insert(
        "TELEGRAM_WEBHOOK_URL",
        format!("https://127.0.0.1:{port}/telegram/hook"),
    );
    app.vars
        .insert("TELEGRAM_WEBHOOK_LISTEN", format!("127.0.0.1:{port}"));
    app.vars
        .insert("TELEGRAM_WEBHOOK_SECRET", secret.to_owned());
    let process = app.start_process(1, &[]).await;
    app.wait_cards(1).await;
    // Valid JSON that is not an update, 500 KB of it, with a marker that must not reach the log.
    let body = serde_json::json!({
        "update_id": "not a number",
        "junk": format!("MARKER-{}", "x".repeat(500_000)),
    })
    .to_string();

    let status = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/telegram/hook"))
        .header("X-Telegram-Bot-Api-Secret-Token", secret)
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("POST")
        .status()
        .as_u16();
    // A real press still goes through afterwards.
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text_of(&process, &appid, "✅ Approved by @alice")
        .await;

    let printed = process.printed();
    assert_eq!(status, 200, "Telegram would retry a refused update forever");
    assert!(
        !printed.contains("MARKER-"),
        "the body reached the log ({} bytes printed)",
        printed.len()
    );
    assert!(printed.len() < 20_000, "{} bytes printed", printed.len());
    let line = printed
        .lines()
        .find(|l| l.contains("did not parse"))
        .unwrap_or_else(|| panic!("no line about the update: {printed}"));
    assert!(line.contains("ERROR"), "{line}");
    eprintln!("a {}-byte update that does not parse: {line}", body.len());
    assert!(line.contains(&body.len().to_string()), "{line}");
    drop(process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_json_writes_one_json_object_per_line() {
    let app = TestApp::new(1).await;
    let process = app.start_process(1, &[("LOG_FORMAT", "json")]).await;
    app.wait_cards(1).await;
    let status = process.terminate();
    assert!(status.success(), "{status}");
    let printed = std::fs::read_to_string(app.db.path().join("bot-1.log")).expect("the log");
    let lines: Vec<serde_json::Value> = printed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let message = |needle: &str| {
        lines.iter().any(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle))
        })
    };
    assert!(message("bot started (long polling)"), "{printed}");
    // A field must not be called `message`: in JSON it would replace the log message.
    assert!(message("posted a card"), "{printed}");
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
}

#[tokio::test]
async fn a_webhook_url_without_https_stops_the_start_with_one_line() {
    let app = TestApp::new(0).await;
    let stderr_path = app.db.path().join("stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wxplugin-bot"))
        .env_clear()
        .current_dir(app.db.path())
        .envs(app.vars.iter().map(|(k, v)| (*k, v.as_str())))
        .env(
            "TELEGRAM_WEBHOOK_URL",
            "http://bot.example.com/telegram/hook",
        )
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("log file"))
        .spawn()
        .expect("bot binary starts");

    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the bot started with an http:// webhook URL");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("TELEGRAM_WEBHOOK_URL") && stderr.contains("https"),
        "{stderr}"
    );
    assert_eq!(app.tg.fake.call_count("setWebhook"), 0);
}

#[tokio::test]
async fn a_second_instance_on_the_same_token_is_reported_once_and_counted() {
    let app = TestApp::new(1).await;
    let process = app
        .start_process(1, &[("METRICS_ADDR", "127.0.0.1:0")])
        .await;
    let base = metrics_base(&process).await;
    app.wait_cards(1).await;

    // Another instance: raw long polls with the bot's token, each ending the bot's open one.
    app.another_instance_polls(4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let printed = process.printed();
    let reported = printed
        .lines()
        .filter(|l| l.contains("another instance is long-polling this bot's token"))
        .count();
    assert_eq!(reported, 1, "{printed}");
    assert!(!printed.contains("getUpdates failed"), "{printed}");
    let (_, text) = get(&format!("{base}/metrics")).await;
    let counted = metric(&text, "wxplugin_telegram_conflict_total").unwrap_or_default();
    assert!(counted >= 2.0, "{text}");
}

#[tokio::test]
async fn an_upgraded_team_chat_is_named_with_its_new_id() {
    let (old, new) = (-4_242i64, -1_004_242i64);
    let mut app = TestApp::new(2).await;
    app.tg.fake.add_basic_group(old, "Plugin team (small)");
    app.tg.fake.set_admins(old, &[ALICE]);
    app.tg.fake.upgrade_group(old, new);
    app.vars.insert("TEAM_CHAT_ID", old.to_string());
    let process = app
        .start_process(1, &[("METRICS_ADDR", "127.0.0.1:0")])
        .await;
    let base = metrics_base(&process).await;
    let refused = |f: &wxplugin_bot::testbed::fake_telegram::FakeTelegram| {
        f.calls()
            .iter()
            .filter(|c| c.method == "sendMessage" && c.error_code == Some(400))
            .count()
    };
    let ok = app.tg.fake.wait_until(WAIT, |f| refused(f) >= 2).await;
    assert!(ok, "the first poll never tried the cards");

    // A command in the new supergroup is told what to change.
    let reply = app.command_in(new, ALICE, "/status").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let expected = format!("TEAM_CHAT_ID={new}");
    assert!(
        reply.plain_text.contains("upgraded to a supergroup")
            && reply.plain_text.contains(&expected),
        "{}",
        reply.plain_text
    );
    let printed = process.printed();
    let named = printed.lines().filter(|l| l.contains(&expected)).count();
    assert_eq!(named, 1, "{printed}");
    let (_, text) = get(&format!("{base}/metrics")).await;
    let counted = metric(&text, "wxplugin_telegram_chat_upgraded_total").unwrap_or_default();
    assert!(counted >= 3.0, "{text}");
    // Nothing was sent anywhere but the answer.
    assert!(app.tg.fake.bot_messages(old).is_empty());
    assert_eq!(app.tg.fake.bot_messages(new).len(), 1);
}

#[tokio::test]
async fn status_says_while_another_instance_polls_the_same_token() {
    let app = TestApp::spawn(1).await;
    app.another_instance_polls(1).await;

    // The bot's long poll comes back after teloxide's backoff; then it reads /status.
    let asked = app.tg.fake.user_sends(TEAM, ALICE, "/status");
    let answered = app
        .tg
        .fake
        .wait_until(Duration::from_secs(40), |f| {
            f.bot_messages(TEAM)
                .iter()
                .any(|m| m.reply_to == Some(asked))
        })
        .await;
    assert!(answered, "no answer to /status");
    let status = app
        .tg
        .fake
        .bot_messages(TEAM)
        .into_iter()
        .find(|m| m.reply_to == Some(asked))
        .expect("answer");
    assert!(
        status
            .plain_text
            .contains("Another instance is long-polling this bot's token"),
        "{}",
        status.plain_text
    );
}

#[tokio::test]
async fn a_reminder_counts_everyone_past_its_list_and_none_of_them_comes_again_the_same_day() {
    let mut app = TestApp::new(0).await;
    app.vars.insert("TELEGRAM_THROTTLE", "off".into());
    let now = jiff::Timestamp::now().as_second();
    let overdue: Vec<String> = (0..25)
        .map(|i| {
            app.wx.sandbox.add_applicant(NewApplicant {
                create_time: Some(now - 30 * 3600 - i),
                ..NewApplicant::default()
            })
        })
        .collect();
    app.start().await;
    app.wait_cards(25).await;
    wait_reminders(&app, 1).await;
    let first = reminders(&app).remove(0);
    assert!(first.plain_text.contains("(25)"), "{}", first.plain_text);
    assert!(first.plain_text.contains("5 more"), "{}", first.plain_text);

    // The next check (a restart runs one at once) lists only an applicant that became due since:
    // the five that were counted were reminded of too.
    let later = app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(now - 50 * 3600),
        ..NewApplicant::default()
    });
    app.restart().await;
    wait_reminders(&app, 2).await;
    let second = reminders(&app).remove(1);
    assert!(second.plain_text.contains(&later), "{}", second.plain_text);
    assert!(second.plain_text.contains("(1)"), "{}", second.plain_text);
    for appid in &overdue {
        assert!(
            !second.plain_text.contains(appid.as_str()),
            "{}",
            second.plain_text
        );
    }
    app.stop().await;
}

/// A database the bot may read but not write (here `?mode=ro`; a read-only mount or a full
/// disk answer the same): every poll fails to record what it read, and health, `/status`, the
/// outage announcement, the metrics and the log all say so, with the cause.
#[tokio::test]
async fn a_poll_the_database_cannot_record_is_a_failed_poll() {
    // Arrange: a database the bot made, then opened read-only.
    let app = TestApp::new(1).await;
    let url = app.vars["DATABASE_URL"].clone();
    wxplugin_bot::store::Store::open(&url)
        .await
        .expect("a migrated database")
        .close()
        .await;
    let read_only = format!("{url}?mode=ro");

    // Act: polls every 5 s, the chat told after 2 failures.
    let process = app
        .start_process(
            1,
            &[
                ("METRICS_ADDR", "127.0.0.1:0"),
                ("POLL_INTERVAL_SECS", "5"),
                ("DATABASE_URL", &read_only),
            ],
        )
        .await;
    let base = metrics_base(&process).await;
    let outage = app
        .tg
        .fake
        .wait_until(Duration::from_secs(20), |f| {
            f.bot_messages(TEAM).iter().any(|m| {
                m.plain_text
                    .starts_with("⚠️ WeChat's application list could not be read")
            })
        })
        .await;
    let status = app.command(ALICE, "/status").await.plain_text;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (code, body) = loop {
        let (code, body) = get(&format!("{base}/healthz")).await;
        if code != 200 || tokio::time::Instant::now() > deadline {
            break (code, body);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (_, metrics) = get(&format!("{base}/metrics")).await;
    let printed = process.printed();
    drop(process);

    // Assert
    assert!(
        outage,
        "no outage announcement: {:?}",
        app.tg.fake.bot_messages(TEAM)
    );
    assert!(
        status.contains("Last error: the bot's database could not record the listing: ")
            && status.contains("readonly database"),
        "{status}"
    );
    assert!(!status.contains("Last successful poll: 20"), "{status}");
    assert_eq!(code, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(health["last_ok_at"], serde_json::Value::Null, "{body}");
    assert!(
        health["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("could not record the poll") && e.contains("readonly")),
        "{body}"
    );
    assert_eq!(
        metric(
            &metrics,
            &format!(
                r#"wxplugin_polls_total{{plugin="{}",result="ok"}}"#,
                plugin()
            )
        ),
        None,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            &format!(
                r#"wxplugin_polls_total{{plugin="{}",result="error"}}"#,
                plugin()
            )
        )
        .is_some_and(|n| n >= 3.0),
        "{metrics}"
    );
    let failed_polls = metric(
        &metrics,
        &format!(
            r#"wxplugin_polls_total{{plugin="{}",result="error"}}"#,
            plugin()
        ),
    )
    .unwrap_or(0.0);
    let logged = printed.matches("poll failed").count();
    // Each failed poll once (a poll may end between the metrics and the log's reading).
    assert!(
        logged as f64 >= failed_polls && logged as f64 <= failed_polls + 1.0,
        "{logged} 'poll failed' lines for {failed_polls} failed polls (plus /status's refresh?): {printed}"
    );
}

/// `/metrics` carries the process's own figures, read from the OS at the scrape, and which build
/// is running.
#[tokio::test]
async fn metrics_include_the_process_and_the_build() {
    let app = TestApp::new(1).await;
    let process = app
        .start_process(1, &[("METRICS_ADDR", "127.0.0.1:0")])
        .await;
    let base = metrics_base(&process).await;
    let now = jiff::Timestamp::now().as_second() as f64;

    let (status, text) = get(&format!("{base}/metrics")).await;
    drop(process);

    assert_eq!(status, 200);
    let value =
        |series: &str| metric(&text, series).unwrap_or_else(|| panic!("no {series}: {text}"));
    let rss = value("process_resident_memory_bytes");
    assert!((1e6..1e9).contains(&rss), "RSS {rss}");
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_max_fds") >= value("process_open_fds"));
    assert!(value("process_cpu_seconds_total") > 0.0);
    let started = value("process_start_time_seconds");
    assert!(
        (now - 60.0..=now + 1.0).contains(&started),
        "started {started}, now {now}"
    );
    assert_eq!(
        value(&format!(
            "wxplugin_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
}
