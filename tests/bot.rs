//! The whole bot against the WeChat sandbox and the fake Telegram Bot API: cards, presses,
//! reasons, errors, authorization, races, outside changes, restarts and every command.

mod common;

use std::time::Duration;

use common::*;
use wxplugin_bot::testbed::fake_telegram::{FakeMessage, FakeUser, TgFault};
use wxplugin_bot::testbed::sandbox::{Fault, NewApplicant};

#[tokio::test]
async fn posts_cards_for_pending_applicants_only() {
    let app = TestApp::new(3).await;
    let approved = app.wx.sandbox.add_applicant(NewApplicant {
        status: Some(2),
        ..NewApplicant::default()
    });
    let refused = app.wx.sandbox.add_applicant(NewApplicant {
        status: Some(3),
        ..NewApplicant::default()
    });
    let mut app = app;

    app.start().await;
    app.wait_cards(3).await;
    app.command(ALICE, "/refresh").await;

    assert_eq!(app.cards().len(), 3);
    assert!(app.card_for(&approved).is_none());
    assert!(app.card_for(&refused).is_none());
    for appid in app
        .appids()
        .into_iter()
        .filter(|a| *a != approved && *a != refused)
    {
        let card = app.card(&appid);
        assert!(
            card.plain_text.contains("⏳ Pending"),
            "{}",
            card.plain_text
        );
        let labels = button_labels(&card);
        assert_eq!(labels, ["✅ Approve", "❌ Reject"]);
    }
}

#[tokio::test]
async fn a_card_shows_the_applicants_details_escaped() {
    let mut app = TestApp::new(0).await;
    let appid = app.wx.sandbox.add_applicant(NewApplicant {
        nickname: Some("<b>Evil</b> & Co".into()),
        reason: Some("我们需要 <地图> & \"定位\"".into()),
        categories: Some(vec![("工具".into(), "记账".into())]),
        ..NewApplicant::default()
    });

    app.start().await;
    app.wait_cards(1).await;

    let card = app.card(&appid);
    assert!(
        card.text.contains("&lt;b&gt;Evil&lt;/b&gt; &amp; Co"),
        "{}",
        card.text
    );
    assert!(card.plain_text.contains("<b>Evil</b> & Co"));
    assert!(card.plain_text.contains("我们需要 <地图> & \"定位\""));
    assert!(card.plain_text.contains("工具 › 记账"));
    assert!(card.plain_text.contains(&appid));
}

#[tokio::test]
async fn approve_button_approves_in_wechat_and_edits_the_card() {
    let app = TestApp::spawn(2).await;
    let appid = app.appids()[0].clone();

    let callback = app.press(ALICE, &appid, "✅");

    let card = app.wait_card_text(&appid, "✅ Approved by @alice").await;
    assert_eq!(app.status(&appid), Some(2));
    assert!(
        card.buttons.iter().flatten().next().is_none(),
        "buttons gone: {:?}",
        card.buttons
    );
    let (_, alert) = app.answer(&callback).await;
    assert!(!alert);
    assert_eq!(app.wechat_calls("dev_agree"), 1);
    let other = app.appids()[1].clone();
    assert!(app.card(&other).plain_text.contains("⏳ Pending"));
}

#[tokio::test]
async fn reject_with_a_preset_reason() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    let reason = app.settings().reject_reasons[0].clone();

    app.press(BOB, &appid, "❌");
    let choosing = app.wait_card_text(&appid, "is choosing a reason").await;
    let labels = button_labels(&choosing);
    assert_eq!(labels.len(), app.settings().reject_reasons.len() + 2);
    app.press(BOB, &appid, &format!("❌ {reason}"));

    let card = app.wait_card_text(&appid, "❌ Rejected by @bob").await;
    assert!(card.plain_text.contains(&reason));
    assert_eq!(app.status(&appid), Some(3));
    assert_eq!(
        app.wx
            .sandbox
            .applicant(&appid)
            .unwrap()
            .refuse_reason
            .as_deref(),
        Some(reason.as_str())
    );
    let labels = button_labels(&card);
    assert_eq!(labels, ["🗑 Delete"]);
}

