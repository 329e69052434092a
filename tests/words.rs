//! What the chat reads, end to end through the real bot (issue 21): every answer names what it
//! is about and what is true, in the chat's language, with Chinese punctuation, readable times
//! and durations; text from outside shows verbatim.

mod common;

use std::time::Duration;

use common::*;
use wxplugin_bot::testbed::sandbox::{Fault, NewApplicant};

const WAIT: Duration = Duration::from_secs(10);

async fn zh(applicants: usize) -> TestApp {
    let mut app = TestApp::new(applicants).await;
    app.vars.insert("BOT_LANG", "zh".to_owned());
    app.vars.insert("TZ", "CST-8".to_owned());
    app
}

#[tokio::test]
async fn a_resting_poller_says_so_in_chinese_with_a_readable_time() {
    let mut app = zh(1).await;
    app.wx
        .sandbox
        .inject(wx_fault("dev_apply_list", Fault::Errcode(45009), 100));
    app.start().await;
    let announced = app
        .tg
        .fake
        .wait_until(WAIT, |f| {
            f.bot_messages(TEAM)
                .iter()
                .any(|m| m.plain_text.contains("45009"))
        })
        .await;
    assert!(announced, "the quota was announced");

    let refresh = app.command(ALICE, "/refresh").await.plain_text;
    assert!(
        refresh.contains("微信接口今日调用次数已用完"),
        "in Chinese: {refresh}"
    );
    assert!(refresh.contains("UTC+8"), "a time people read: {refresh}");
    assert!(
        !refresh
            .split(|c: char| !c.is_ascii_digit())
            .any(|n| n.len() >= 9),
        "no raw Unix time: {refresh}"
    );

    let status = app.command(ALICE, "/status").await.plain_text;
    assert!(
        status.contains("⏸ 微信接口今日调用次数已用完（45009），暂停读取至 "),
        "/status says polling rests and until when: {status}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_command_that_cannot_be_done_names_the_appid_its_status_and_who_decided() {
    let mut app = zh(0).await;
    let appid = app.wx.sandbox.add_applicant(NewApplicant::default());
    // Refused before the bot first looked: it never had a card.
    let refused = app.wx.sandbox.add_applicant(NewApplicant {
        status: Some(3),
        ..NewApplicant::default()
    });
    app.start().await;
    app.wait_cards(1).await;
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "已由 @alice 通过").await;

    let again = app
        .command(BOB, &format!("/approve {appid}"))
        .await
        .plain_text;
    assert!(again.contains(&appid), "{again}");
    assert!(again.contains("当前为「已通过」，无法通过。"), "{again}");
    assert!(again.contains("已由 @alice 通过"), "who decided: {again}");

    let no_card = app
        .command(BOB, &format!("/approve {refused}"))
        .await
        .plain_text;
    assert!(
        no_card.contains(&format!("{refused} 当前为「已拒绝」，无法通过。")),
        "{no_card}"
    );
    assert_eq!(app.wechat_calls("dev_agree"), 1);
    app.stop().await;
}

#[tokio::test]
async fn pending_lists_the_oldest_first_and_says_how_many_it_left_out() {
    let mut app = zh(0).await;
    app.vars.insert("TELEGRAM_THROTTLE", "off".into());
    let now = jiff::Timestamp::now().as_second();
    // 35 applicants, the oldest added last.
    let appids: Vec<String> = (0..35)
        .map(|i| {
            app.wx.sandbox.add_applicant(NewApplicant {
                create_time: Some(now - 3600 - i * 60),
                ..NewApplicant::default()
            })
        })
        .collect();
    app.start().await;
    app.wait_cards(35).await;

    let pending = app.command(ALICE, "/pending").await.plain_text;
    let listed: Vec<&str> = pending.lines().filter(|l| l.starts_with("• ")).collect();
    assert_eq!(listed.len(), 30, "{pending}");
    // Oldest first: the last added (the oldest) leads; the five newest are the ones left out.
    assert!(listed[0].contains(&appids[34]), "{pending}");
    assert!(listed[29].contains(&appids[5]), "{pending}");
    for newest in &appids[..5] {
        assert!(!pending.contains(newest.as_str()), "{pending}");
    }
    assert!(pending.ends_with("…另有 5 份未列出"), "{pending}");
    assert!(!pending.contains('+'), "{pending}");

    let all = app.command(ALICE, "/list").await.plain_text;
    assert!(all.starts_with("全部申请（35）："), "{all}");
    app.stop().await;
}

