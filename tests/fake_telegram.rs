//! The fake Bot API driven by a real teloxide `Bot` over HTTP: it must answer what Telegram
//! answers, in the shapes teloxide parses, or the bot suite proves nothing.

use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ParseMode, UpdateKind,
};
use teloxide::{ApiError, RequestError};
use wxplugin_bot::testbed::fake_telegram::{
    ChatEvent, FAKE_BOT_TOKEN, FakeTelegram, FakeUser, FloodBudget, FloodLimits,
    RunningFakeTelegram, TgFault, TgFaultRule,
};

const GROUP: i64 = -100_555;

async fn setup() -> (RunningFakeTelegram, Bot) {
    let tg = FakeTelegram::spawn().await.unwrap();
    tg.fake.add_group(GROUP, "Team");
    tg.fake.add_user(FakeUser {
        id: 7,
        first_name: "Ann".into(),
        username: Some("ann".into()),
        language_code: None,
    });
    let bot = Bot::new(FAKE_BOT_TOKEN).set_api_url(tg.api_url.clone());
    (tg, bot)
}

fn keyboard(data: &str) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[InlineKeyboardButton::callback("✅ Yes", data.to_owned())]])
}

#[tokio::test]
async fn html_messages_with_keyboards_round_trip() {
    let (tg, bot) = setup().await;

    let sent = bot
        .send_message(ChatId(GROUP), "<b>Hi</b> &lt;there&gt;")
        .parse_mode(ParseMode::Html)
        .reply_markup(keyboard("ap:1"))
        .await
        .unwrap();

    let stored = tg.fake.message(GROUP, sent.id.0).unwrap();
    assert_eq!(stored.text, "<b>Hi</b> &lt;there&gt;");
    assert_eq!(stored.plain_text, "Hi <there>");
    assert_eq!(stored.buttons[0][0].callback_data.as_deref(), Some("ap:1"));
    assert_eq!(sent.text(), Some("Hi <there>"));
}

#[tokio::test]
async fn bad_html_and_oversized_callback_data_are_refused_like_telegram() {
    let (tg, bot) = setup().await;

    let html = bot
        .send_message(ChatId(GROUP), "a <script> b")
        .parse_mode(ParseMode::Html)
        .await;
    let data = bot
        .send_message(ChatId(GROUP), "x")
        .reply_markup(keyboard(&"d".repeat(65)))
        .await;
    let long = bot.send_message(ChatId(GROUP), "y".repeat(4097)).await;
    let unknown_chat = bot.send_message(ChatId(-1), "x").await;

    assert!(
        matches!(html, Err(RequestError::Api(ApiError::CantParseEntities(_)))),
        "{html:?}"
    );
    assert!(
        matches!(data, Err(RequestError::Api(ApiError::ButtonDataInvalid))),
        "{data:?}"
    );
    assert!(
        matches!(long, Err(RequestError::Api(ApiError::MessageIsTooLong))),
        "{long:?}"
    );
    assert!(
        matches!(unknown_chat, Err(RequestError::Api(ApiError::ChatNotFound))),
        "{unknown_chat:?}"
    );
    assert!(tg.fake.bot_messages(GROUP).is_empty());
}

#[tokio::test]
async fn edits_report_not_modified_and_deleted_messages() {
    let (tg, bot) = setup().await;
    let sent = bot.send_message(ChatId(GROUP), "one").await.unwrap();

    bot.edit_message_text(ChatId(GROUP), sent.id, "two")
        .await
        .unwrap();
    let same = bot.edit_message_text(ChatId(GROUP), sent.id, "two").await;
    tg.fake.delete_message_as_user(GROUP, sent.id.0);
    let gone = bot.edit_message_text(ChatId(GROUP), sent.id, "three").await;

    assert!(
        matches!(same, Err(RequestError::Api(ApiError::MessageNotModified))),
        "{same:?}"
    );
    assert!(
        matches!(
            gone,
            Err(RequestError::Api(ApiError::MessageToEditNotFound))
        ),
        "{gone:?}"
    );
    assert_eq!(tg.fake.message(GROUP, sent.id.0).unwrap().edits, 1);
}