#[tokio::test]
async fn reject_with_a_typed_reason_from_the_same_approver() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "❌");
    app.wait_card_text(&appid, "choosing a reason").await;

    app.press(ALICE, &appid, "✍️");
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |f| f.bot_messages(TEAM).iter().any(|m| m.force_reply))
        .await;
    assert!(ok, "no ForceReply prompt");
    let prompt = app
        .tg
        .fake
        .bot_messages(TEAM)
        .into_iter()
        .find(|m| m.force_reply)
        .unwrap();
    assert!(prompt.plain_text.contains(&appid));
    // Someone else's reply is not the reason.
    app.tg
        .fake
        .user_replies(TEAM, BOB, prompt.message_id, "bob's opinion");
    app.tg.fake.user_replies(
        TEAM,
        ALICE,
        prompt.message_id,
        "Uses the plugin for <gambling> & lotteries",
    );

    let card = app.wait_card_text(&appid, "❌ Rejected by @alice").await;
    assert!(
        card.plain_text
            .contains("Uses the plugin for <gambling> & lotteries")
    );
    assert_eq!(
        app.wx
            .sandbox
            .applicant(&appid)
            .unwrap()
            .refuse_reason
            .as_deref(),
        Some("Uses the plugin for <gambling> & lotteries")
    );
    assert_eq!(app.wechat_calls("dev_refuse"), 1);
}

#[tokio::test]
async fn cancel_returns_the_card_to_approve_and_reject() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "❌");
    app.wait_card_text(&appid, "choosing a reason").await;

    app.press(ALICE, &appid, "↩");

    let card = app.wait_card_text(&appid, "⏳ Pending").await;
    let labels = button_labels(&card);
    assert_eq!(labels, ["✅ Approve", "❌ Reject"]);
    assert_eq!(app.wechat_calls("dev_refuse"), 0);
}

#[tokio::test]
async fn delete_a_rejected_applicant() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "❌");
    app.wait_card_text(&appid, "choosing").await;
    app.press(ALICE, &appid, "❌ ");
    app.wait_card_text(&appid, "Rejected by").await;

    app.press(ALICE, &appid, "🗑");

    let card = app.wait_card_text(&appid, "🗑 Deleted by @alice").await;
    assert!(app.wx.sandbox.applicant(&appid).is_none());
    assert!(card.buttons.iter().flatten().next().is_none());
}

#[tokio::test]
async fn a_wechat_error_shows_errcode_and_meaning_and_retry_works() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    app.wx
        .sandbox
        .inject(wx_fault("dev_agree", Fault::Errcode(-1), 10));

    app.press(ALICE, &appid, "✅");

    let card = app.wait_card_text(&appid, "errcode -1").await;
    assert!(
        card.plain_text.contains("system busy"),
        "{}",
        card.plain_text
    );
    assert_eq!(
        app.status(&appid),
        Some(1),
        "a failed decision is never shown as done"
    );
    let labels = button_labels(&card);
    assert!(labels.contains(&"🔁 Retry".to_owned()), "{labels:?}");

    app.wx.sandbox.clear_faults();
    app.press(ALICE, &appid, "🔁");
    app.wait_card_text(&appid, "✅ Approved by @alice").await;
    assert_eq!(app.status(&appid), Some(2));
}

#[tokio::test]
async fn a_non_retryable_error_offers_refresh_only() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    app.wx
        .sandbox
        .inject(wx_fault("dev_agree", Fault::Errcode(89236), 1));

    app.press(ALICE, &appid, "✅");

    let card = app.wait_card_text(&appid, "errcode 89236").await;
    assert!(card.plain_text.contains("cannot be applied for"));
    let labels = button_labels(&card);
    assert_eq!(labels, ["✅ Approve", "❌ Reject", "🔄 Refresh"]);

    app.press(ALICE, &appid, "🔄");
    app.wait_card_text(&appid, "⏳ Pending").await;
}

#[tokio::test]
async fn a_lost_answer_is_resolved_by_re_reading_the_status() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    app.wx.sandbox.inject(wx_fault(
        "dev_agree",
        Fault::Delay(Duration::from_millis(1800)),
        1,
    ));

    app.press(ALICE, &appid, "✅");

    // WeChat shows it approved, but without its answer the bot cannot tell Alice's write from
    // the console's: it says what WeChat shows and credits nobody.
    let card = app.wait_card_text(&appid, "Now approved in WeChat").await;
    assert!(
        !card.plain_text.contains("Approved by"),
        "{}",
        card.plain_text
    );
    assert!(button_labels(&card).is_empty(), "{:?}", card.buttons);
    assert_eq!(app.wechat_calls("dev_agree"), 1, "never resent blindly");
}