#[tokio::test]
async fn a_reminder_waits_until_the_cards_it_points_to_have_been_up_a_while() {
    let mut app = zh(0).await;
    app.remind_settle = Duration::from_secs(3);
    let now = jiff::Timestamp::now().as_second();
    app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(now - 30 * 3600),
        ..NewApplicant::default()
    });
    app.start().await;
    app.wait_cards(1).await;
    let reminders = |app: &TestApp| {
        app.tg
            .fake
            .bot_messages(TEAM)
            .into_iter()
            .filter(|m| m.plain_text.starts_with('⏰'))
            .count()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(reminders(&app), 0, "not within seconds of the card");

    tokio::time::sleep(Duration::from_secs(3)).await;
    // The next check (a restart runs one at once) finds the card settled.
    app.restart().await;
    let reminded = app.tg.fake.wait_until(WAIT, |_| reminders(&app) == 1).await;
    assert!(reminded, "the reminder came once the card had been up");
    app.stop().await;
}

#[tokio::test]
async fn a_slow_write_shows_who_is_deciding_meanwhile() {
    let mut app = zh(1).await;
    app.vars.insert("WECHAT_TIMEOUT_SECS", "10".to_owned());
    app.start().await;
    app.wait_cards(1).await;
    let appid = app.appids()[0].clone();
    app.wx.sandbox.inject(wx_fault(
        "dev_agree",
        Fault::Delay(Duration::from_millis(3000)),
        1,
    ));

    app.press(ALICE, &appid, "✅");

    // The sandbox applies the write at once and holds its answer 3 s.
    let started = std::time::Instant::now();
    let card = app.wait_card_text(&appid, "⏳ @alice 正在通过…").await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "shown while WeChat's answer is still out: {:?}",
        started.elapsed()
    );
    assert!(button_labels(&card).is_empty(), "{:?}", card.buttons);
    app.wait_card_text(&appid, "✅ 已由 @alice 通过").await;
    app.stop().await;
}

#[tokio::test]
async fn a_resend_told_already_done_that_a_re_read_shows_pending_says_what_is_known() {
    let mut app = zh(1).await;
    app.start().await;
    app.wait_cards(1).await;
    let appid = app.appids()[0].clone();
    // -1, not applied; the resend is told 89240 (the sandbox takes the first rule that matches,
    // once); the re-read shows it still pending.
    app.wx
        .sandbox
        .inject(wx_fault("dev_agree", Fault::Errcode(-1), 1));
    app.wx
        .sandbox
        .inject(wx_fault("dev_agree", Fault::Errcode(89240), 1));

    app.press(ALICE, &appid, "✅");

    let card = app.wait_card_text(&appid, "没有生效").await;
    let text = &card.plain_text;
    assert!(text.contains("微信没有给出明确答复（89240："), "{text}");
    assert!(text.contains("重新读取后仍为待审核"), "{text}");
    assert!(!text.contains("无法连接微信"), "WeChat did answer: {text}");
    assert!(button_labels(&card).iter().any(|b| b.starts_with('✅')));
    assert_eq!(app.status(&appid), Some(1));
    app.stop().await;
}

#[tokio::test]
async fn a_command_reason_too_long_says_to_send_the_command_again() {
    let mut app = zh(1).await;
    app.start().await;
    app.wait_cards(1).await;
    let appid = app.appids()[0].clone();

    let reason = "理".repeat(250);
    let answer = app
        .command(ALICE, &format!("/reject {appid} {reason}"))
        .await
        .plain_text;

    assert!(
        answer.contains("理由太长了（250 个字，最多 200 个字）"),
        "{answer}"
    );
    assert!(
        answer.contains("重新发送 /reject <appid> <理由>"),
        "{answer}"
    );
    assert!(!answer.contains("回复"), "nothing to reply to: {answer}");
    assert_eq!(app.wechat_calls("dev_refuse"), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_appid_is_explained_in_the_chat_language() {
    let mut app = zh(1).await;
    app.start().await;
    app.wait_cards(1).await;

    let answer = app.command(ALICE, "/approve wx<b>").await.plain_text;

    assert!(
        answer.contains("「wx<b>」不是有效的 AppID：AppID 只能包含英文字母、数字"),
        "{answer}"
    );
    assert!(!answer.contains("may hold"), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn times_show_their_offset_and_milliseconds_or_nothing_still_say_when() {
    let mut app = zh(0).await;
    let millis = app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(1_536_305_096_000),
        ..NewApplicant::default()
    });
    let missing = app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(0),
        ..NewApplicant::default()
    });
    app.start().await;
    app.wait_cards(2).await;

    let card = app.card(&millis).plain_text;
    assert!(
        card.contains("申请时间：2018-09-07 15:24 UTC+8"),
        "milliseconds read as such, in TZ=CST-8: {card}"
    );
    assert!(!card.contains("CST"), "{card}");
    let card = app.card(&missing).plain_text;
    assert!(card.contains("申请时间：未知"), "{card}");
    app.stop().await;
}

