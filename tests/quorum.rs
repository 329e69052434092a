//! Quorum (`APPROVALS_REQUIRED`), end to end against the WeChat sandbox and the fake Bot API: a
//! ✅ is a vote until that many distinct approvers have voted, and only then does one
//! `dev_agree` go out; a vote can be withdrawn, a ❌ with its reason vetoes, votes survive a
//! restart, and `/history` names every voter.

mod common;

use common::*;

/// A bot asking `needed` approvals, started with `applicants` carded.
async fn quorum_app(applicants: usize, needed: u32) -> TestApp {
    let mut app = TestApp::new(applicants).await;
    app.vars.insert("APPROVALS_REQUIRED", needed.to_string());
    app.start().await;
    app.wait_cards(applicants).await;
    app
}

/// Presses `prefix` on `appid`'s card as `who` and returns the answer (text, shown as alert).
async fn press_answer(app: &TestApp, who: i64, appid: &str, prefix: &str) -> (String, bool) {
    let id = app.press(who, appid, prefix);
    let (text, alert) = app.answer(&id).await;
    (text.unwrap_or_default(), alert)
}

#[tokio::test]
async fn two_distinct_approvers_approve_once_and_one_vote_does_not() {
    let app = quorum_app(1, 2).await;
    let appid = app.appids()[0].clone();
    assert_eq!(
        button_labels(&app.card(&appid)),
        ["✅ Approve (0/2)", "❌ Reject"]
    );

    let (text, alert) = press_answer(&app, ALICE, &appid, "✅").await;
    assert!(!alert && text.contains("1/2"), "{text}");
    let card = app.wait_card_text(&appid, "👍 1/2 · @alice").await;
    assert_eq!(
        button_labels(&card),
        ["✅ Approve (1/2)", "❌ Reject", "↩ Withdraw my vote"]
    );
    assert!(card.plain_text.contains("Pending"), "{}", card.plain_text);

    // The same approver again is no second vote; someone who is no approver has none.
    let (text, alert) = press_answer(&app, ALICE, &appid, "✅").await;
    assert!(alert && text.contains("already voted"), "{text}");
    let (_, alert) = press_answer(&app, EVE, &appid, "✅").await;
    assert!(alert, "a non-approver's press is refused");
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    assert_eq!(app.status(&appid), Some(1));
    assert!(app.card(&appid).plain_text.contains("👍 1/2 · @alice"));

    // The second distinct approver completes the quorum and is the decision's actor.
    app.press(BOB, &appid, "✅");
    let card = app.wait_card_text(&appid, "Approved by @bob").await;
    assert!(card.buttons.iter().flatten().next().is_none());
    assert_eq!(app.wechat_calls("dev_agree"), 1);
    assert_eq!(app.status(&appid), Some(2));

    let history = app
        .command(ALICE, &format!("/history {appid}"))
        .await
        .plain_text;
    assert_eq!(history.matches("👍 voted").count(), 2, "{history}");
    assert!(
        history.contains("alice") && history.contains("bob"),
        "{history}"
    );
}

#[tokio::test]
async fn a_withdrawn_vote_does_not_count() {
    let app = quorum_app(1, 2).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "👍 1/2 · @alice").await;

    // Only a voter can withdraw, and only their own vote.
    let (text, alert) = press_answer(&app, BOB, &appid, "↩").await;
    assert!(alert && text.contains("no vote"), "{text}");
    let (text, alert) = press_answer(&app, ALICE, &appid, "↩").await;
    assert!(!alert && text.contains("0/2"), "{text}");
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |_| {
            button_labels(&app.card(&appid)) == ["✅ Approve (0/2)", "❌ Reject"]
        })
        .await;
    assert!(ok, "{:?}", button_labels(&app.card(&appid)));
    assert!(!app.card(&appid).plain_text.contains("👍"));

    // Bob's vote alone is one of two: nothing goes to WeChat.
    app.press(BOB, &appid, "✅");
    app.wait_card_text(&appid, "👍 1/2 · @bob").await;
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    assert_eq!(app.status(&appid), Some(1));
    let history = app
        .command(ALICE, &format!("/history {appid}"))
        .await
        .plain_text;
    assert!(history.contains("↩ vote withdrawn"), "{history}");
}