/// The simulation judges every version a chat ever showed, so the fake keeps them all: the send,
/// each edit that changed something (a refused edit adds none), and when the message went.
#[tokio::test]
async fn every_version_of_a_message_is_kept_with_its_time() {
    let (tg, bot) = setup().await;
    let before = std::time::Instant::now();

    let sent = bot
        .send_message(ChatId(GROUP), "<b>one</b>")
        .parse_mode(ParseMode::Html)
        .reply_markup(keyboard("ap:1"))
        .await
        .unwrap();
    bot.edit_message_text(ChatId(GROUP), sent.id, "two")
        .await
        .unwrap();
    let _ = bot.edit_message_text(ChatId(GROUP), sent.id, "two").await;
    bot.edit_message_reply_markup(ChatId(GROUP), sent.id)
        .reply_markup(keyboard("ap:2"))
        .await
        .unwrap();
    bot.delete_message(ChatId(GROUP), sent.id).await.unwrap();
    let said = tg.fake.user_sends(GROUP, 7, "hello");

    let message = tg.fake.message(GROUP, sent.id.0).unwrap();
    let shown: Vec<(&str, Vec<Option<&str>>)> = message
        .history
        .iter()
        .map(|v| {
            let data = v
                .buttons
                .iter()
                .flatten()
                .map(|b| b.callback_data.as_deref())
                .collect();
            (v.plain_text.as_str(), data)
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("one", vec![Some("ap:1")]),
            ("two", vec![]),
            ("two", vec![Some("ap:2")]),
        ]
    );
    let times: Vec<_> = message.history.iter().map(|v| v.at).collect();
    assert!(before <= times[0] && times.is_sorted(), "{times:?}");
    assert!(message.deleted_at.is_some_and(|at| at >= times[2]));
    let person = tg.fake.message(GROUP, said).unwrap();
    assert_eq!(person.history.len(), 1);
    assert_eq!(person.history[0].plain_text, "hello");
    assert_eq!(person.deleted_at, None);
}

#[tokio::test]
async fn updates_carry_messages_presses_and_replies() {
    let (tg, bot) = setup().await;
    let card = bot
        .send_message(ChatId(GROUP), "card")
        .reply_markup(keyboard("ap:9"))
        .await
        .unwrap();
    let prompt = bot.send_message(ChatId(GROUP), "why?").await.unwrap();

    tg.fake.user_sends(GROUP, 7, "/pending@wxplugin_test_bot");
    let query = tg.fake.user_presses(GROUP, card.id.0, 7, "✅").unwrap();
    tg.fake.user_replies(GROUP, 7, prompt.id.0, "because");
    let updates = bot.get_updates().await.unwrap();

    assert_eq!(updates.len(), 3);
    match &updates[0].kind {
        UpdateKind::Message(m) => assert_eq!(m.text(), Some("/pending@wxplugin_test_bot")),
        other => panic!("{other:?}"),
    }
    match &updates[1].kind {
        UpdateKind::CallbackQuery(q) => {
            assert_eq!(q.id.0, query);
            assert_eq!(q.data.as_deref(), Some("ap:9"));
            assert_eq!(q.from.username.as_deref(), Some("ann"));
            assert_eq!(q.message.as_ref().map(|m| m.id()), Some(card.id));
        }
        other => panic!("{other:?}"),
    }
    match &updates[2].kind {
        UpdateKind::Message(m) => assert_eq!(m.reply_to_message().map(|r| r.id), Some(prompt.id)),
        other => panic!("{other:?}"),
    }
    // Confirming with the offset empties the queue.
    let next = bot
        .get_updates()
        .offset(updates[2].id.as_offset())
        .await
        .unwrap();
    assert!(next.is_empty());
    assert!(
        bot.answer_callback_query(teloxide::types::CallbackQueryId(query.clone()))
            .await
            .is_ok()
    );
    assert!(
        bot.answer_callback_query(teloxide::types::CallbackQueryId(query))
            .await
            .is_err(),
        "a query is answered once"
    );
}

