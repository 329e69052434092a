//! Every way the bot may hold the right to call WeChat, end to end against the sandbox and the
//! fake Bot API: inside WeChat Cloud Run, through its cloud call, with no token and no AppSecret;
//! and as a third-party platform for the plugin's owner, through the component-token chain.

mod common;

use common::*;
use wxplugin_bot::testbed::sandbox::{Fault, NewApplicant, SandboxConfig};

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

/// A bot run by a third-party platform for the plugin's owner (no `WECHAT_SECRET`), its ticket
/// file written as the platform's receiver would, with `applicants` pending; not started.
async fn platform_app(applicants: usize) -> TestApp {
    let mut app = TestApp::new(applicants).await;
    let defaults = SandboxConfig::default();
    let ticket_file = app.db.path().join("component_verify_ticket");
    std::fs::write(&ticket_file, app.wx.sandbox.ticket()).expect("ticket file");
    let refresh = app
        .wx
        .sandbox
        .authorizer_refresh_token()
        .expect("the owner authorized the platform");
    app.vars.remove("WECHAT_SECRET");
    for (name, value) in [
        ("WECHAT_TOKEN_MODE", "authorizer".to_owned()),
        ("WECHAT_COMPONENT_APPID", defaults.component_appid),
        ("WECHAT_COMPONENT_SECRET", defaults.component_secret),
        (
            "WECHAT_COMPONENT_TICKET_FILE",
            ticket_file.display().to_string(),
        ),
        ("WECHAT_AUTHORIZER_REFRESH_TOKEN", refresh),
    ] {
        app.vars.insert(name, value);
    }
    app
}

#[tokio::test]
async fn through_a_platform_the_refresh_token_returned_carries_the_bot_across_a_restart() {
    let mut app = platform_app(2).await;
    app.start().await;
    app.wait_cards(2).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "Approved by").await;
    assert_eq!(app.status(&appid), Some(2));
    // WeChat handed out a new refresh token with the authorizer token, and the configured one
    // stopped working.
    let configured = app.vars["WECHAT_AUTHORIZER_REFRESH_TOKEN"].clone();
    assert_ne!(app.wx.sandbox.authorizer_refresh_token(), Some(configured));

    // A restart with the same variables, every token WeChat issued revoked meanwhile: the bot
    // buys a new authorizer token with the refresh token it kept.
    app.stop().await;
    app.wx.sandbox.revoke_tokens();
    let newcomer = app.wx.sandbox.add_applicant(NewApplicant::default());
    app.restart_stopped().await;
    app.wait_cards(3).await;
    assert!(app.card_for(&newcomer).is_some());
    let stats = app.wx.sandbox.stats();
    assert_eq!(stats.authorizer_token_requests, 2, "{stats:?}");
    assert_eq!(
        stats.stable_token_requests + stats.classic_token_requests,
        0
    );
    let texts: Vec<String> = app
        .tg
        .fake
        .bot_messages(TEAM)
        .into_iter()
        .map(|m| m.plain_text)
        .collect();
    assert!(!texts.iter().any(|t| t.starts_with("🔑")), "{texts:#?}");
}

#[tokio::test]
async fn a_revoked_authorization_is_said_once_on_its_own_and_a_new_refresh_token_mends_it() {
    let mut app = platform_app(1).await;
    app.start().await;
    app.wait_cards(1).await;

    app.wx.sandbox.revoke_authorization();
    app.wx.sandbox.revoke_tokens();
    // POLL_ALERT_AFTER is 2: three failed polls would bring the failed-polls alert.
    for _ in 0..3 {
        app.command(ALICE, "/refresh").await;
    }
    let status = app.command(ALICE, "/status").await.plain_text;

    let texts: Vec<String> = app
        .tg
        .fake
        .bot_messages(TEAM)
        .into_iter()
        .map(|m| m.plain_text)
        .collect();
    let reauthorize: Vec<&String> = texts.iter().filter(|t| t.starts_with("🔑")).collect();
    assert_eq!(reauthorize.len(), 1, "{texts:#?}");
    assert!(
        reauthorize[0].contains("61023")
            && reauthorize[0].contains("WECHAT_AUTHORIZER_REFRESH_TOKEN"),
        "{reauthorize:#?}"
    );
    assert!(
        !texts
            .iter()
            .any(|t| t.starts_with("⚠️ WeChat's application list could not be read")),
        "the failed-polls alert came beside it: {texts:#?}"
    );
    assert!(
        status.contains("61023") && status.contains("authorize the third-party platform again"),
        "{status}"
    );

    // The owner authorizes again; the operator sets the new refresh token and restarts. The
    // changed variable wins over the token kept in the database.
    let fresh = app.wx.sandbox.authorize_again();
    app.vars.insert("WECHAT_AUTHORIZER_REFRESH_TOKEN", fresh);
    app.stop().await;
    let newcomer = app.wx.sandbox.add_applicant(NewApplicant::default());
    app.restart_stopped().await;
    app.wait_cards(2).await;
    assert!(app.card_for(&newcomer).is_some());
}

#[tokio::test]
async fn the_platforms_secrets_stay_out_of_the_log_even_at_trace() {
    let app = platform_app(2).await;
    let configured = app.vars["WECHAT_AUTHORIZER_REFRESH_TOKEN"].clone();
    let ticket = app.wx.sandbox.ticket();

    let process = app.start_process(1, &[("RUST_LOG", "trace")]).await;
    app.wait_cards(2).await;
    let printed = process.printed();
    drop(process);

    let rotated = app
        .wx
        .sandbox
        .authorizer_refresh_token()
        .expect("authorized");
    assert_ne!(rotated, configured, "the chain ran");
    for secret in [
        SandboxConfig::default().component_secret,
        configured,
        rotated,
        ticket,
    ] {
        assert!(!printed.contains(&secret), "{secret} in the log");
    }
    assert!(
        printed.contains("fetched a new component token"),
        "{printed}"
    );
}