#[tokio::test]
async fn a_non_approver_press_does_nothing_but_alert() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    let before = app.card(&appid);

    let callback = app.press(EVE, &appid, "✅");

    let (text, alert) = app.answer(&callback).await;
    assert!(alert);
    assert!(text.unwrap_or_default().contains("Only approvers"));
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    assert_eq!(app.card(&appid).plain_text, before.plain_text);
    assert_eq!(app.status(&appid), Some(1));
}

#[tokio::test]
async fn without_approver_ids_the_chat_admins_decide() {
    let mut app = TestApp::new(1).await;
    app.vars.remove("APPROVER_IDS");
    app.start().await;
    app.wait_cards(1).await;
    let appid = app.appids()[0].clone();

    let bob = app.press(BOB, &appid, "✅");
    let (_, alert) = app.answer(&bob).await;
    assert!(alert, "bob is not an admin");
    app.press(ALICE, &appid, "✅");

    app.wait_card_text(&appid, "Approved by @alice").await;
    assert_eq!(app.wechat_calls("dev_agree"), 1);
}

#[tokio::test]
async fn forged_callback_data_is_refused_without_a_wechat_call() {
    let app = TestApp::spawn(2).await;
    let [first, second] = [app.appids()[0].clone(), app.appids()[1].clone()];
    let first_card = app.card(&first);
    let second_card = app.card(&second);
    let second_data = second_card.buttons[0][0].callback_data.clone().unwrap();

    let forgeries = [
        app.tg
            .fake
            .press_raw(TEAM, first_card.message_id, ALICE, &second_data),
        app.tg
            .fake
            .press_raw(TEAM, first_card.message_id, ALICE, "ap:999999"),
        app.tg
            .fake
            .press_raw(TEAM, first_card.message_id, ALICE, "garbage"),
        app.tg
            .fake
            .press_raw(TEAM, first_card.message_id, ALICE, &"ap:1".repeat(20)),
    ];

    for callback in forgeries {
        let (text, alert) = app.answer(&callback).await;
        assert!(alert);
        assert!(text.unwrap_or_default().contains("no longer valid"));
    }
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    assert_eq!(app.status(&first), Some(1));
    assert_eq!(app.status(&second), Some(1));
}

#[tokio::test]
async fn two_presses_at_once_make_one_wechat_call() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    // Keep the first decision in flight long enough for the second press to meet it.
    app.wx.sandbox.inject(wx_fault(
        "dev_agree",
        Fault::Delay(Duration::from_millis(400)),
        1,
    ));

    let a = app.press(ALICE, &appid, "✅");
    let b = app.press(BOB, &appid, "✅");

    app.wait_card_text(&appid, "✅ Approved by").await;
    let answers = [app.answer(&a).await, app.answer(&b).await];
    assert_eq!(app.wechat_calls("dev_agree"), 1);
    let alerts: Vec<_> = answers.iter().filter(|(_, alert)| *alert).collect();
    assert_eq!(alerts.len(), 1, "{answers:?}");
    assert!(
        alerts[0]
            .0
            .as_deref()
            .unwrap_or_default()
            .contains("has been deciding this since"),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_new_applicant_gets_a_card_on_refresh() {
    let app = TestApp::spawn(1).await;
    let appid = app.wx.sandbox.add_applicant(NewApplicant {
        nickname: Some("新来的小程序".into()),
        ..NewApplicant::default()
    });

    let reply = app.command(ALICE, "/refresh").await;

    app.wait_cards(2).await;
    assert!(app.card(&appid).plain_text.contains("新来的小程序"));
    assert!(
        reply.plain_text.contains("1 new cards"),
        "{}",
        reply.plain_text
    );
}

#[tokio::test]
async fn a_status_changed_in_the_console_updates_the_card() {
    let app = TestApp::spawn(3).await;
    let ids = app.appids();
    app.wx.sandbox.set_status(&ids[0], 3);
    app.wx.sandbox.set_status(&ids[1], 4);
    app.wx.sandbox.remove_applicant(&ids[2]);

    app.command(ALICE, "/refresh").await;

    let refused = app
        .wait_card_text(&ids[0], "Changed outside the bot: now rejected")
        .await;
    let labels = button_labels(&refused);
    assert_eq!(labels, ["🗑 Delete"]);
    app.wait_card_text(&ids[1], "now timed out").await;
    // Missing from one listing is no proof of deletion; the second listing in a row is.
    assert_eq!(
        button_labels(&app.card(&ids[2])),
        ["✅ Approve", "❌ Reject"]
    );
    app.command(ALICE, "/refresh").await;
    let gone = app
        .wait_card_text(&ids[2], "No longer in WeChat's application list")
        .await;
    assert!(gone.buttons.iter().flatten().next().is_none());
}

#[tokio::test]
async fn approve_while_refused_in_the_console_tells_the_truth() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    app.wx.sandbox.set_status(&appid, 3);

    app.press(ALICE, &appid, "✅");

    app.wait_card_text(&appid, "now rejected").await;
    assert_eq!(app.status(&appid), Some(3));
}

