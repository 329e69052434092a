//! The fake Bot API driven by a real teloxide `Bot` over HTTP: it must answer what Telegram
//! answers, in the shapes teloxide parses, or the bot suite proves nothing.

use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ParseMode, UpdateKind,
};
use teloxide::{ApiError, RequestError};
use wxplugin_bot::fake_telegram::{
    ChatEvent, FAKE_BOT_TOKEN, FakeTelegram, FakeUser, RunningFakeTelegram, TgFault, TgFaultRule,
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
    assert_eq!(server.status(), 502);
    assert_eq!(
        server.json::<serde_json::Value>().await.unwrap()["ok"],
        false
    );
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
