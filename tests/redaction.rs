//! Secrets stay out of the real binary's log, text and JSON alike. The line that carries one is
//! not made up for the test: many teams put the bot token in the webhook's path (a common way to
//! keep the address unguessable), and the bot logs its webhook URL when it starts. The log
//! redactor masks it, at every level down to `trace`.
//!
//! Only a line like that tests the redactor: elsewhere the secrets are dropped where the line is
//! made (WeChat errors drop the URL, teloxide drops it from its network errors, and neither
//! reqwest nor hyper logs a path or a body even at `trace`), so a session without one passes
//! whether the redactor works or not.

mod common;

use std::time::Duration;

use common::{TestApp, WAIT};
use wxplugin_bot::testbed::fake_telegram::FAKE_BOT_TOKEN;
use wxplugin_bot::testbed::sandbox::SandboxConfig;

/// The webhook secret the bot is given.
const WEBHOOK_SECRET: &str = "webhook-secret-of-the-redaction-test";

/// Runs the bot by webhook with the token in the webhook's path, `RUST_LOG=trace` and
/// `LOG_FORMAT=format` until it logged its start and posted the cards, and returns everything
/// it printed.
async fn log_of_a_webhook_named_after_the_token(format: &str) -> String {
    let app = TestApp::new(2).await;
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
    };
    let listen = free_port();
    // Telegram would reach the listener through a TLS proxy; nothing here needs the updates, so
    // the URL names a port where nobody listens.
    let url = format!("https://{}/telegram/{FAKE_BOT_TOKEN}", free_port());
    let bot = app
        .start_process(
            1,
            &[
                ("LOG_FORMAT", format),
                ("RUST_LOG", "trace"),
                ("TELEGRAM_WEBHOOK_SECRET", WEBHOOK_SECRET),
                ("TELEGRAM_WEBHOOK_URL", &url),
                ("TELEGRAM_WEBHOOK_LISTEN", &listen.to_string()),
            ],
        )
        .await;
    app.wait_cards(2).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !bot.printed().contains("bot started (webhook)") && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let issued = app.wx.sandbox.issued_tokens();
    assert!(!issued.is_empty(), "the bot fetched an access token");
    let status = bot.terminate();
    let printed = std::fs::read_to_string(app.db.path().join("bot-1.log")).unwrap_or_default();
    assert!(status.success(), "{status}: {printed}");
    assert!(
        printed.contains("bot started (webhook)"),
        "the start was never logged: {printed}"
    );
    assert!(printed.contains("TRACE"), "trace-level output was captured");

    for secret in issued.iter().map(String::as_str).chain([
        FAKE_BOT_TOKEN,
        SandboxConfig::default().secret.as_str(),
        WEBHOOK_SECRET,
    ]) {
        assert!(
            !printed.contains(secret),
            "{secret:?} reached the log: {printed}"
        );
    }
    printed
}

// Two workers: `terminate` blocks one while the fakes answer the bot's last calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_mask_a_token_in_the_webhook_url() {
    let printed = log_of_a_webhook_named_after_the_token("text").await;

    let started = printed
        .lines()
        .find(|l| l.contains("bot started (webhook)"))
        .expect("the start line");
    assert!(started.contains("/telegram/***"), "{started}");
}

// Two workers: `terminate` blocks one while the fakes answer the bot's last calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_mask_a_token_in_the_webhook_url() {
    let printed = log_of_a_webhook_named_after_the_token("json").await;

    let started = printed
        .lines()
        .find(|l| l.contains("bot started (webhook)"))
        .expect("the start line");
    let line: serde_json::Value = serde_json::from_str(started).expect("still one JSON object");
    let url = line["fields"]["url"].as_str().expect("a url field");
    assert!(url.ends_with("/telegram/***"), "{url}");
}
