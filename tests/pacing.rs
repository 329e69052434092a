//! The send limiter in the running bot: against a fake Bot API that enforces Telegram's flood
//! limits, a burst of cards earns no 429 and a decision's edit does not queue behind it; a 429
//! pauses the chat for as long as Telegram asked and the card still goes; with
//! `TELEGRAM_THROTTLE=off` nothing waits at all.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wxplugin_bot::testbed::fake_telegram::TgFault;

#[tokio::test]
async fn a_burst_under_telegrams_limits_earns_no_429_and_a_press_goes_before_the_cards() {
    let mut app = TestApp::new(8).await;
    app.tg.fake.enforce_telegram_limits();

    app.start().await;
    app.wait_cards(1).await;
    let first = app
        .appids()
        .into_iter()
        .find(|a| app.card_for(a).is_some())
        .expect("the first card names its applicant");
    let pressed = Instant::now();
    app.press(ALICE, &first, "✅");
    app.wait_card_text(&first, "Approved by @alice").await;
    let press_to_edit = pressed.elapsed();
    let cards_then = app.cards().len();
    // Each card is two calls (its message, then the edit adding its buttons once recorded).
    let all = app
        .tg
        .fake
        .wait_until(Duration::from_secs(30), |_| {
            let cards = app.cards();
            cards.len() >= 8 && cards.iter().all(armed)
        })
        .await;
    assert!(all, "8 cards with their buttons, have {:?}", app.cards());
    let burst = pressed.elapsed();

    assert!(
        cards_then < 8,
        "the burst was still being paced when the press was decided ({cards_then} of 8 cards out)"
    );
    assert!(
        press_to_edit < Duration::from_millis(500),
        "the decision's edit waited {press_to_edit:?} behind cards"
    );
    assert!(
        burst >= Duration::from_secs(10),
        "8 cards (16 calls) to one chat at one a second cannot all be out after {burst:?}"
    );
    assert_eq!(app.tg.fake.flood_refusals(), 0, "Telegram answered 429");
    app.stop().await;
}

#[tokio::test]
async fn a_429_pauses_the_chat_for_as_long_as_telegram_asked_and_the_card_still_goes() {
    let mut app = TestApp::new(1).await;
    app.tg
        .fake
        .inject(tg_fault("sendMessage", TgFault::RetryAfter(2), 1));

    let started = Instant::now();
    app.start().await;
    app.wait_cards(1).await;
    let took = started.elapsed();

    // Sent again after the wait in the same poll (the next poll is an hour away).
    assert!(took >= Duration::from_secs(2), "resent after {took:?}");
    assert!(took < Duration::from_secs(30), "the card waited {took:?}");
    let sends = app
        .tg
        .fake
        .calls()
        .iter()
        .filter(|c| c.method == "sendMessage")
        .count();
    assert_eq!(sends, 2, "one refused send, one that went through");
    assert_eq!(app.cards().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn with_the_throttle_off_forty_cards_go_as_fast_as_the_api_answers() {
    let mut app = TestApp::new(40).await;
    app.vars.insert("TELEGRAM_THROTTLE", "off".into());

    let started = Instant::now();
    app.start().await;
    app.wait_cards(40).await;
    let took = started.elapsed();

    // Paced at Telegram's one message a second per chat they would take over half a minute.
    assert!(took < Duration::from_secs(10), "40 cards took {took:?}");
    app.stop().await;
}
