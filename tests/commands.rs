//! Read-only commands through the real bot: `/history` always arrives, cut to fit Telegram's
//! length limit with a line saying what was left out; `/history` and `/status` speak the chat's
//! language, not the store's words.

mod common;

use common::{ALICE, TestApp, wx_fault};
use wxplugin_bot::domain::action::{Action, Via};
use wxplugin_bot::domain::applicant::AppId;
use wxplugin_bot::domain::audit::{Attempt, AuditOutcome};
use wxplugin_bot::domain::card::Actor;
use wxplugin_bot::store::Store;
use wxplugin_bot::testbed::sandbox::{Fault, NewApplicant};

/// 60 decisions on `appid`, each with a 200-character reason full of characters HTML escapes:
/// far more than one message holds.
async fn long_audit_log(app: &TestApp, appid: &AppId) {
    let store = Store::open(&app.vars["DATABASE_URL"]).await.unwrap();
    let plugin = AppId::parse(&app.vars["WECHAT_APPID"]).unwrap();
    let actor = Actor {
        id: ALICE as u64,
        name: "Alice <the approver> & co".to_owned(),
    };
    let reason = "<&>\"x".repeat(40);
    for i in 0..60 {
        let attempt = store
            .audit_attempt(&Attempt {
                plugin: &plugin,
                appid,
                action: Action::Reject,
                actor: &actor,
                via: Via::Command,
                reason: Some(&reason),
            })
            .await
            .unwrap();
        match i % 4 {
            0 => store
                .audit_result(attempt, AuditOutcome::Ok, None, None)
                .await
                .unwrap(),
            1 => store
                .audit_result(
                    attempt,
                    AuditOutcome::Error,
                    Some(89240),
                    Some("not pending"),
                )
                .await
                .unwrap(),
            2 => store
                .audit_result(attempt, AuditOutcome::Unknown, None, Some("timeout"))
                .await
                .unwrap(),
            _ => {} // no result: in flight
        }
    }
    store.close().await;
}

/// The entry lines of a `/history` answer.
fn entries(plain: &str) -> usize {
    plain.lines().filter(|l| l.starts_with("• ")).count()
}

#[tokio::test]
async fn a_history_longer_than_a_message_is_cut_to_fit_and_says_what_was_left_out() {
    let mut app = TestApp::new(1).await;
    let appid = AppId::parse(&app.appids()[0]).unwrap();
    long_audit_log(&app, &appid).await;
    app.start().await;
    app.wait_cards(1).await;

    let all = app.command(ALICE, "/history").await;
    let one = app.command(ALICE, &format!("/history {appid}")).await;

    for (reply, last) in [
        (
            &all,
            " earlier entries not shown. /history <appid> shows one applicant's entries.",
        ),
        (&one, " earlier entries of this applicant not shown."),
    ] {
        // The fake parsed the HTML as Telegram does: this is the length Telegram counts.
        let plain = &reply.plain_text;
        assert!(
            plain.chars().count() <= 4096,
            "{} characters",
            plain.chars().count()
        );
        let shown = entries(plain);
        assert!(shown >= 10, "only {shown} entries: {plain}");
        assert!(
            plain.starts_with(&format!("Decision history (latest {shown}):")),
            "{plain}"
        );
        assert_eq!(
            plain.lines().last(),
            Some(format!("… {}{last}", 60 - shown).as_str()),
            "{plain}"
        );
        assert!(
            plain.contains(&"<&>\"x".repeat(40)),
            "reasons are shown whole"
        );
    }
}

#[tokio::test]
async fn history_shows_results_in_the_chat_language() {
    let mut app = TestApp::new(1).await;
    let appid = AppId::parse(&app.appids()[0]).unwrap();
    long_audit_log(&app, &appid).await;
    app.vars.insert("BOT_LANG", "zh".to_owned());
    app.start().await;
    app.wait_cards(1).await;

    let reply = app.command(ALICE, "/history").await;

    let plain = &reply.plain_text;
    for word in ["→ 成功", "→ 失败（89240：", "→ 结果未知", "→ 进行中"] {
        assert!(plain.contains(word), "no {word:?} in {plain}");
    }
    for raw in ["→ ok", "→ error", "→ unknown", "→ in-flight", "earlier"] {
        assert!(!plain.contains(raw), "{raw:?} in {plain}");
    }
    assert!(
        plain
            .lines()
            .last()
            .is_some_and(|l| l.contains("条更早的记录未显示")),
        "{plain}"
    );
}