#[tokio::test]
async fn a_restart_posts_no_card_twice_and_keeps_decisions() {
    let mut app = TestApp::spawn(3).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "Approved").await;
    let sends_before = app.tg.fake.call_count("sendMessage");

    app.restart().await;
    app.command(ALICE, "/refresh").await;

    assert_eq!(app.cards().len(), 3);
    // Only the /refresh reply was sent after the restart.
    assert_eq!(app.tg.fake.call_count("sendMessage"), sends_before + 1);
    assert!(app.card(&appid).plain_text.contains("Approved by @alice"));
    let history = app.command(ALICE, &format!("/history {appid}")).await;
    assert!(
        history.plain_text.contains(" alice ") && !history.plain_text.contains("@alice"),
        "{}",
        history.plain_text
    );
    assert!(
        history.plain_text.contains("→ done"),
        "{}",
        history.plain_text
    );
}

#[tokio::test]
async fn commands_work_in_the_team_chat() {
    let app = TestApp::spawn(2).await;
    let ids = app.appids();

    let help = app.command(EVE, "/help").await;
    assert!(help.plain_text.contains("/approve"));
    let pending = app.command(EVE, "/pending").await;
    assert!(
        pending.plain_text.contains("Pending applications (2)"),
        "{}",
        pending.plain_text
    );
    assert!(
        pending.text.contains("https://t.me/c/1234567890/"),
        "{}",
        pending.text
    );

    let approved = app.command(ALICE, &format!("/approve {}", ids[0])).await;
    assert!(
        approved.plain_text.contains("Approved by @alice"),
        "{}",
        approved.plain_text
    );
    app.wait_card_text(&ids[0], "✅ Approved by @alice").await;

    let rejected = app
        .command(
            BOB,
            &format!("/reject@wxplugin_test_bot {} not <our> audience", ids[1]),
        )
        .await;
    assert!(
        rejected.plain_text.contains("Rejected by @bob"),
        "{}",
        rejected.plain_text
    );
    assert_eq!(
        app.wx
            .sandbox
            .applicant(&ids[1])
            .unwrap()
            .refuse_reason
            .as_deref(),
        Some("not <our> audience")
    );

    let listed = app.command(EVE, "/list approved").await;
    assert!(listed.plain_text.contains(&ids[0]) && !listed.plain_text.contains(&ids[1]));

    let deleted = app.command(ALICE, &format!("/delete {}", ids[1])).await;
    assert!(
        deleted.plain_text.contains("Deleted by @alice"),
        "{}",
        deleted.plain_text
    );
    assert!(app.wx.sandbox.applicant(&ids[1]).is_none());

    let history = app.command(EVE, "/history").await;
    assert!(
        history.plain_text.contains("Decision history (latest 3)"),
        "{}",
        history.plain_text
    );
    let status = app.command(EVE, "/status").await;
    assert!(
        status.plain_text.contains("Last successful poll"),
        "{}",
        status.plain_text
    );
    assert!(
        status.plain_text.contains("Access token: stable"),
        "{}",
        status.plain_text
    );
    let refresh = app.command(EVE, "/refresh").await;
    assert!(
        refresh.plain_text.starts_with("Refreshed"),
        "{}",
        refresh.plain_text
    );
}

#[tokio::test]
async fn commands_refuse_bad_input_and_non_approvers() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();

    let eve = app.command(EVE, &format!("/approve {appid}")).await;
    assert!(eve.plain_text.contains("Only approvers"));
    let bad = app.command(ALICE, "/approve <script>").await;
    assert!(
        bad.plain_text.contains("not a valid AppID"),
        "{}",
        bad.plain_text
    );
    assert!(bad.text.contains("&lt;script&gt;"));
    let empty = app.command(ALICE, "/approve").await;
    assert!(empty.plain_text.contains("Usage: /approve"));
    let no_reason = app.command(ALICE, &format!("/reject {appid}")).await;
    assert!(no_reason.plain_text.contains("Usage: /reject"));
    let unknown = app.command(ALICE, "/approve wx0000000000000000").await;
    assert!(unknown.plain_text.contains("No applicant"));
    let long = app
        .command(ALICE, &format!("/reject {appid} {}", "x".repeat(5000)))
        .await;
    assert!(
        long.plain_text
            .contains("5000 characters long; at most 200"),
        "{}",
        long.plain_text
    );
    let list = app.command(ALICE, "/list whatever").await;
    assert!(list.plain_text.contains("Usage: /list"));

    assert_eq!(
        app.wechat_calls("dev_agree") + app.wechat_calls("dev_refuse"),
        0
    );
    assert_eq!(app.status(&appid), Some(1));
}