#[tokio::test]
async fn a_long_poll_wakes_on_a_new_update() {
    let (tg, bot) = setup().await;
    let fake = tg.fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        fake.user_sends(GROUP, 7, "hello");
    });

    let started = std::time::Instant::now();
    let updates = bot.get_updates().timeout(10).await.unwrap();

    assert_eq!(updates.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn injected_faults_surface_as_teloxide_errors() {
    let (tg, bot) = setup().await;
    tg.fake.inject(TgFaultRule {
        method: Some("sendMessage".into()),
        fault: TgFault::RetryAfter(3),
        times: 1,
    });
    tg.fake.inject(TgFaultRule {
        method: Some("getMe".into()),
        fault: TgFault::Http(502),
        times: 1,
    });

    let limited = bot.send_message(ChatId(GROUP), "x").await;
    // teloxide waits 10 s after any 5xx, so the server error is read over plain HTTP.
    let server = reqwest::get(format!("{}bot{FAKE_BOT_TOKEN}/getMe", tg.api_url))
        .await
        .unwrap();
    let fine = bot.send_message(ChatId(GROUP), "x").await;

    assert!(
        matches!(limited, Err(RequestError::RetryAfter(s)) if s.seconds() == 3),
        "{limited:?}"
    );
    // Telegram's front proxy answers a failing Bot API with its own HTML page, not JSON.
    assert_eq!(server.status(), 502);
    let content_type = server.headers()[reqwest::header::CONTENT_TYPE].clone();
    assert_eq!(content_type, "text/html");
    let page = server.text().await.unwrap();
    assert!(
        page.starts_with("<html>") && page.contains("502 Bad Gateway"),
        "{page}"
    );
    assert!(serde_json::from_str::<serde_json::Value>(&page).is_err());
    assert!(fine.is_ok());
}

#[tokio::test]
async fn a_kicked_bot_and_a_wrong_token_are_refused() {
    let (tg, bot) = setup().await;
    tg.fake.kick_bot(GROUP);

    let kicked = bot.send_message(ChatId(GROUP), "x").await;
    let stranger = Bot::new("1:wrong")
        .set_api_url(tg.api_url.clone())
        .get_me()
        .await;

    assert!(
        matches!(
            kicked,
            Err(RequestError::Api(ApiError::BotKickedFromSupergroup))
        ),
        "{kicked:?}"
    );
    assert!(
        matches!(
            stranger,
            Err(RequestError::Api(
                ApiError::InvalidToken | ApiError::Unknown(_)
            ))
        ),
        "{stranger:?}"
    );
}

#[tokio::test]
async fn the_group_rate_limit_answers_429_past_its_budget() {
    let (tg, bot) = setup().await;
    tg.fake.set_group_rate_limit(Some(3));

    for _ in 0..3 {
        bot.send_message(ChatId(GROUP), "ok").await.unwrap();
    }
    let fourth = bot.send_message(ChatId(GROUP), "too many").await;

    assert!(
        matches!(fourth, Err(RequestError::RetryAfter(_))),
        "{fourth:?}"
    );
    assert_eq!(tg.fake.bot_messages(GROUP).len(), 3);
}

#[tokio::test]
async fn administrators_and_commands_use_teloxides_shapes() {
    let (tg, bot) = setup().await;
    tg.fake.set_admins(GROUP, &[7, 8]);

    let admins = bot.get_chat_administrators(ChatId(GROUP)).await.unwrap();
    bot.set_my_commands([teloxide::types::BotCommand::new("help", "show help")])
        .await
        .unwrap();

    let ids: Vec<u64> = admins.iter().map(|m| m.user.id.0).collect();
    assert_eq!(ids, vec![7, 8, 123_456]);
    assert!(admins[0].is_owner());
    assert_eq!(
        tg.fake.my_commands(),
        vec![("help".to_owned(), "show help".to_owned())]
    );
}

#[tokio::test]
async fn subscribers_see_sends_edits_and_deletes() {
    let (tg, bot) = setup().await;
    let mut events = tg.fake.subscribe();

    let sent = bot.send_message(ChatId(GROUP), "a").await.unwrap();
    bot.edit_message_text(ChatId(GROUP), sent.id, "b")
        .await
        .unwrap();
    bot.delete_message(ChatId(GROUP), MessageId(sent.id.0))
        .await
        .unwrap();

    assert!(
        matches!(events.recv().await.unwrap(), ChatEvent::MessageSent(m) if m.plain_text == "a")
    );
    assert!(
        matches!(events.recv().await.unwrap(), ChatEvent::MessageEdited(m) if m.plain_text == "b")
    );
    assert!(matches!(
        events.recv().await.unwrap(),
        ChatEvent::MessageDeleted { .. }
    ));
}

/// POSTs a raw Bot API call and returns the HTTP status, the `Retry-After` header and the body.
async fn raw_call(
    tg: &RunningFakeTelegram,
    method: &str,
    params: serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}bot{FAKE_BOT_TOKEN}/{method}", tg.api_url))
        .json(&params)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test]