#[tokio::test]
async fn status_speaks_the_chat_language() {
    let mut app = TestApp::new(2).await;
    app.vars.insert("BOT_LANG", "zh".to_owned());
    app.start().await;
    app.wait_cards(2).await;

    let reply = app.command(ALICE, "/status").await;

    let plain = &reply.plain_text;
    assert!(plain.contains("已缓存"), "{plain}");
    assert!(plain.contains("后刷新"), "{plain}");
    assert!(plain.contains("小时") || plain.contains("分钟"), "{plain}");
    // The line naming the applicant that waits longest quotes its name and appid as they are.
    assert!(plain.contains("\n等待最久："), "{plain}");
    let ours: String = plain
        .lines()
        .filter(|l| !l.starts_with("等待最久："))
        .collect::<Vec<_>>()
        .join("\n");
    let english = ours
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() > 2 && !["stable", "UTC"].contains(w))
        .collect::<Vec<_>>();
    assert!(english.is_empty(), "English words {english:?} in {plain}");
}

#[tokio::test]
async fn status_tells_the_last_wechat_error_in_the_chat_language() {
    let mut app = TestApp::new(1).await;
    app.vars.insert("BOT_LANG", "zh".to_owned());
    app.start().await;
    app.wait_cards(1).await;
    app.wx
        .sandbox
        .inject(wx_fault("dev_apply_list", Fault::Errcode(48001), 1));
    app.command(ALICE, "/refresh").await;

    let reply = app.command(ALICE, "/status").await;

    let plain = &reply.plain_text;
    let line = plain
        .lines()
        .find(|l| l.starts_with("最近错误："))
        .unwrap_or_else(|| panic!("no error line in {plain}"));
    assert!(line.contains("微信错误码 48001："), "{line}");
    assert!(line.contains("api 功能未授权"), "{line}");
    app.stop().await;
}

/// Telegram counts a text's length in UTF-16 code units: an emoji outside the BMP is two.
fn utf16_len(plain: &str) -> usize {
    plain.encode_utf16().count()
}

#[tokio::test]
async fn emoji_heavy_lists_and_history_stay_within_telegrams_count() {
    // 35 applicants whose nicknames are 70 emoji (cut to 64: 129 UTF-16 units each), and 60
    // decisions whose reasons are 200 emoji (400 units each).
    let mut app = TestApp::new(0).await;
    for _ in 0..35 {
        app.wx.sandbox.add_applicant(NewApplicant {
            nickname: Some("😀".repeat(70)),
            ..NewApplicant::default()
        });
    }
    let appid = AppId::parse(&app.appids()[0]).unwrap();
    let store = Store::open(&app.vars["DATABASE_URL"]).await.unwrap();
    let plugin = AppId::parse(&app.vars["WECHAT_APPID"]).unwrap();
    let actor = Actor {
        id: ALICE as u64,
        name: "🦀".repeat(64),
    };
    let reason = "🚫".repeat(200);
    for _ in 0..60 {
        let attempt = store
            .audit_attempt(&Attempt {
                plugin: &plugin,
                appid: &appid,
                action: Action::Reject,
                actor: &actor,
                via: Via::Command,
                reason: Some(&reason),
            })
            .await
            .unwrap();
        store
            .audit_result(attempt, AuditOutcome::Ok, None, None)
            .await
            .unwrap();
    }
    store.close().await;
    app.start().await;
    // Listed at the first poll; their cards follow at Telegram's pace, not awaited here.
    app.wait_cards(1).await;

    for command in ["/pending", "/list", "/list pending", "/history"] {
        let reply = app.command(ALICE, command).await;

        let plain = &reply.plain_text;
        eprintln!(
            "{command}: {} UTF-16 units ({} characters), {} entries",
            utf16_len(plain),
            plain.chars().count(),
            entries(plain)
        );
        assert!(
            utf16_len(plain) <= 4096,
            "{command}: {} UTF-16 units",
            utf16_len(plain)
        );
        assert!(
            entries(plain) >= 5,
            "{command} shows only {} entries",
            entries(plain)
        );
        assert!(
            plain.lines().last().is_some_and(|l| l.starts_with('…')),
            "{command} does not say what it left out: {plain}"
        );
    }
}