#[tokio::test]
async fn other_chats_are_refused_but_chatid_answers_anywhere() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();

    let refused = app
        .command_in(OTHER_CHAT, ALICE, &format!("/approve {appid}"))
        .await;
    let chatid = app.command_in(OTHER_CHAT, EVE, "/chatid").await;

    assert!(refused.plain_text.contains("only in its team chat"));
    assert!(chatid.plain_text.contains(&OTHER_CHAT.to_string()));
    assert_eq!(app.wechat_calls("dev_agree"), 0);
}

#[tokio::test]
async fn commands_are_registered_with_telegram() {
    let app = TestApp::spawn(0).await;

    let commands: Vec<String> = app
        .tg
        .fake
        .my_commands()
        .into_iter()
        .map(|(c, _)| c)
        .collect();

    for c in [
        "help", "pending", "list", "approve", "reject", "delete", "refresh", "history", "status",
        "chatid",
    ] {
        assert!(
            commands.contains(&c.to_owned()),
            "{c} missing from {commands:?}"
        );
    }
}

#[tokio::test]
async fn a_failing_wechat_is_announced_once_and_its_recovery_once() {
    let app = TestApp::spawn(1).await;
    app.wx
        .sandbox
        .inject(wx_fault("dev_apply_list", Fault::Http(500), 1000));

    for _ in 0..4 {
        app.command(ALICE, "/refresh").await;
    }
    app.wx.sandbox.clear_faults();
    app.command(ALICE, "/refresh").await;
    app.command(ALICE, "/refresh").await;

    let texts: Vec<String> = app
        .tg
        .fake
        .bot_messages(TEAM)
        .into_iter()
        .map(|m| m.plain_text)
        .collect();
    let outages = texts
        .iter()
        .filter(|t| t.starts_with("⚠️ WeChat's application list could not be read"))
        .count();
    let recoveries = texts
        .iter()
        .filter(|t| t.starts_with("✅ Reading WeChat's application list again"))
        .count();
    assert_eq!((outages, recoveries), (1, 1), "{texts:#?}");
}

#[tokio::test]
async fn chinese_is_the_default_language() {
    let mut app = TestApp::new(1).await;
    app.vars.remove("BOT_LANG");
    app.start().await;
    app.wait_cards(1).await;
    let appid = app.appids()[0].clone();

    let card = app.card(&appid);
    let labels = button_labels(&card);
    assert_eq!(labels, ["✅ 通过", "❌ 拒绝"]);
    assert!(card.plain_text.contains("⏳ 待审核"));
}

#[tokio::test]
async fn an_edit_told_to_slow_down_waits_and_still_lands() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    app.tg
        .fake
        .inject(wxplugin_bot::testbed::fake_telegram::TgFaultRule {
            method: Some("editMessageText".into()),
            fault: wxplugin_bot::testbed::fake_telegram::TgFault::RetryAfter(1),
            times: 1,
        });
    let before = app.tg.fake.calls().len();

    app.press(ALICE, &appid, "✅");

    app.wait_card_text(&appid, "✅ Approved by @alice").await;
    let edits: Vec<_> = app
        .tg
        .fake
        .calls()
        .into_iter()
        .skip(before)
        .filter(|c| c.method == "editMessageText")
        .map(|c| c.error_code)
        .collect();
    assert_eq!(edits, vec![Some(429), None]);
}

#[tokio::test]
async fn a_card_deleted_by_a_person_is_recorded_not_retried() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    let card = app.card(&appid);
    app.tg.fake.delete_message_as_user(TEAM, card.message_id);

    let reply = app.command(ALICE, &format!("/approve {appid}")).await;
    app.wx.sandbox.set_status(&appid, 3);
    app.command(ALICE, "/refresh").await;

    assert!(
        reply.plain_text.contains("Approved by @alice"),
        "{}",
        reply.plain_text
    );
    assert_eq!(app.status(&appid), Some(3));
    let failed_edits = app
        .tg
        .fake
        .calls()
        .iter()
        .filter(|c| c.method == "editMessageText" && c.error_code.is_some())
        .count();
    assert_eq!(
        failed_edits, 1,
        "one failed edit, then the card is known to be gone"
    );
    assert_eq!(
        app.cards().len(),
        0,
        "no card is re-posted for a decided applicant"
    );
}

