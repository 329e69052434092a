//! Every way the bot may hold the right to call WeChat, end to end against the sandbox and the
//! fake Bot API: inside WeChat Cloud Run, through its cloud call, with no token and no AppSecret.

mod common;

use common::*;
use wxplugin_bot::testbed::sandbox::{Fault, SandboxConfig};

/// A bot in `cloudrun` mode (no `WECHAT_SECRET` at all) against a WeChat that serves Cloud
/// Run's cloud call, with `applicants` pending.
async fn cloud_run_app(applicants: usize) -> TestApp {
    let mut app = TestApp::with_sandbox(SandboxConfig {
        applicants,
        cloud_run: true,
        ..SandboxConfig::default()
    })
    .await;
    app.vars.remove("WECHAT_SECRET");
    app.vars.insert("WECHAT_TOKEN_MODE", "cloudrun".to_owned());
    app.start().await;
    app
}

#[tokio::test]
async fn in_cloud_run_cards_come_and_a_press_decides_with_no_token_or_secret() {
    let app = cloud_run_app(2).await;
    app.wait_cards(2).await;
    let appid = app.appids()[0].clone();

    app.press(ALICE, &appid, "✅");

    app.wait_card_text(&appid, "Approved by").await;
    assert_eq!(app.status(&appid), Some(2));
    let stats = app.wx.sandbox.stats();
    assert_eq!(
        (stats.stable_token_requests, stats.classic_token_requests),
        (0, 0),
        "a token was fetched in cloudrun mode"
    );
    let status = app.command(ALICE, "/status").await.plain_text;
    assert!(status.contains("cloudrun"), "{status}");
}

#[tokio::test]
async fn a_path_off_the_cloud_whitelist_is_announced_with_what_to_do() {
    let app = cloud_run_app(0).await;
    // POLL_ALERT_AFTER is 2: two failed polls and the chat hears of it, once.
    app.wx
        .sandbox
        .inject(wx_fault("dev_apply_list", Fault::Errcode(85107), 2));
    app.command(ALICE, "/refresh").await;
    app.command(ALICE, "/refresh").await;

    let outage: Vec<String> = app
        .tg
        .fake
        .bot_messages(TEAM)
        .into_iter()
        .map(|m| m.plain_text)
        .filter(|t| t.starts_with("⚠️ WeChat's application list could not be read"))
        .collect();
    assert_eq!(outage.len(), 1, "{outage:#?}");
    assert!(
        outage[0].contains("85107") && outage[0].contains("/wxa/devplugin"),
        "{outage:#?}"
    );
}