#[tokio::test]
async fn a_veto_rejects_at_once_whatever_the_votes() {
    let app = quorum_app(1, 2).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "👍 1/2 · @alice").await;
    app.press(BOB, &appid, "❌");
    app.wait_card_text(&appid, "is choosing a reason").await;
    let reason = app.settings().reject_reasons[0].clone();
    app.press(BOB, &appid, &format!("❌ {reason}"));
    let card = app.wait_card_text(&appid, "❌ Rejected by @bob").await;
    assert!(!card.plain_text.contains("👍"), "{}", card.plain_text);
    assert_eq!(app.wechat_calls("dev_refuse"), 1);
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    assert_eq!(app.status(&appid), Some(3));
}

#[tokio::test]
async fn votes_survive_a_restart_and_commands_vote_like_buttons() {
    let mut app = quorum_app(1, 2).await;
    let appid = app.appids()[0].clone();
    let reply = app.command(ALICE, &format!("/approve {appid}")).await;
    assert!(
        reply.plain_text.contains("your vote counts, 1/2"),
        "{}",
        reply.plain_text
    );
    app.wait_card_text(&appid, "👍 1/2 · @alice").await;
    let again = app.command(ALICE, &format!("/approve {appid}")).await;
    assert!(
        again.plain_text.contains("already voted"),
        "{}",
        again.plain_text
    );

    app.restart().await;
    assert!(app.card(&appid).plain_text.contains("👍 1/2 · @alice"));
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    // Alice's vote from before the restart still counts: Bob's completes the quorum.
    let reply = app.command(BOB, &format!("/approve {appid}")).await;
    assert!(
        reply.plain_text.contains("Approved by @bob"),
        "{}",
        reply.plain_text
    );
    app.wait_card_text(&appid, "Approved by @bob").await;
    assert_eq!(app.wechat_calls("dev_agree"), 1);
}

#[tokio::test]
async fn last_votes_pressed_at_once_send_one_approval() {
    let mut app = TestApp::new(1).await;
    app.vars.insert("APPROVALS_REQUIRED", "2".to_owned());
    app.vars
        .insert("APPROVER_IDS", format!("{ALICE},{BOB},{EVE}"));
    app.start().await;
    app.wait_cards(1).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "👍 1/2").await;
    // Bob and Eve at once: either completes the quorum; one approval goes out.
    let bob = app.press(BOB, &appid, "✅");
    let eve = app.press(EVE, &appid, "✅");
    app.answer(&bob).await;
    app.answer(&eve).await;
    app.wait_card_text(&appid, "Approved by").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.wechat_calls("dev_agree"), 1);
    assert_eq!(app.status(&appid), Some(2));
}

#[tokio::test]
async fn a_status_change_elsewhere_settles_the_card_and_keeps_the_votes_in_the_log() {
    let app = quorum_app(1, 2).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "👍 1/2 · @alice").await;
    app.wx.sandbox.set_status(&appid, 2);
    app.command(BOB, "/refresh").await;
    let card = app.wait_card_text(&appid, "Changed outside the bot").await;
    assert!(!card.plain_text.contains("👍"), "{}", card.plain_text);
    assert!(
        !button_labels(&card).iter().any(|l| l.starts_with('✅')),
        "{:?}",
        button_labels(&card)
    );
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    let history = app
        .command(ALICE, &format!("/history {appid}"))
        .await
        .plain_text;
    assert!(
        history.contains("alice") && history.contains("👍 voted"),
        "{history}"
    );
}

#[tokio::test]
async fn a_vote_of_someone_no_longer_an_approver_does_not_complete_the_quorum() {
    let mut app = quorum_app(1, 2).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "👍 1/2 · @alice").await;
    // Alice leaves the approvers; Eve joins.
    app.vars.insert("APPROVER_IDS", format!("{BOB},{EVE}"));
    app.restart().await;
    let (text, _) = press_answer(&app, EVE, &appid, "✅").await;
    assert!(text.contains("1/2"), "{text}");
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    // The card counts as the quorum does: Alice's vote stays in sight, apart and uncounted.
    let card = app
        .wait_card_text(&appid, "(not counted: @alice, no longer an approver)")
        .await;
    assert!(
        card.plain_text.contains("👍 1/2 · Eve"),
        "{}",
        card.plain_text
    );
    assert_eq!(button_labels(&card)[0], "✅ Approve (1/2)");
    assert_eq!(app.status(&appid), Some(1));
    app.press(BOB, &appid, "✅");
    app.wait_card_text(&appid, "Approved by @bob").await;
    assert_eq!(app.wechat_calls("dev_agree"), 1);
}