#[tokio::test]
async fn shutdown_lets_a_decision_in_flight_finish() {
    let mut app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    app.wx.sandbox.inject(wx_fault(
        "dev_agree",
        Fault::Delay(Duration::from_millis(700)),
        1,
    ));
    app.press(ALICE, &appid, "✅");
    let started = app
        .tg
        .fake
        .wait_until(WAIT, |_| app.wechat_calls("dev_agree") == 1)
        .await;
    assert!(started);

    app.stop().await;

    assert_eq!(app.status(&appid), Some(2));
    assert!(
        app.card(&appid)
            .plain_text
            .contains("✅ Approved by @alice")
    );
}

#[tokio::test]
async fn a_burst_of_applicants_gets_one_digest_before_its_cards() {
    let mut app = TestApp::new(25).await;
    app.vars.insert("TELEGRAM_THROTTLE", "off".into());

    app.start().await;
    app.wait_cards(25).await;
    app.command(ALICE, "/refresh").await;

    let messages = app.tg.fake.bot_messages(TEAM);
    let digests: Vec<_> = messages
        .iter()
        .filter(|m| m.plain_text.starts_with("📥"))
        .collect();
    assert_eq!(digests.len(), 1, "one digest, not one per poll");
    let digest = &digests[0].plain_text;
    assert!(
        digest.starts_with("📥 25 new plugin applications"),
        "{digest}"
    );
    // Unthrottled (a local Bot API server), the cards go at once.
    assert!(digest.contains("all within about 10 s"), "{digest}");
    assert!(digest.ends_with("… and 5 more"), "{digest}");
    assert_eq!(digest.lines().filter(|l| l.starts_with("• ")).count(), 20);
    assert_eq!(
        messages[0].plain_text, *digest,
        "the digest comes before the cards"
    );
}

/// An approver without a username (a plain name mentions nobody).
const CAROL: i64 = 1004;

/// Starts the bot with `extra` approvers added to the fake and to APPROVER_IDS.
async fn spawn_with_approvers(applicants: usize, extra: &[(i64, &str)]) -> TestApp {
    let mut app = TestApp::new(applicants).await;
    let mut ids = format!("{ALICE},{BOB}");
    for (id, name) in extra {
        app.tg.fake.add_user(FakeUser {
            id: *id,
            first_name: (*name).to_owned(),
            username: None,
            language_code: Some("en".to_owned()),
        });
        ids.push_str(&format!(",{id}"));
    }
    app.vars.insert("APPROVER_IDS", ids);
    app.start().await;
    app.wait_cards(applicants).await;
    app
}

/// Waits for the bot's ForceReply prompts in the team chat to reach `n`; returns the last.
async fn wait_prompts(app: &TestApp, n: usize) -> FakeMessage {
    let prompts = |f: &wxplugin_bot::testbed::fake_telegram::FakeTelegram| {
        f.bot_messages(TEAM)
            .into_iter()
            .filter(|m| m.force_reply)
            .collect::<Vec<_>>()
    };
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |f| prompts(f).len() >= n)
        .await;
    assert!(ok, "expected {n} prompts: {:?}", app.tg.fake.messages(TEAM));
    prompts(&app.tg.fake).pop().expect("a prompt")
}

#[tokio::test]
async fn reason_prompts_reach_the_approver_and_a_reply_to_the_second_prompt_is_the_reason() {
    let app = spawn_with_approvers(1, &[(CAROL, "Carol")]).await;
    let appid = app.appids()[0].clone();
    app.press(CAROL, &appid, "❌");
    app.wait_card_text(&appid, "choosing a reason").await;
    app.press(CAROL, &appid, "✍️");

    // The prompt replies to the card (the bot's own message): only the mention shows Carol the
    // reply box.
    let prompt = wait_prompts(&app, 1).await;
    assert!(prompt.selective);
    assert_eq!(prompt.reply_box_for, vec![CAROL], "{}", prompt.text);
    assert!(prompt.plain_text.starts_with("Carol, reply"));

    // A reason too long, deleted by Carol before the bot answers it: the second prompt is still
    // sent, reaches her, and a reply to it is the reason.
    app.tg.fake.inject(tg_fault(
        "sendMessage",
        TgFault::Delay(Duration::from_millis(500)),
        1,
    ));
    let long = app
        .tg
        .fake
        .user_replies(TEAM, CAROL, prompt.message_id, &"x".repeat(201));
    app.tg.fake.delete_message_as_user(TEAM, long);
    let again = wait_prompts(&app, 2).await;
    assert!(
        again.plain_text.contains("too long"),
        "{}",
        again.plain_text
    );
    assert_eq!(again.reply_to, None);
    assert_eq!(again.reply_box_for, vec![CAROL], "{}", again.text);
    app.tg
        .fake
        .user_replies(TEAM, CAROL, again.message_id, "Outside the plugin's scope");

    let card = app.wait_card_text(&appid, "❌ Rejected by Carol").await;
    assert!(card.plain_text.contains("Outside the plugin's scope"));
    assert_eq!(app.wechat_calls("dev_refuse"), 1);
}

