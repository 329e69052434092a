//! The undo window (`UNDO_SECS`), end to end against the WeChat sandbox and the fake Bot API: a
//! decision waits out its window with ↩ Undo on the card before its one WeChat write; ↩ within
//! the window writes nothing and puts the card back (votes included); a stop or a SIGKILL inside
//! the window neither loses nor doubles the decision, and the card says how it went on.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// A bot whose decisions wait `secs` seconds, with `applicants` carded.
async fn undo_app(applicants: usize, secs: u64) -> TestApp {
    let mut app = TestApp::new(applicants).await;
    app.vars.insert("UNDO_SECS", secs.to_string());
    app.start().await;
    app.wait_cards(applicants).await;
    app
}

/// Presses `prefix` on `appid`'s card as `who` and returns the answer's text.
async fn press_answer(app: &TestApp, who: i64, appid: &str, prefix: &str) -> String {
    let id = app.press(who, appid, prefix);
    app.answer(&id).await.0.unwrap_or_default()
}

#[tokio::test]
async fn undo_inside_the_window_writes_nothing_and_puts_the_card_back() {
    let app = undo_app(1, 3).await;
    let appid = app.appids()[0].clone();
    let text = press_answer(&app, ALICE, &appid, "✅").await;
    assert!(text.contains("Approve in"), "{text}");
    let card = app.wait_card_text(&appid, "goes to WeChat at").await;
    assert_eq!(button_labels(&card), ["↩ Undo"]);
    assert!(card.plain_text.contains("@alice"), "{}", card.plain_text);

    // Any approver may undo.
    let text = press_answer(&app, BOB, &appid, "↩").await;
    assert!(text.contains("Undone"), "{text}");
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |_| {
            button_labels(&app.card(&appid)) == ["✅ Approve", "❌ Reject"]
        })
        .await;
    assert!(ok, "{:?}", app.card(&appid).plain_text);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    assert_eq!(app.status(&appid), Some(1));
    assert!(app.card(&appid).plain_text.contains("Pending"));
    // A second ↩ on the card as it was has nothing to take back.
    let history = app
        .command(ALICE, &format!("/history {appid}"))
        .await
        .plain_text;
    assert!(
        history.contains("⏳ scheduled") && history.contains("↩ undone"),
        "{history}"
    );
}

#[tokio::test]
async fn the_window_s_end_sends_exactly_one_write() {
    let app = undo_app(1, 3).await;
    let appid = app.appids()[0].clone();
    let pressed = Instant::now();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "goes to WeChat at").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.wechat_calls("dev_agree"), 0, "sent inside the window");
    app.wait_card_text(&appid, "Approved by @alice").await;
    assert!(
        pressed.elapsed() >= Duration::from_millis(2900),
        "{:?}",
        pressed.elapsed()
    );
    assert_eq!(app.wechat_calls("dev_agree"), 1);
    assert_eq!(app.status(&appid), Some(2));
    // A late ↩ is told what happened.
    let card = app.card(&appid);
    assert!(card.buttons.iter().flatten().next().is_none());
}

#[tokio::test]
async fn undone_and_decided_again_waits_out_the_new_window_not_the_old() {
    let app = undo_app(1, 3).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "goes to WeChat at").await;
    press_answer(&app, ALICE, &appid, "↩").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = Instant::now();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "goes to WeChat at").await;
    // The first window's end comes and goes: it is not this decision's.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        app.wechat_calls("dev_agree"),
        0,
        "the undone window's end sent the new decision early"
    );
    app.wait_card_text(&appid, "Approved by @alice").await;
    assert!(again.elapsed() >= Duration::from_millis(2900));
    assert_eq!(app.wechat_calls("dev_agree"), 1);
}

