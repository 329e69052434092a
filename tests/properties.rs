//! Property tests for the parsers that meet hostile input: callback data (forgeable by anyone who
//! can press), WeChat's apply_list answers (whatever the server sends), and card rendering (any
//! text WeChat hands over must become HTML Telegram accepts, within its length limit).

use proptest::prelude::*;
use serde_json::{Value, json};
use wxplugin_bot::domain::applicant::{AppId, Applicant, ApplyStatus, Category};
use wxplugin_bot::domain::card::{Card, CardState};
use wxplugin_bot::i18n::Lang;
use wxplugin_bot::telegram::callback::{CALLBACK_DATA_MAX, Press};
use wxplugin_bot::telegram::view::CardView;
use wxplugin_bot::testbed::fake_telegram::html_to_plain;
use wxplugin_bot::wechat::decode_apply_list_answer;

fn press() -> impl Strategy<Value = Press> {
    (1..=i64::MAX, any::<u32>(), 0..8u8).prop_map(|(id, i, kind)| match kind {
        0 => Press::Approve(id),
        1 => Press::Reject(id),
        2 => Press::Reason(id, i),
        3 => Press::OtherReason(id),
        4 => Press::Cancel(id),
        5 => Press::Retry(id),
        6 => Press::Refresh(id),
        _ => Press::Delete(id),
    })
}

/// Arbitrary JSON, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// apply_list items with the real keys and arbitrary values.
fn item() -> impl Strategy<Value = Value> {
    (
        json_value(),
        json_value(),
        json_value(),
        json_value(),
        json_value(),
        json_value(),
    )
        .prop_map(|(appid, status, nickname, reason, time, categories)| {
            json!({
                "appid": appid, "status": status, "nickname": nickname, "reason": reason,
                "create_time": time, "categories": categories, "headimgurl": "https://x/y",
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_press_encodes_within_64_bytes_and_round_trips(p in press()) {
        let data = p.encode();
        prop_assert!(data.len() <= CALLBACK_DATA_MAX);
        prop_assert_eq!(Press::decode(&data), Some(p));
    }

    #[test]
    fn any_callback_data_decodes_without_panic_and_only_canonically(data in ".{0,80}") {
        if let Some(p) = Press::decode(&data) {
            prop_assert_eq!(p.encode(), data);
        }
    }

    #[test]
    fn any_bytes_as_an_answer_never_panic_and_errors_explain_themselves(
        status in prop_oneof![Just(200u16), 100u16..600],
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Err(e) = decode_apply_list_answer(status, &body) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn any_json_answer_yields_only_valid_applicants(errcode in prop_oneof![Just(json!(0)), json_value()], items in prop::collection::vec(item(), 0..8)) {
        let body = json!({ "errcode": errcode, "errmsg": "x", "apply_list": items }).to_string();
        match decode_apply_list_answer(200, body.as_bytes()) {
            Ok(list) => {
                prop_assert!(list.len() <= 8);
                for a in list {
                    prop_assert!(AppId::parse(a.appid.as_str()).is_ok());
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn any_applicant_text_renders_to_html_telegram_accepts(
        nickname in ".{0,200}",
        reason in prop_oneof![".{0,300}", "[<>&\"a-z\\n]{0,5000}"],
        first in ".{0,60}",
        second in ".{0,60}",
        url in ".{0,80}",
        state in 0..5u8,
    ) {
        let applicant = Applicant {
            appid: AppId::parse("wx1234567890abcdef").unwrap(),
            status: ApplyStatus::Pending,
            nickname: Some(nickname),
            avatar_url: Some(url.clone()),
            reason: Some(reason),
            apply_url: Some(format!("https://mmbiz.qpic.cn/{url}")),
            applied_at: None,
            categories: vec![Category { first, second }],
        };
        let state = [CardState::Open, CardState::ChoosingReason, CardState::AwaitingReason, CardState::Deciding, CardState::Closed][state as usize];
        let card = Card {
            id: 1, chat_id: -1, plugin: applicant.appid.clone(), appid: applicant.appid.clone(), message_id: Some(1), state,
            actor: Some(wxplugin_bot::domain::card::Actor { id: 1, name: "<@evil&>".into() }),
            action: None, reason: None, note: None, prompt_message_id: None, message_gone: false, previous_message_id: None, moved: None, votes: Vec::new(), due_at: None, resumed: false, version: 1, changed_at: 0,
        };
        let reasons = vec!["<too> & \"vague\"".to_owned()];
        let tz = jiff::tz::TimeZone::UTC;
        for lang in [Lang::Zh, Lang::En] {
            let view = CardView { applicant: &applicant, gone: false, card: &card, reasons: &reasons, lang, tz: &tz, before: None, approvals_required: 1, uncounted: Vec::new(), plugin: Some("<i>Maps</i> &amp co") };
            let plain = html_to_plain(&view.text());
            prop_assert!(plain.is_ok(), "{:?}", plain);
            prop_assert!(plain.unwrap().chars().count() <= 4096);
            for button in view.keyboard().inline_keyboard.iter().flatten() {
                if let teloxide::types::InlineKeyboardButtonKind::CallbackData(d) = &button.kind {
                    prop_assert!(d.len() <= CALLBACK_DATA_MAX);
                }
            }
        }
    }
}