#[tokio::test]
async fn a_busy_alert_naming_a_very_long_name_cuts_the_name_and_fits_200_characters() {
    // Two approvers with names longer than an alert may be; whichever presses second is told
    // the other's name.
    const DAVE: i64 = 1005;
    let (carol, dave) = ("Ł".repeat(250), "Ð".repeat(250));
    let app = spawn_with_approvers(1, &[(CAROL, &carol), (DAVE, &dave)]).await;
    let appid = app.appids()[0].clone();
    app.wx.sandbox.inject(wx_fault(
        "dev_agree",
        Fault::Delay(Duration::from_millis(500)),
        1,
    ));

    let presses = [
        app.press(CAROL, &appid, "✅"),
        app.press(DAVE, &appid, "✅"),
    ];

    app.wait_card_text(&appid, "✅ Approved by").await;
    let mut alerts = Vec::new();
    for press in &presses {
        let (text, alert) = app.answer(press).await;
        if alert {
            alerts.push(text.expect("alert text"));
        }
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    // The name is cut as the card cuts it, so the alert keeps its words and fits Telegram's 200.
    let text = &alerts[0];
    assert!(text.chars().count() <= 200, "{text}");
    assert!(
        (text.starts_with("ŁŁŁ") || text.starts_with("ÐÐÐ"))
            && text.contains("… has been deciding this since ")
            && text.ends_with("wait for the outcome."),
        "{text}"
    );
    assert_eq!(app.wechat_calls("dev_agree"), 1);
}

/// An anonymous admin posts `text` (optionally as a reply) and returns the bot's answer.
async fn anonymous(app: &TestApp, text: &str, reply_to: Option<i32>) -> FakeMessage {
    let sent = app.tg.fake.anonymous_admin_sends(TEAM, text, reply_to);
    let answered = |f: &wxplugin_bot::testbed::fake_telegram::FakeTelegram| {
        f.bot_messages(TEAM)
            .into_iter()
            .find(|m| m.reply_to == Some(sent))
    };
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |f| answered(f).is_some())
        .await;
    assert!(ok, "no answer to the anonymous {text:?}");
    answered(&app.tg.fake).expect("answer")
}

#[tokio::test]
async fn anonymous_admins_cannot_decide_by_message_but_their_presses_count() {
    let mut app = TestApp::new(2).await;
    // Approvers are the chat's admins; Alice is one and posts anonymously.
    app.vars.remove("APPROVER_IDS");
    app.tg.fake.set_anonymous_admins(TEAM, &[ALICE]);
    app.start().await;
    app.wait_cards(2).await;
    let ids = app.appids();

    let approve = anonymous(&app, &format!("/approve {}", ids[0]), None).await;
    let pending = anonymous(&app, "/pending", None).await;
    assert!(
        approve
            .plain_text
            .contains("Anonymous admins cannot decide"),
        "{}",
        approve.plain_text
    );
    assert!(pending.plain_text.contains("Pending applications (2)"));

    // Her presses carry her own id: she starts a typed refusal…
    app.press(ALICE, &ids[0], "❌");
    app.wait_card_text(&ids[0], "choosing a reason").await;
    app.press(ALICE, &ids[0], "✍️");
    let prompt = wait_prompts(&app, 1).await;
    // …but her anonymous reply cannot be the reason.
    let reply = anonymous(&app, "Not for gambling apps", Some(prompt.message_id)).await;
    assert!(reply.plain_text.contains("Anonymous admins cannot decide"));
    // A press by her real id decides.
    app.press(ALICE, &ids[1], "✅");
    app.wait_card_text(&ids[1], "✅ Approved by @alice").await;

    assert_eq!(app.status(&ids[0]), Some(1));
    assert_eq!(app.wechat_calls("dev_refuse"), 0);
    assert_eq!(app.wechat_calls("dev_agree"), 1);
}