#[tokio::test]
async fn a_rejection_waits_too_and_undo_returns_the_card_to_open() {
    let app = undo_app(1, 2).await;
    let appid = app.appids()[0].clone();
    let reason = app.settings().reject_reasons[0].clone();
    app.press(BOB, &appid, "❌");
    app.wait_card_text(&appid, "is choosing a reason").await;
    app.press(BOB, &appid, &format!("❌ {reason}"));
    let card = app.wait_card_text(&appid, "goes to WeChat at").await;
    assert!(card.plain_text.contains(&reason), "{}", card.plain_text);
    press_answer(&app, ALICE, &appid, "↩").await;
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |_| {
            button_labels(&app.card(&appid)) == ["✅ Approve", "❌ Reject"]
        })
        .await;
    assert!(ok);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.wechat_calls("dev_refuse"), 0);
    // The command path waits as well.
    let reply = app
        .command(BOB, &format!("/reject {appid} {reason}"))
        .await
        .plain_text;
    assert!(reply.contains("goes to WeChat at"), "{reply}");
    app.wait_card_text(&appid, "Rejected by @bob").await;
    assert_eq!(app.wechat_calls("dev_refuse"), 1);
}

#[tokio::test]
async fn a_quorum_s_votes_survive_an_undo() {
    let mut app = TestApp::new(1).await;
    app.vars.insert("UNDO_SECS", "3".to_owned());
    app.vars.insert("APPROVALS_REQUIRED", "2".to_owned());
    app.start().await;
    app.wait_cards(1).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "👍 1/2").await;
    app.press(BOB, &appid, "✅");
    app.wait_card_text(&appid, "goes to WeChat at").await;
    press_answer(&app, ALICE, &appid, "↩").await;
    let ok = app
        .tg
        .fake
        .wait_until(WAIT, |_| {
            button_labels(&app.card(&appid))
                == ["✅ Approve (2/2)", "❌ Reject", "↩ Withdraw my vote"]
        })
        .await;
    assert!(ok, "{:?}", button_labels(&app.card(&appid)));
    assert!(
        app.card(&appid)
            .plain_text
            .contains("👍 2/2 · @alice; @bob")
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    // The quorum still stands: a voter's ✅ decides again.
    app.press(BOB, &appid, "✅");
    app.wait_card_text(&appid, "Approved by @bob").await;
    assert_eq!(app.wechat_calls("dev_agree"), 1);
}

#[tokio::test]
async fn a_status_changed_in_the_console_during_the_window_sends_nothing() {
    let app = undo_app(1, 3).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "goes to WeChat at").await;
    app.wx.sandbox.set_status(&appid, 3);
    app.command(BOB, "/refresh").await;
    app.wait_card_text(&appid, "Changed outside the bot").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    assert_eq!(app.status(&appid), Some(3));
}

#[tokio::test]
async fn a_stop_inside_the_window_resumes_it_from_the_stored_deadline() {
    let mut app = undo_app(1, 6).await;
    let appid = app.appids()[0].clone();
    let pressed = Instant::now();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "goes to WeChat at").await;
    let stopping = Instant::now();
    app.stop().await;
    // A stop takes up to two seconds of its own (the update listener's grace); the window's
    // remaining six would show.
    assert!(
        stopping.elapsed() < Duration::from_millis(3500),
        "the stop waited for the window: {:?}",
        stopping.elapsed()
    );
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    app.restart_stopped().await;
    let card = app.wait_card_text(&appid, "resumed after a restart").await;
    assert_eq!(button_labels(&card), ["↩ Undo"]);
    app.wait_card_text(&appid, "Approved by @alice").await;
    assert!(pressed.elapsed() >= Duration::from_millis(5900));
    assert_eq!(app.wechat_calls("dev_agree"), 1);
}

#[tokio::test]
async fn sigkill_inside_the_window_then_a_restart_after_it_sends_one_write_and_says_so() {
    let mut app = TestApp::new(1).await;
    app.vars.insert("UNDO_SECS", "2".to_owned());
    let appid = app.appids()[0].clone();
    let first = app.start_process(1, &[]).await;
    app.wait_cards(1).await;
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "goes to WeChat at").await;
    first.kill();
    // Down past the window's end.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    let second = app.start_process(2, &[]).await;
    let card = app.wait_card_text(&appid, "Approved by @alice").await;
    assert!(
        card.plain_text.contains("ended while the bot was stopped"),
        "{}",
        card.plain_text
    );
    app.command(BOB, "/refresh").await;
    second.terminate();
    assert_eq!(app.wechat_calls("dev_agree"), 1);
    assert_eq!(app.status(&appid), Some(2));
    app.vars.remove("UNDO_SECS");
}