async fn a_second_long_poll_ends_the_first_with_409_conflict() {
    let (tg, bot) = setup().await;
    let first = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(10).await }
    });
    let ok = tg
        .fake
        .wait_until(Duration::from_secs(5), |f| f.call_count("getUpdates") == 0)
        .await;
    assert!(ok);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = std::time::Instant::now();
    let second = bot.get_updates().timeout(1).await;
    let first = first.await.unwrap();

    assert!(second.is_ok(), "{second:?}");
    assert!(
        matches!(
            first,
            Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates))
        ),
        "{first:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let codes: Vec<Option<u16>> = tg
        .fake
        .calls()
        .iter()
        .filter(|c| c.method == "getUpdates")
        .map(|c| c.error_code)
        .collect();
    assert_eq!(codes, vec![Some(409), None]);
}

#[tokio::test]
async fn an_upgraded_group_refuses_calls_with_migrate_to_chat_id() {
    let (tg, bot) = setup().await;
    let (old, new) = (-4_242, -1_004_242);
    tg.fake.add_basic_group(old, "Small team");
    tg.fake.set_admins(old, &[7]);
    let before = bot.send_message(ChatId(old), "hi").await.unwrap();
    assert!(before.chat.is_group() && !before.chat.is_supergroup());

    tg.fake.upgrade_group(old, new);
    let send = bot.send_message(ChatId(old), "still here?").await;
    let edit = bot.edit_message_text(ChatId(old), before.id, "x").await;
    let chat = bot.get_chat(ChatId(old)).await;
    let in_new = bot.send_message(ChatId(new), "moved").await.unwrap();
    let (status, _, body) = raw_call(
        &tg,
        "sendMessage",
        serde_json::json!({ "chat_id": old, "text": "x" }),
    )
    .await;
    let updates = bot.get_updates().await.unwrap();

    for result in [send.map(|_| ()), edit.map(|_| ()), chat.map(|_| ())] {
        assert!(
            matches!(result, Err(RequestError::MigrateToChatId(id)) if id == ChatId(new)),
            "{result:?}"
        );
    }
    assert_eq!(status, 400);
    assert_eq!(
        body["description"],
        "Bad Request: group chat was upgraded to a supergroup chat"
    );
    assert_eq!(body["parameters"]["migrate_to_chat_id"], new);
    assert!(in_new.chat.is_supergroup());
    // The service messages Telegram posts in both chats.
    let migrations: Vec<_> = updates
        .iter()
        .filter_map(|u| match &u.kind {
            UpdateKind::Message(m) => m.chat_migration().map(|c| (m.chat.id, *c)),
            _ => None,
        })
        .collect();
    assert_eq!(migrations.len(), 2, "{updates:?}");
    // Nobody can post in the old group any more.
    assert_eq!(tg.fake.user_sends(old, 7, "hello?"), 0);
}

#[tokio::test]
async fn a_reply_to_a_deleted_message_needs_allow_sending_without_reply() {
    let (tg, bot) = setup().await;
    let asked = tg.fake.user_sends(GROUP, 7, "/status");
    tg.fake.delete_message_as_user(GROUP, asked);

    let strict = bot
        .send_message(ChatId(GROUP), "answer")
        .reply_parameters(teloxide::types::ReplyParameters::new(MessageId(asked)))
        .await;
    let lenient = bot
        .send_message(ChatId(GROUP), "answer")
        .reply_parameters(
            teloxide::types::ReplyParameters::new(MessageId(asked)).allow_sending_without_reply(),
        )
        .await
        .unwrap();
    // The older top-level spelling works too.
    let (old_style, _, _) = raw_call(
        &tg,
        "sendMessage",
        serde_json::json!({ "chat_id": GROUP, "text": "answer", "reply_to_message_id": asked, "allow_sending_without_reply": true }),
    )
    .await;
    let (missing, _, body) = raw_call(
        &tg,
        "sendMessage",
        serde_json::json!({ "chat_id": GROUP, "text": "answer", "reply_to_message_id": 999 }),
    )
    .await;

    assert!(
        matches!(
            strict,
            Err(RequestError::Api(ApiError::MessageToReplyNotFound))
        ),
        "{strict:?}"
    );
    assert!(lenient.reply_to_message().is_none());
    assert_eq!(old_style, 200);
    assert_eq!(missing, 400);
    assert_eq!(
        body["description"],
        "Bad Request: message to be replied not found"
    );
    assert_eq!(tg.fake.bot_messages(GROUP).len(), 2);
}