#[tokio::test]
async fn a_5xx_page_from_telegrams_proxy_delays_a_card_and_an_edit_to_the_next_poll() {
    let app = TestApp::spawn(1).await;
    let approved = app.appids()[0].clone();
    let new = app.wx.sandbox.add_applicant(NewApplicant {
        nickname: Some("Late Shop".into()),
        ..NewApplicant::default()
    });
    // The edit that shows the decision gets the proxy's page (teloxide waits 10 s after a 5xx,
    // then cannot read the HTML as JSON)…
    app.wx.sandbox.inject(wx_fault(
        "dev_agree",
        Fault::Delay(Duration::from_millis(500)),
        1,
    ));
    app.press(ALICE, &approved, "✅");
    let deadline = std::time::Instant::now() + WAIT;
    while app.wechat_calls("dev_agree") == 0 {
        assert!(std::time::Instant::now() < deadline, "no dev_agree");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.tg
        .fake
        .inject(tg_fault("editMessageText", TgFault::Http(502), 1));
    let failed = |f: &wxplugin_bot::testbed::fake_telegram::FakeTelegram, method: &str| {
        f.calls()
            .iter()
            .any(|c| c.method == method && c.error_code == Some(502))
    };
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |f| failed(f, "editMessageText"))
        .await;
    assert!(ok, "the edit was never tried");
    tokio::time::sleep(Duration::from_secs(1)).await;
    // …and so does the new applicant's card, sent by a poll.
    app.tg
        .fake
        .inject(tg_fault("sendMessage", TgFault::Http(502), 1));
    let refresh = app.tg.fake.user_sends(TEAM, BOB, "/refresh");
    let answered = app
        .tg
        .fake
        .wait_until(Duration::from_secs(25), |f| {
            f.bot_messages(TEAM)
                .iter()
                .any(|m| m.reply_to == Some(refresh))
        })
        .await;
    assert!(answered, "no answer to /refresh");
    assert!(failed(&app.tg.fake, "sendMessage"));
    assert_eq!(app.status(&approved), Some(2), "WeChat approved at once");
    assert!(
        app.card_for(&new).is_none(),
        "the failed send posted nothing"
    );

    // The next poll sends the card, once; a poll after the failed edit brings the stale card up
    // to date (here the first may already have).
    app.command(BOB, "/refresh").await;
    app.wait_card_text(&approved, "✅ Approved by @alice").await;
    app.wait_card_text(&new, "Late Shop").await;
    let cards_of_new = app
        .cards()
        .iter()
        .filter(|c| c.plain_text.contains(&new))
        .count();
    assert_eq!(cards_of_new, 1);
    assert_eq!(app.wechat_calls("dev_agree"), 1);
}

#[tokio::test]
async fn only_the_people_in_delete_ids_may_delete_by_button_or_command() {
    let mut app = TestApp::new(1).await;
    // Eve decides nothing, but cleans up; Alice and Bob approve and reject, and may not delete.
    app.vars.insert("DELETE_IDS", EVE.to_string());
    app.start().await;
    app.wait_cards(1).await;
    let appid = app.appids()[0].clone();
    app.command(BOB, &format!("/reject {appid} not ours")).await;
    app.wait_card_text(&appid, "❌ Rejected by @bob").await;

    let press = app.press(ALICE, &appid, "🗑");
    let (text, alert) = app.answer(&press).await;
    assert!(alert);
    assert_eq!(
        text.as_deref(),
        Some("Only the people listed in DELETE_IDS can delete plugin applications.")
    );
    let reply = app.command(BOB, &format!("/delete {appid}")).await;
    assert_eq!(
        reply.plain_text,
        "Only the people listed in DELETE_IDS can delete plugin applications."
    );
    let approve = app.command(EVE, &format!("/approve {appid}")).await;
    assert!(
        approve.plain_text.starts_with("Only approvers"),
        "DELETE_IDS gives no right to decide: {}",
        approve.plain_text
    );
    assert_eq!(app.wechat_calls("dev_delete"), 0);

    let press = app.press(EVE, &appid, "🗑");
    app.wait_card_text(&appid, "🗑 Deleted by Eve").await;
    let (_, alert) = app.answer(&press).await;
    assert!(!alert);
    assert_eq!(app.wechat_calls("dev_delete"), 1);
    assert!(app.status(&appid).is_none(), "deleted in WeChat");
}
