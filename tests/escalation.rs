//! Escalation (`ESCALATE_AFTER_HOURS`) and direct messages (`/subscribe`), end to end against
//! the WeChat sandbox and the fake Bot API: an applicant waiting too long is escalated once,
//! naming every approver by a text mention (people without a username too); approvers who
//! subscribed in a private chat get a direct message for each new card and each escalation, with
//! a link to the card; one who blocked the bot is recorded once and not messaged again.

mod common;

use std::time::Duration;

use common::*;
use wxplugin_bot::testbed::sandbox::NewApplicant;

/// The bot's messages in `chat` containing `needle`.
fn said(app: &TestApp, chat: i64, needle: &str) -> Vec<String> {
    app.tg
        .fake
        .bot_messages(chat)
        .into_iter()
        .filter(|m| m.plain_text.contains(needle))
        .map(|m| m.text)
        .collect()
}

/// sendMessage calls the bot made to `chat`, answered or refused.
fn sends_to(app: &TestApp, chat: i64) -> usize {
    app.tg
        .fake
        .calls()
        .iter()
        .filter(|c| c.method == "sendMessage" && c.params["chat_id"].as_i64() == Some(chat))
        .count()
}

#[tokio::test]
async fn a_long_wait_names_every_approver_once_and_messages_subscribers() {
    let mut app = TestApp::new(0).await;
    app.vars
        .insert("APPROVER_IDS", format!("{ALICE},{BOB},{EVE}"));
    app.vars.insert("ESCALATE_AFTER_HOURS", "72".to_owned());
    app.vars.insert("REMIND_AFTER_HOURS", "0".to_owned());
    for user in [ALICE, BOB, EVE] {
        app.tg.fake.add_private_chat(user);
    }
    app.start().await;

    // Subscribing is for approvers, in a private chat.
    let in_team = app.command(ALICE, "/subscribe").await.plain_text;
    assert!(in_team.contains("private chat"), "{in_team}");
    for user in [ALICE, BOB, EVE] {
        let reply = app.command_in(user, user, "/subscribe").await.plain_text;
        assert!(reply.contains("Subscribed"), "{reply}");
    }
    app.tg.fake.add_private_chat(1004);
    app.tg
        .fake
        .add_user(wxplugin_bot::testbed::fake_telegram::FakeUser {
            id: 1004,
            first_name: "Mallory".to_owned(),
            username: None,
            language_code: None,
        });
    let refused = app.command_in(1004, 1004, "/subscribe").await.plain_text;
    assert!(refused.contains("Only approvers"), "{refused}");
    // Eve blocks the bot after subscribing (the bot's answer to her /subscribe was its last
    // message to her).
    app.tg.fake.block_bot(EVE);
    let answered_eve = sends_to(&app, EVE);

    let now = jiff::Timestamp::now().as_second();
    let old = app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(now - 80 * 3600),
        ..NewApplicant::default()
    });
    let fresh = app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(now - 3600),
        ..NewApplicant::default()
    });
    // Escalation is looked for at the start and every ten minutes after.
    app.restart().await;
    app.wait_cards(2).await;
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |_| !said(&app, TEAM, "🚨").is_empty())
        .await;
    assert!(ok, "no escalation");
    let escalation = said(&app, TEAM, "🚨").remove(0);
    assert!(escalation.contains(old.as_str()), "{escalation}");
    assert!(!escalation.contains(fresh.as_str()), "{escalation}");
    for user in [ALICE, BOB, EVE] {
        assert!(
            escalation.contains(&format!("tg://user?id={user}")),
            "{user} is not mentioned: {escalation}"
        );
    }
    // Eve has no username: her mention carries her name.
    assert!(escalation.contains(">Eve</a>"), "{escalation}");

    // Alice and Bob get a direct message per new card and one for the escalation, each with a
    // link to the card; Eve's first refused message was the last one tried.
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |_| {
            [ALICE, BOB]
                .iter()
                .all(|u| said(&app, *u, "Waiting").len() == 1 && said(&app, *u, "New").len() == 2)
        })
        .await;
    assert!(ok, "{:?}", said(&app, ALICE, ""));
    let card = app.card(old.as_str());
    let dm = said(&app, ALICE, "Waiting").remove(0);
    assert!(
        dm.contains(&format!("https://t.me/c/1234567890/{}", card.message_id)),
        "{dm}"
    );
    assert_eq!(
        sends_to(&app, EVE),
        answered_eve + 1,
        "the blocked subscriber was tried again"
    );

    // Once per application: a restart escalates nothing again, and Eve is not tried again.
    app.restart().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(said(&app, TEAM, "🚨").len(), 1);
    let third = app.wx.sandbox.add_applicant(NewApplicant::default());
    app.command(BOB, "/refresh").await;
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |_| {
            said(&app, BOB, third.as_str()).len() == 1
                && said(&app, ALICE, third.as_str()).len() == 1
        })
        .await;
    assert!(ok, "no direct message for the third card");
    assert_eq!(sends_to(&app, EVE), answered_eve + 1);

    // /unsubscribe stops them.
    let reply = app.command_in(BOB, BOB, "/unsubscribe").await.plain_text;
    assert!(reply.contains("Unsubscribed"), "{reply}");
    let fourth = app.wx.sandbox.add_applicant(NewApplicant::default());
    app.command(ALICE, "/refresh").await;
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |_| said(&app, ALICE, fourth.as_str()).len() == 1)
        .await;
    assert!(ok);
    assert!(said(&app, BOB, fourth.as_str()).is_empty());
}