#[tokio::test]
async fn whitespace_text_and_callback_answers_over_200_characters_are_refused() {
    let (tg, bot) = setup().await;
    let card = bot
        .send_message(ChatId(GROUP), "card")
        .reply_markup(keyboard("ap:1"))
        .await
        .unwrap();
    let long_query = tg.fake.user_presses(GROUP, card.id.0, 7, "✅").unwrap();
    let fitting_query = tg.fake.user_presses(GROUP, card.id.0, 7, "✅").unwrap();

    let blank = bot.send_message(ChatId(GROUP), " \n\t ").await;
    let blank_html = bot
        .send_message(ChatId(GROUP), "<b> </b>")
        .parse_mode(ParseMode::Html)
        .await;
    let long = bot
        .answer_callback_query(teloxide::types::CallbackQueryId(long_query.clone()))
        .text("é".repeat(201))
        .await;
    let fitting = bot
        .answer_callback_query(teloxide::types::CallbackQueryId(fitting_query))
        .text("é".repeat(200))
        .show_alert(true)
        .await;

    for result in [blank.map(|_| ()), blank_html.map(|_| ())] {
        assert!(
            matches!(&result, Err(RequestError::Api(ApiError::Unknown(d))) if d == "Bad Request: text must be non-empty"),
            "{result:?}"
        );
    }
    assert!(
        matches!(
            long,
            Err(RequestError::Api(ApiError::EditedMessageIsTooLong))
        ),
        "Telegram answers Bad Request: MESSAGE_TOO_LONG: {long:?}"
    );
    assert!(fitting.is_ok(), "{fitting:?}");
    // The refused answer did not use up the query.
    assert_eq!(tg.fake.callback_answers().len(), 1);
    assert!(
        bot.answer_callback_query(teloxide::types::CallbackQueryId(long_query))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn flood_limits_count_edits_and_say_when_to_retry() {
    let (tg, bot) = setup().await;
    tg.fake.set_group_rate_limit(Some(3));
    let sent = bot.send_message(ChatId(GROUP), "v1").await.unwrap();
    bot.edit_message_text(ChatId(GROUP), sent.id, "v2")
        .await
        .unwrap();
    bot.edit_message_text(ChatId(GROUP), sent.id, "v3")
        .await
        .unwrap();

    let edit = bot.edit_message_text(ChatId(GROUP), sent.id, "v4").await;
    let (status, retry_after, body) = raw_call(
        &tg,
        "editMessageText",
        serde_json::json!({ "chat_id": GROUP, "message_id": sent.id.0, "text": "v5" }),
    )
    .await;

    assert!(
        matches!(&edit, Err(RequestError::RetryAfter(s)) if s.seconds() >= 1),
        "{edit:?}"
    );
    assert_eq!(status, 429);
    let seconds = body["parameters"]["retry_after"].as_u64().unwrap();
    assert_eq!(retry_after, Some(seconds.to_string()));
    assert_eq!(
        body["description"],
        format!("Too Many Requests: retry after {seconds}")
    );
    assert_eq!(tg.fake.message(GROUP, sent.id.0).unwrap().plain_text, "v3");
}

#[tokio::test]
async fn a_selective_force_reply_shows_its_box_to_mentioned_users_and_the_replied_sender() {
    let (tg, bot) = setup().await;
    tg.fake.add_user(FakeUser {
        id: 8,
        first_name: "Ben".into(),
        username: None,
        language_code: None,
    });
    let asked = tg.fake.user_sends(GROUP, 8, "I will reject it");

    let prompt = bot
        .send_message(
            ChatId(GROUP),
            "@ann, <a href=\"tg://user?id=9\">Cy</a> and mail@ann: why?",
        )
        .parse_mode(ParseMode::Html)
        .reply_parameters(teloxide::types::ReplyParameters::new(MessageId(asked)))
        .reply_markup(teloxide::types::ForceReply::new().selective())
        .await
        .unwrap();
    let unmentioned = bot
        .send_message(ChatId(GROUP), "Ben (no username), why?")
        .reply_markup(teloxide::types::ForceReply::new().selective())
        .await
        .unwrap();
    let everyone = bot
        .send_message(ChatId(GROUP), "anyone?")
        .reply_markup(teloxide::types::ForceReply::new())
        .await
        .unwrap();

    let prompt = tg.fake.message(GROUP, prompt.id.0).unwrap();
    assert!(prompt.force_reply && prompt.selective);
    assert_eq!(prompt.reply_box_for, vec![7, 8, 9]);
    let unmentioned = tg.fake.message(GROUP, unmentioned.id.0).unwrap();
    assert!(unmentioned.selective && unmentioned.reply_box_for.is_empty());
    let everyone = tg.fake.message(GROUP, everyone.id.0).unwrap();
    assert!(everyone.force_reply && !everyone.selective);
}

#[tokio::test]
async fn anonymous_admins_post_as_group_anonymous_bot() {
    let (tg, bot) = setup().await;
    tg.fake.set_admins(GROUP, &[7, 8]);
    tg.fake.set_anonymous_admins(GROUP, &[8]);

    tg.fake.anonymous_admin_sends(GROUP, "/approve wx1", None);
    let updates = bot.get_updates().await.unwrap();
    let admins = bot.get_chat_administrators(ChatId(GROUP)).await.unwrap();

    let UpdateKind::Message(m) = &updates[0].kind else {
        panic!("{updates:?}");
    };
    let from = m.from.as_ref().unwrap();
    assert!(from.is_anonymous() && from.is_bot);
    assert_eq!(
        from.id.0,
        wxplugin_bot::testbed::fake_telegram::ANONYMOUS_ADMIN_ID as u64
    );
    assert_eq!(m.sender_chat.as_ref().map(|c| c.id), Some(ChatId(GROUP)));
    let anonymous: Vec<(u64, bool)> = admins
        .iter()
        .map(|a| (a.user.id.0, matches!(&a.kind, teloxide::types::ChatMemberKind::Administrator(x) if x.is_anonymous)))
        .collect();
    assert_eq!(anonymous, vec![(7, false), (8, true), (123_456, false)]);
}

#[tokio::test]
async fn webhooks_must_be_https_and_reach_the_bot_through_the_tls_proxy() {
    let (tg, bot) = setup().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(update): axum::Json<serde_json::Value>| {
            let seen_tx = seen_tx.clone();
            async move {
                let _ = seen_tx.send(update);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });

    let plain = bot
        .set_webhook(reqwest::Url::parse(&format!("http://127.0.0.1:{port}/hook")).unwrap())
        .await;
    let secure = bot
        .set_webhook(reqwest::Url::parse(&format!("https://127.0.0.1:{port}/hook")).unwrap())
        .await;
    tg.fake.user_sends(GROUP, 7, "over the hook");
    let update = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv())
        .await
        .unwrap()
        .unwrap();

    assert!(
        matches!(&plain, Err(RequestError::Api(ApiError::Unknown(d))) if d == "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"),
        "{plain:?}"
    );
    assert!(secure.is_ok(), "{secure:?}");
    assert_eq!(update["message"]["text"], "over the hook");
    let delivered = tg
        .fake
        .wait_until(Duration::from_secs(5), |f| {
            f.deliveries()
                .first()
                .is_some_and(|d| d.status == Some(200))
        })
        .await;
    assert!(delivered, "{:?}", tg.fake.deliveries());
}

/// Asserts Telegram's 429 in every place it says so, and returns its `retry_after`.
fn assert_too_many_requests(status: u16, header: Option<String>, body: &serde_json::Value) -> u64 {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["ok"], false);
    assert_eq!(body["error_code"], 429);
    let seconds = body["parameters"]["retry_after"].as_u64().unwrap();
    assert_eq!(
        body["description"],
        format!("Too Many Requests: retry after {seconds}")
    );
    assert_eq!(header, Some(seconds.to_string()));
    seconds
}