#[tokio::test]
async fn history_names_people_without_mentioning_them() {
    let mut app = zh(1).await;
    app.start().await;
    app.wait_cards(1).await;
    let appid = app.appids()[0].clone();
    app.press(ALICE, &appid, "✅");
    app.wait_card_text(&appid, "已由 @alice 通过").await;

    let history = app.command(BOB, "/history").await;

    assert!(
        history.plain_text.contains(" alice 通过"),
        "{}",
        history.plain_text
    );
    assert!(!history.plain_text.contains('@'), "{}", history.plain_text);
    app.stop().await;
}

#[tokio::test]
async fn text_from_outside_holding_placeholder_names_shows_verbatim() {
    let mut app = TestApp::new(0).await;
    let appid = app.wx.sandbox.add_applicant(NewApplicant {
        nickname: Some("{name} {time} {status}".into()),
        ..NewApplicant::default()
    });
    app.start().await;
    app.wait_cards(1).await;

    let reason = "see {time}, {name} and {reason}";
    app.command(ALICE, &format!("/reject {appid} {reason}"))
        .await;

    let card = app.wait_card_text(&appid, "Rejected by @alice").await;
    assert!(card.plain_text.contains(reason), "{}", card.plain_text);
    assert!(
        card.plain_text.contains("{name} {time} {status}"),
        "{}",
        card.plain_text
    );
    app.stop().await;
}