/// Characters that show nothing, or less than they are, and so can make a name or reason lie.
const INVISIBLE: &[char] = &[
    '\u{061C}',
    '\u{2060}',
    '\u{FEFF}',
    '\u{00AD}',
    '\u{180E}',
    '\u{2028}',
    '\u{2029}',
    '\u{E0041}',
    '\u{E007F}',
    '\u{3164}',
    '\u{200B}',
    '\u{200D}',
];

#[tokio::test]
async fn invisible_characters_reach_neither_cards_nor_wechat_but_emoji_sequences_stay_whole() {
    // A ZWJ family, a keycap, a flag of tag characters (England) and a VS16 heart.
    let emoji = "👨\u{200D}👩\u{200D}👧 1\u{FE0F}\u{20E3} 🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} ❤\u{FE0F}";
    let hostile: String = INVISIBLE.iter().map(|c| format!("a{c}")).collect();
    let mut app = TestApp::new(0).await;
    let appid = app.wx.sandbox.add_applicant(NewApplicant {
        nickname: Some(format!("{hostile} {emoji}")),
        reason: Some(format!("{hostile} {emoji}")),
        ..NewApplicant::default()
    });
    app.start().await;
    app.wait_cards(1).await;

    let card = app.card(&appid);
    let refused = app
        .command(
            ALICE,
            &format!("/reject {appid} no\u{2060}pe{hostile} {emoji}"),
        )
        .await;

    for (what, text) in [
        ("card", card.plain_text.clone()),
        ("refusal", refused.plain_text.clone()),
    ] {
        assert!(
            text.contains(emoji),
            "{what} broke an emoji sequence: {text:?}"
        );
        let rest = text.replace(emoji, "");
        for c in INVISIBLE {
            assert!(
                !rest.contains(*c),
                "{what} shows U+{:04X}: {text:?}",
                *c as u32
            );
        }
    }
    let reason = app
        .wx
        .sandbox
        .applicant(&appid)
        .and_then(|a| a.refuse_reason)
        .expect("refused with a reason");
    assert!(reason.ends_with(emoji), "{reason:?}");
    for c in INVISIBLE {
        assert!(
            !reason.replace(emoji, "").contains(*c),
            "WeChat was sent U+{:04X}: {reason:?}",
            *c as u32
        );
    }
    assert!(reason.starts_with("nope"), "{reason:?}");
}

/// `/list` with no status lists every applicant under a header that names no status (before:
/// "Applications,  (2):" with an empty status word), and an empty store says so plainly.
#[tokio::test]
async fn list_without_a_status_has_a_header_of_its_own() {
    let empty = TestApp::spawn(0).await;
    let none = empty.command(ALICE, "/list").await.plain_text;
    let mut app = TestApp::spawn(2).await;

    let reply = app.command(ALICE, "/list").await.plain_text;

    assert_eq!(none, "No applications yet.");
    assert!(reply.starts_with("All applications (2):"), "{reply}");
    assert!(!reply.contains(",  ") && !reply.contains(" ()"), "{reply}");
    app.stop().await;
}

#[tokio::test]
async fn status_names_the_applicant_waiting_longest_and_for_how_long() {
    let mut app = TestApp::new(0).await;
    let now = jiff::Timestamp::now().as_second();
    let oldest = app.wx.sandbox.add_applicant(NewApplicant {
        nickname: Some("<Oldest> & Co".into()),
        create_time: Some(now - 3 * 3600),
        ..NewApplicant::default()
    });
    app.wx.sandbox.add_applicant(NewApplicant {
        create_time: Some(now - 3600),
        ..NewApplicant::default()
    });
    // Decided long ago: waits for nobody.
    app.wx.sandbox.add_applicant(NewApplicant {
        status: Some(2),
        create_time: Some(now - 30 * 3600),
        ..NewApplicant::default()
    });
    app.start().await;
    app.wait_cards(2).await;

    let plain = app.command(ALICE, "/status").await.plain_text;
    let line = plain
        .lines()
        .find(|l| l.starts_with("Waiting longest: "))
        .unwrap_or_else(|| panic!("no line on the oldest applicant in {plain}"));
    assert!(
        line.starts_with(&format!(
            "Waiting longest: <Oldest> & Co {oldest}, for 3 h "
        )),
        "{line}"
    );
    assert!(line.contains("(since ") && line.contains("UTC)"), "{line}");

    app.command(ALICE, &format!("/approve {oldest}")).await;
    let plain = app.command(ALICE, "/status").await.plain_text;
    assert!(
        plain.contains("Waiting longest: ") && !plain.contains(&oldest),
        "the next one waits longest now: {plain}"
    );
}