#[tokio::test]
async fn telegram_limits_refuse_the_fourth_message_in_a_second_to_a_chat() {
    let (tg, bot) = setup().await;
    tg.fake.add_private_chat(7);
    tg.fake.enforce_telegram_limits();

    // Sends, edits and deletes all count against the chat.
    let first = bot.send_message(ChatId(7), "one").await.unwrap();
    bot.edit_message_text(ChatId(7), first.id, "one, edited")
        .await
        .unwrap();
    bot.send_message(ChatId(7), "two").await.unwrap();
    let (status, header, body) = raw_call(
        &tg,
        "deleteMessage",
        serde_json::json!({ "chat_id": 7, "message_id": first.id.0 }),
    )
    .await;
    let elsewhere = bot.send_message(ChatId(GROUP), "another chat").await;

    let retry_after = assert_too_many_requests(status, header, &body);
    assert_eq!(retry_after, 1);
    assert!(!tg.fake.message(7, first.id.0).unwrap().deleted);
    assert!(elsewhere.is_ok(), "{elsewhere:?}");
    assert_eq!(tg.fake.flood_refusals(), 1);
    // Waiting out retry_after is enough.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    bot.delete_message(ChatId(7), first.id).await.unwrap();
    assert_eq!(tg.fake.flood_refusals(), 1);
}