#[tokio::test]
async fn the_digest_estimates_from_the_limiters_own_budgets() {
    let mut app = TestApp::new(21).await;
    let started = std::time::Instant::now();
    app.start().await;
    let all = app
        .tg
        .fake
        .wait_until(Duration::from_secs(90), |_| {
            let cards = app.cards();
            cards.len() >= 21 && cards.iter().all(armed)
        })
        .await;
    assert!(all, "21 cards, have {}", app.cards().len());
    let took = started.elapsed();

    let digest = app
        .tg
        .fake
        .bot_messages(TEAM)
        .into_iter()
        .find(|m| m.plain_text.starts_with("📥"))
        .expect("a digest for 21 cards");
    // The group's 20 messages a minute bind: the digest and 21 cards, each a message and the
    // edit that adds its buttons, are 43 calls, 20 at once and then one each 3 s (~70 s).
    let eta: u64 = digest
        .plain_text
        .split("all within about ")
        .nth(1)
        .and_then(|rest| rest.split(" s").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no estimate in seconds: {}", digest.plain_text));
    assert!(
        (60..=90).contains(&eta),
        "the estimate counts both calls of each card: {}",
        digest.plain_text
    );
    assert!(
        took >= Duration::from_secs(50) && took <= Duration::from_secs(eta + 15),
        "the estimate ({eta} s) was near what it took: {took:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_outage_alert_gives_its_hint_in_the_chat_language() {
    let mut app = zh(1).await;
    app.start().await;
    app.wait_cards(1).await;
    app.wx
        .sandbox
        .inject(wx_fault("dev_apply_list", Fault::Errcode(40164), 100));
    for _ in 0..3 {
        app.command(ALICE, "/refresh").await;
    }
    let alerted = app
        .tg
        .fake
        .wait_until(WAIT, |f| {
            f.bot_messages(TEAM)
                .iter()
                .any(|m| m.plain_text.starts_with("⚠️ 已连续"))
        })
        .await;
    assert!(alerted, "the outage was announced");
    let alert = app
        .tg
        .fake
        .bot_messages(TEAM)
        .into_iter()
        .find(|m| m.plain_text.starts_with("⚠️ 已连续"))
        .expect("just seen")
        .plain_text;
    assert!(
        alert.contains("（请把本服务器的公网 IP 加入小程序的 IP 白名单"),
        "{alert}"
    );
    assert!(!alert.contains("add this server"), "{alert}");
    app.stop().await;
}

/// Waits for the answer to `press` and returns its text, which must be an alert.
async fn alert_of(app: &TestApp, press: &str) -> String {
    let (text, alert) = app.answer(press).await;
    assert!(alert, "a refused press is answered with an alert: {text:?}");
    text.unwrap_or_default()
}

#[tokio::test]
async fn a_refused_press_says_who_holds_the_card_since_when_or_what_already_happened() {
    let app = TestApp::spawn(1).await;
    let appid = app.appids()[0].clone();
    let card = app.card(&appid);
    let approve = card.buttons[0][0].callback_data.clone().expect("✅ data");
    let message = card.message_id;

    app.press(BOB, &appid, "❌");
    let choosing = app.wait_card_text(&appid, "choosing a reason").await;
    let cancel = choosing
        .buttons
        .iter()
        .flatten()
        .find(|b| b.text.starts_with('↩'))
        .and_then(|b| b.callback_data.clone())
        .expect("↩ Cancel while choosing");
    app.press(BOB, &appid, "↩");
    app.wait_card_text(&appid, "⏳ Pending").await;
    let cancelled = alert_of(&app, &app.tg.fake.press_raw(TEAM, message, ALICE, &cancel)).await;
    assert_eq!(
        cancelled,
        "Nobody is rejecting this application now: there is nothing to cancel."
    );

    app.press(BOB, &appid, "❌");
    app.wait_card_text(&appid, "choosing a reason").await;
    // ✅ from a chat that still shows the first buttons.
    let held = alert_of(&app, &app.tg.fake.press_raw(TEAM, message, ALICE, &approve)).await;
    assert!(
        held.starts_with("@bob has been choosing a reason to reject it since ")
            && held.contains("UTC"),
        "{held}"
    );

    app.press(BOB, &appid, "✍️");
    let prompted = app
        .tg
        .fake
        .wait_until(WAIT, |f| f.bot_messages(TEAM).iter().any(|m| m.force_reply))
        .await;
    assert!(prompted, "no ForceReply prompt");
    let writing = alert_of(&app, &app.tg.fake.press_raw(TEAM, message, ALICE, &approve)).await;
    assert!(
        writing.starts_with("@bob has been writing a reason to reject it since "),
        "{writing}"
    );

    let prompt = app
        .tg
        .fake
        .bot_messages(TEAM)
        .into_iter()
        .find(|m| m.force_reply)
        .expect("prompt");
    app.tg
        .fake
        .user_replies(TEAM, BOB, prompt.message_id, "Sells <lottery> & tickets");
    app.wait_card_text(&appid, "❌ Rejected by @bob").await;
    let settled = alert_of(&app, &app.tg.fake.press_raw(TEAM, message, ALICE, &approve)).await;
    assert!(
        settled.starts_with("Nothing was done: ❌ Rejected by @bob: Sells <lottery> & tickets · ")
            && settled.contains("UTC"),
        "what happened, by whom and when, in plain text: {settled}"
    );
    let late = alert_of(&app, &app.tg.fake.press_raw(TEAM, message, ALICE, &cancel)).await;
    assert!(
        late.starts_with("Nothing was done: ❌ Rejected by @bob"),
        "{late}"
    );
    assert_eq!(app.wechat_calls("dev_agree"), 0);
    assert_eq!(app.wechat_calls("dev_refuse"), 1);
}

#[tokio::test]
async fn a_half_hour_reminder_says_half_an_hour_and_minutes_waited() {
    let mut app = zh(0).await;
    app.remind_settle = Duration::from_secs(1);
    app.vars.insert("REMIND_AFTER_HOURS", "0.5".to_owned());
    let now = jiff::Timestamp::now().as_second();
    app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(now - 40 * 60),
        ..NewApplicant::default()
    });
    // Waited 20 minutes: not yet due.
    app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(now - 20 * 60),
        ..NewApplicant::default()
    });
    app.start().await;
    app.wait_cards(2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The next check (a restart runs one at once) finds the cards settled.
    app.restart().await;
    let reminder = |app: &TestApp| {
        app.tg
            .fake
            .bot_messages(TEAM)
            .into_iter()
            .find(|m| m.plain_text.starts_with('⏰'))
    };
    let reminded = app
        .tg
        .fake
        .wait_until(WAIT, |_| reminder(&app).is_some())
        .await;
    assert!(reminded, "a reminder after half an hour");
    let text = reminder(&app).expect("reminder").plain_text;
    assert!(
        text.starts_with("⏰ 以下 1 份插件申请已等待超过 0.5 小时"),
        "{text}"
    );
    // Minutes, rounded up as every duration the chat reads.
    assert!(
        text.contains("，已等待 40 分钟") || text.contains("，已等待 41 分钟"),
        "{text}"
    );
    app.stop().await;
}