#[tokio::test]
async fn telegram_limits_refuse_the_21st_message_in_a_minute_to_a_group() {
    let (tg, bot) = setup().await;
    tg.fake.add_private_chat(7);
    // The per-chat budget (one a second) is lifted so that the group's alone is in the way.
    tg.fake.enforce_flood_limits(Some(FloodLimits {
        per_chat: FloodBudget {
            messages: 1_000,
            per: Duration::from_secs(1),
            burst: 1_000,
        },
        ..FloodLimits::TELEGRAM
    }));
    tg.fake.freeze_flood_clock();

    for i in 0..20 {
        bot.send_message(ChatId(GROUP), format!("card {i}"))
            .await
            .unwrap();
    }
    // Half a second on, the group's next slot is 2.5 s away: Telegram says 3.
    tg.fake.advance_flood_clock(Duration::from_millis(500));
    let twenty_first = bot.send_message(ChatId(GROUP), "card 20").await;
    let (status, header, body) = raw_call(
        &tg,
        "sendMessage",
        serde_json::json!({ "chat_id": GROUP, "text": "card 20" }),
    )
    .await;

    assert!(
        matches!(&twenty_first, Err(RequestError::RetryAfter(s)) if s.seconds() == 3),
        "{twenty_first:?}"
    );
    let retry_after = assert_too_many_requests(status, header, &body);
    assert_eq!(retry_after, 3);
    assert_eq!(tg.fake.bot_messages(GROUP).len(), 20);
    assert_eq!(tg.fake.flood_refusals(), 2);
    // Waiting out retry_after is enough, and a second less is not.
    tg.fake
        .advance_flood_clock(Duration::from_secs(retry_after - 1));
    let early = bot.send_message(ChatId(GROUP), "card 20").await;
    tg.fake.advance_flood_clock(Duration::from_secs(1));
    let on_time = bot.send_message(ChatId(GROUP), "card 20").await;
    assert!(
        matches!(&early, Err(RequestError::RetryAfter(s)) if s.seconds() == 1),
        "{early:?}"
    );
    assert!(on_time.is_ok(), "{on_time:?}");
    // A private chat is no group: 21 messages in a row go.
    tg.fake.advance_flood_clock(Duration::from_secs(1));
    for i in 0..21 {
        bot.send_message(ChatId(7), format!("note {i}"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn telegram_limits_refuse_the_31st_call_in_a_second_overall() {
    let (tg, bot) = setup().await;
    let card = bot
        .send_message(ChatId(GROUP), "card")
        .reply_markup(keyboard("ap:1"))
        .await
        .unwrap();
    let queries: Vec<String> = (0..31)
        .map(|_| tg.fake.user_presses(GROUP, card.id.0, 7, "✅").unwrap())
        .collect();
    tg.fake.enforce_telegram_limits();
    tg.fake.freeze_flood_clock();

    // Callback answers count against the overall budget (and no chat's).
    for query in &queries[..30] {
        bot.answer_callback_query(teloxide::types::CallbackQueryId(query.clone()))
            .await
            .unwrap();
    }
    let (status, header, body) = raw_call(
        &tg,
        "answerCallbackQuery",
        serde_json::json!({ "callback_query_id": queries[30] }),
    )
    .await;
    let send = bot.send_message(ChatId(GROUP), "also refused").await;

    let retry_after = assert_too_many_requests(status, header, &body);
    assert_eq!(retry_after, 1);
    assert!(
        matches!(&send, Err(RequestError::RetryAfter(s)) if s.seconds() == 1),
        "{send:?}"
    );
    assert_eq!(tg.fake.callback_answers().len(), 30);
    assert_eq!(tg.fake.flood_refusals(), 2);
    // Waiting out retry_after is enough; the refused query can still be answered.
    tg.fake
        .advance_flood_clock(Duration::from_secs(retry_after));
    bot.answer_callback_query(teloxide::types::CallbackQueryId(queries[30].clone()))
        .await
        .unwrap();
    bot.send_message(ChatId(GROUP), "now fine").await.unwrap();
}

#[tokio::test]
async fn without_the_knob_the_fake_enforces_no_flood_limits() {
    let (tg, bot) = setup().await;

    for i in 0..40 {
        bot.send_message(ChatId(GROUP), format!("card {i}"))
            .await
            .unwrap();
    }

    assert_eq!(tg.fake.bot_messages(GROUP).len(), 40);
    assert_eq!(tg.fake.flood_refusals(), 0);
}

/// The bot's limiter and the fake judge by the same model but share no code: paced by the one,
/// a burst of cards with decisions in between is never refused by the other. Both read tokio's
/// paused clock.
#[tokio::test(start_paused = true)]
async fn the_send_limiter_earns_no_429_from_telegrams_limits() {
    use wxplugin_bot::telegram::limiter::{Lane, Limits, SendLimiter};
    let (tg, _bot) = setup().await;
    let card = raw_call(
        &tg,
        "sendMessage",
        serde_json::json!({ "chat_id": GROUP, "text": "first card", "reply_markup": { "inline_keyboard": [[{ "text": "✅", "callback_data": "ap:0" }]] } }),
    )
    .await
    .2["result"]["message_id"]
        .as_i64()
        .unwrap();
    tg.fake.enforce_telegram_limits();
    let limiter = SendLimiter::new(Limits::TELEGRAM);
    let start = tokio::time::Instant::now();

    let cards = tokio::spawn({
        let (limiter, api_url) = (limiter.clone(), tg.api_url.clone());
        async move {
            let http = reqwest::Client::new();
            for i in 0..60 {
                limiter.ready(GROUP, Lane::Card).await;
                let sent = http
                    .post(format!("{api_url}bot{FAKE_BOT_TOKEN}/sendMessage"))
                    .json(&serde_json::json!({ "chat_id": GROUP, "text": format!("card {i}") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(sent.status(), 200);
            }
        }
    });
    for round in 0..10 {
        tokio::time::sleep(Duration::from_secs(7)).await;
        let query = tg.fake.press_raw(GROUP, card as i32, 7, "ap:0");
        limiter.ready_global(Lane::Decision).await;
        let (answered, _, _) = raw_call(
            &tg,
            "answerCallbackQuery",
            serde_json::json!({ "callback_query_id": query }),
        )
        .await;
        limiter.ready(GROUP, Lane::Decision).await;
        let (edited, _, _) = raw_call(
            &tg,
            "editMessageText",
            serde_json::json!({ "chat_id": GROUP, "message_id": card, "text": format!("decided {round}") }),
        )
        .await;
        assert_eq!((answered, edited), (200, 200));
    }
    cards.await.unwrap();

    assert_eq!(tg.fake.flood_refusals(), 0);
    assert_eq!(tg.fake.bot_messages(GROUP).len(), 61);
    // 60 cards alone take 123 s (see the limiter's tests); each decision's edit takes one of the
    // group's 3 s slots.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(123) && took <= Duration::from_secs(123 + 10 * 3),
        "{took:?}"
    );
}

#[tokio::test]
async fn text_length_is_counted_in_utf16_units_as_telegram_counts_it() {
    let (tg, bot) = setup().await;
    // 2,048 emoji outside the BMP: 2,048 characters but 4,096 UTF-16 units, Telegram's most.
    let fits = "😀".repeat(2048);
    let over = "😀".repeat(2049);

    let sent = bot.send_message(ChatId(GROUP), fits.clone()).await;
    let long = bot.send_message(ChatId(GROUP), over.clone()).await;
    let one = bot.send_message(ChatId(GROUP), "x").await.unwrap();
    let edit = bot.edit_message_text(ChatId(GROUP), one.id, over).await;
    let entity = bot
        .send_message(ChatId(GROUP), format!("<b>{fits}</b>&amp;"))
        .parse_mode(ParseMode::Html)
        .await;

    assert!(sent.is_ok(), "{sent:?}");
    assert!(
        matches!(long, Err(RequestError::Api(ApiError::MessageIsTooLong))),
        "{:?}",
        long.err()
    );
    let edit = edit.expect_err("an edit over 4,096 UTF-16 units is refused");
    assert!(edit.to_string().contains("MESSAGE_TOO_LONG"), "{edit}");
    assert!(
        matches!(entity, Err(RequestError::Api(ApiError::MessageIsTooLong))),
        "{:?}",
        entity.err()
    );
    assert_eq!(tg.fake.message(GROUP, one.id.0).unwrap().plain_text, "x");
}
