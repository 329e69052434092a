//! Several replicas on one PostgreSQL (issue 18): real processes of the binary sharing one
//! throwaway server, the WeChat sandbox and the fake Bot API. The leader is killed mid-poll,
//! mid-send and mid-decision, or paused past its lease; what must hold afterwards is what holds
//! for one process: one live card per pending applicant, one WeChat write per decision, an audit
//! log that tells it. Skipped, saying why, where PostgreSQL is not installed (never under
//! `CI=true`).
//!
//! `cargo test --release --test replicas -- --ignored --nocapture takeover` measures takeover
//! (SIGKILL of the leader → the first poll by the next one) over 20 kills at the default lease.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wxplugin_bot::testbed::fake_telegram::TgFault;
use wxplugin_bot::testbed::sandbox::{Fault, NewApplicant};

/// The lease in these tests: short, so a takeover takes seconds.
const LEASE_SECS: u64 = 3;

/// Long enough for any takeover at [`LEASE_SECS`] (its bound is 4/3 of a lease) and the polls
/// after it.
const TAKEOVER_WAIT: Duration = Duration::from_secs(30);

/// A team on a fresh PostgreSQL database, replicas not started yet; `None` (the test skipped)
/// without PostgreSQL.
async fn team(applicants: usize, test: &str, lease_secs: u64) -> Option<TestApp> {
    if !common::postgres::installed_or_skip(test) {
        return None;
    }
    let mut app = TestApp::new(applicants).await;
    app.vars
        .insert("DATABASE_URL", common::postgres::fresh_database().await);
    app.vars.insert("LEASE_SECS", lease_secs.to_string());
    app.vars.insert("POLL_INTERVAL_SECS", "5".to_owned());
    Some(app)
}

/// The lease's holder and epoch as the database has them.
async fn lease(app: &TestApp) -> (Option<String>, i64) {
    let pool = app.database().await;
    let row: (Option<String>, i64) =
        sqlx::query_as("SELECT holder, epoch FROM leader_lease WHERE id = 1")
            .fetch_one(&pool)
            .await
            .expect("the lease row");
    pool.close().await;
    row
}

/// Waits until `process`, woken, says its lease was taken over; fails the test if it never does.
async fn steps_down(app: &TestApp, process: &BotProcess) {
    let stepped_down = app
        .tg
        .fake
        .wait_until(TAKEOVER_WAIT, |_| {
            process.printed().contains("lease was taken over")
        })
        .await;
    assert!(stepped_down, "it steps down: {}", process.printed());
}

/// Waits until `replica` holds the lease; false if it never does within `wait`.
async fn leads(app: &TestApp, replica: &str, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if lease(app).await.0.as_deref() == Some(replica) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// `appid`'s cards in the team chat: (how many offer ✅, how many messages in all).
fn messages_of(app: &TestApp, appid: &str) -> (usize, usize) {
    let all: Vec<_> = app
        .tg
        .fake
        .bot_messages(TEAM)
        .into_iter()
        .filter(|m| m.plain_text.contains(appid) && m.plain_text.starts_with("🧩"))
        .collect();
    let live = all
        .iter()
        .filter(|m| button_labels(m).iter().any(|l| l.starts_with('✅')))
        .count();
    (live, all.len())
}

/// Waits until every applicant WeChat lists as pending has a card with buttons.
async fn every_pending_applicant_carded(app: &TestApp, wait: Duration) -> bool {
    let pending: Vec<String> = app
        .wx
        .sandbox
        .applicants()
        .into_iter()
        .filter(|a| a.status == 1)
        .map(|a| a.appid)
        .collect();
    app.tg
        .fake
        .wait_until(wait, |_| {
            pending.iter().all(|appid| messages_of(app, appid).0 >= 1)
        })
        .await
}

fn newcomer(app: &TestApp, n: usize) -> String {
    app.wx.sandbox.add_applicant(NewApplicant {
        nickname: Some(format!("Newcomer {n}")),
        ..NewApplicant::default()
    })
}

/// One live card per pending applicant, none offering ✅ twice, and at most `strays` second
/// messages in all (each a card Telegram took from a killed leader before it could record it,
/// never given buttons: the documented duplicate window, one per kill at most).
fn one_live_card_each(app: &TestApp, strays: usize) {
    let mut extra = 0;
    for a in app.wx.sandbox.applicants() {
        let (live, all) = messages_of(app, &a.appid);
        extra += all.saturating_sub(1);
        if a.status == 1 {
            assert_eq!(live, 1, "{}: one live card, got {live}", a.appid);
        } else {
            assert_eq!(live, 0, "{}: decided, yet {live} cards offer ✅", a.appid);
        }
    }
    assert!(
        extra <= strays,
        "{extra} second messages, at most {strays} allowed (one per kill)"
    );
}

#[tokio::test]
async fn a_standby_polls_nothing_until_the_leader_is_killed_mid_send_then_cards_the_rest() {
    let Some(app) = team(2, "replicas::killed_mid_send", LEASE_SECS).await else {
        return;
    };
    let a = app.start_process(1, &[("REPLICA_NAME", "a")]).await;
    app.wait_cards(2).await;
    let b = app.start_process(2, &[("REPLICA_NAME", "b")]).await;
    assert_eq!(lease(&app).await, (Some("a".to_owned()), 1));
    // A standby reads nothing: neither WeChat nor Telegram's updates.
    let polls_before = app.wechat_calls("dev_apply_list");
    tokio::time::sleep(Duration::from_secs(LEASE_SECS)).await;
    assert!(
        b.printed().contains("standing by"),
        "b says it stands by: {}",
        b.printed()
    );
    assert!(
        app.wechat_calls("dev_apply_list") <= polls_before + 1,
        "only the leader polls (one poll a 5 s interval at most)"
    );

    // Four newcomers; the leader's sends are slow, and it dies after the first.
    let newcomers: Vec<String> = (0..4).map(|n| newcomer(&app, n)).collect();
    app.tg.fake.inject(tg_fault(
        "sendMessage",
        TgFault::Delay(Duration::from_millis(700)),
        3,
    ));
    // Not waiting for the answer: it comes after the sends.
    app.tg.fake.user_sends(TEAM, ALICE, "/refresh");
    let sent_one = app
        .tg
        .fake
        .wait_until(WAIT, |_| {
            newcomers.iter().any(|id| messages_of(&app, id).1 > 0)
        })
        .await;
    assert!(sent_one, "the leader began sending the newcomers' cards");
    a.kill();

    assert!(
        leads(&app, "b", TAKEOVER_WAIT).await,
        "b takes over: {}",
        b.printed()
    );
    assert!(
        every_pending_applicant_carded(&app, TAKEOVER_WAIT).await,
        "the new leader cards every newcomer: {}",
        b.printed()
    );
    app.command(BOB, "/refresh").await;
    one_live_card_each(&app, 1);
    assert_eq!(lease(&app).await, (Some("b".to_owned()), 2));
    b.terminate();
}

/// Kills whichever replica leads during a poll: a newcomer applies, a `/refresh` starts a poll
/// whose listing WeChat answers slowly, and the leader dies once WeChat has a listing call (its
/// poll may have reached the newcomer's card by then). Returns the newcomer.
async fn kill_leader_mid_poll(app: &TestApp, leader: BotProcess, n: usize) -> String {
    // Slow before the newcomer exists: no listing can bring it and send its card first.
    let listings = app.wechat_calls("dev_apply_list");
    app.wx.sandbox.inject(wx_fault(
        "dev_apply_list",
        Fault::Delay(Duration::from_secs(2)),
        1,
    ));
    let appid = newcomer(app, n);
    app.tg.fake.user_sends(TEAM, ALICE, "/refresh");
    let polling = app
        .tg
        .fake
        .wait_until(WAIT, |_| app.wechat_calls("dev_apply_list") > listings)
        .await;
    assert!(polling, "staging: the leader polls: {}", leader.printed());
    leader.kill();
    appid
}

/// Waits until one of `names` holds the lease at `epoch`; which one.
async fn taken_by(app: &TestApp, names: &[&str], epoch: i64) -> Option<String> {
    let deadline = Instant::now() + TAKEOVER_WAIT;
    while Instant::now() < deadline {
        if let (Some(holder), e) = lease(app).await
            && e == epoch
            && names.contains(&holder.as_str())
        {
            return Some(holder);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn of_three_replicas_one_takes_over_at_each_kill_during_a_poll_and_every_newcomer_is_carded_once()
 {
    let Some(app) = team(2, "replicas::three_killed_mid_poll", LEASE_SECS).await else {
        return;
    };
    let a = app.start_process(1, &[("REPLICA_NAME", "a")]).await;
    app.wait_cards(2).await;
    let mut standbys = vec![
        ("b", app.start_process(2, &[("REPLICA_NAME", "b")]).await),
        ("c", app.start_process(3, &[("REPLICA_NAME", "c")]).await),
    ];
    assert_eq!(lease(&app).await, (Some("a".to_owned()), 1));

    let first = kill_leader_mid_poll(&app, a, 1).await;
    let Some(second_leader) = taken_by(&app, &["b", "c"], 2).await else {
        panic!("neither b nor c took over: {:?}", lease(&app).await);
    };
    assert!(
        every_pending_applicant_carded(&app, TAKEOVER_WAIT).await,
        "the new leader cards the newcomer of the poll the kill cut short"
    );
    // One live card; at most one more message, a card the killed leader got Telegram to take
    // before it could record it (the documented window, never offering ✅/❌).
    let (live, all) = messages_of(&app, &first);
    assert!(live == 1 && all <= 2, "{first}: {live} live of {all}");
    let index = standbys
        .iter()
        .position(|(name, _)| *name == second_leader)
        .expect("a standby");
    let (_, leader) = standbys.remove(index);
    let (third_name, third) = standbys.remove(0);
    assert!(
        third.printed().contains("standing by"),
        "{third_name} stands by while {second_leader} leads: {}",
        third.printed()
    );

    let second = kill_leader_mid_poll(&app, leader, 2).await;
    assert_eq!(
        taken_by(&app, &[third_name], 3).await.as_deref(),
        Some(third_name),
        "the last replica takes over: {}",
        third.printed()
    );
    assert!(
        every_pending_applicant_carded(&app, TAKEOVER_WAIT).await,
        "{}",
        third.printed()
    );
    let (live, all) = messages_of(&app, &second);
    assert!(live == 1 && all <= 2, "{second}: {live} live of {all}");
    app.command(BOB, "/refresh").await;
    one_live_card_each(&app, 2);
    third.terminate();
}

#[tokio::test]
async fn a_leader_killed_mid_decision_leaves_one_write_that_the_next_leader_shows_and_logs() {
    let Some(app) = team(2, "replicas::killed_mid_decision", LEASE_SECS).await else {
        return;
    };
    let appid = app.appids()[0].clone();
    let a = app.start_process(1, &[("REPLICA_NAME", "a")]).await;
    app.wait_cards(2).await;
    let b = app.start_process(2, &[("REPLICA_NAME", "b")]).await;
    // WeChat makes the write at once and answers after the leader is gone.
    app.wx.sandbox.inject(wx_fault(
        "dev_agree",
        Fault::Delay(Duration::from_secs(5)),
        1,
    ));

    app.press(ALICE, &appid, "✅");
    let agreed = app
        .tg
        .fake
        .wait_until(WAIT, |_| app.status(&appid) == Some(2))
        .await;
    assert!(agreed, "staging: the write reached WeChat");
    a.kill();

    assert!(leads(&app, "b", TAKEOVER_WAIT).await, "{}", b.printed());
    let shown = app
        .tg
        .fake
        .wait_until(TAKEOVER_WAIT, |_| {
            app.card_for(&appid)
                .is_some_and(|c| c.plain_text.contains("Now approved in WeChat"))
        })
        .await;
    assert!(
        shown,
        "the next leader settles the card; it shows {:?}\n{}",
        app.card_for(&appid).map(|c| c.plain_text),
        b.printed()
    );
    assert_eq!(app.wechat_calls("dev_agree"), 1, "never written twice");
    let pool = app.database().await;
    let results: Vec<String> =
        sqlx::query_scalar("SELECT result FROM audit WHERE appid = $1 ORDER BY id")
            .bind(&appid)
            .fetch_all(&pool)
            .await
            .expect("audit");
    assert_eq!(results.first().map(String::as_str), Some("attempt"));
    // WeChat's answer died with the leader: the next leader re-reads and logs the write as
    // made, without crediting it (another hand could have made it), as one process does after
    // a restart.
    assert!(
        results.len() >= 2 && !results.iter().any(|r| r == "error"),
        "the attempt's result is logged: {results:?}"
    );

    // The new leader takes presses (it reads Telegram's updates now).
    let other = app.appids()[1].clone();
    app.press(BOB, &other, "✅");
    app.wait_card_text(&other, "✅ Approved by @bob").await;
    assert_eq!(app.wechat_calls("dev_agree"), 2);
    one_live_card_each(&app, 0);
    b.terminate();
}

#[tokio::test]
async fn a_leader_paused_between_its_claim_and_its_write_never_writes_after_the_next_leader_settled_it()
 {
    let Some(app) = team(1, "replicas::paused_mid_decision", LEASE_SECS).await else {
        return;
    };
    let appid = app.appids()[0].clone();
    let a = app.start_process(1, &[("REPLICA_NAME", "a")]).await;
    app.wait_cards(1).await;
    let b = app.start_process(2, &[("REPLICA_NAME", "b")]).await;
    // The decision's write waits on a new token, which WeChat is slow to give: the card is
    // claimed and its attempt logged, the write not yet sent, when the leader is paused.
    let fetches = || {
        let stats = app.wx.sandbox.stats();
        stats.stable_token_requests + stats.classic_token_requests
    };
    let before = fetches();
    app.wx.sandbox.revoke_tokens();
    app.wx
        .sandbox
        .inject(wx_fault("token", Fault::Delay(Duration::from_secs(3)), 1));
    app.press(ALICE, &appid, "✅");
    let fetching = app.tg.fake.wait_until(WAIT, |_| fetches() > before).await;
    assert!(fetching, "staging: the decision asks for a token");
    a.signal("STOP");

    // The next leader settles the abandoned decision from WeChat's list once the claimer's
    // window to write and the request's timeout have passed: nothing was written.
    assert!(leads(&app, "b", TAKEOVER_WAIT).await, "{}", b.printed());
    let pool = app.database().await;
    let results = || async {
        sqlx::query_scalar::<_, String>("SELECT result FROM audit WHERE appid = $1 ORDER BY id")
            .bind(&appid)
            .fetch_all(&pool)
            .await
            .expect("audit")
    };
    let deadline = Instant::now() + TAKEOVER_WAIT;
    while results().await.len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let settled = results().await;
    assert!(
        settled.len() >= 2,
        "b settles the decision: {settled:?}\n{}",
        b.printed()
    );
    let offered = app
        .tg
        .fake
        .wait_until(TAKEOVER_WAIT, |_| messages_of(&app, &appid).0 == 1)
        .await;
    assert!(
        offered,
        "the card offers ✅ again: {:?}",
        app.card_for(&appid).map(|c| c.plain_text)
    );

    // Woken with its token, the old leader is past its window: it sends nothing.
    a.signal("CONT");
    steps_down(&app, &a).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let applied = app
        .wx
        .sandbox
        .calls()
        .iter()
        .filter(|c| c.action.as_deref() == Some("dev_agree") && c.errcode == Some(0))
        .count();
    assert_eq!(
        (applied, app.status(&appid)),
        (0, Some(1)),
        "a wrote after b had logged the decision as not made: {}",
        a.printed()
    );
    assert_eq!(results().await, settled, "nothing more is logged");

    // The decision is made again, once, by the leader.
    app.press(BOB, &appid, "✅");
    app.wait_card_text(&appid, "✅ Approved by @bob").await;
    assert_eq!(app.status(&appid), Some(2));
    one_live_card_each(&app, 0);
    pool.close().await;
    a.terminate();
    b.terminate();
}

#[tokio::test]
async fn a_leader_paused_past_its_lease_is_fenced_when_it_wakes_and_stands_by() {
    let Some(app) = team(1, "replicas::paused_leader", LEASE_SECS).await else {
        return;
    };
    let metrics = [("METRICS_ADDR", "127.0.0.1:0")];
    let a = app
        .start_process(1, &[("REPLICA_NAME", "a"), metrics[0]])
        .await;
    app.wait_cards(1).await;
    let b = app
        .start_process(2, &[("REPLICA_NAME", "b"), metrics[0]])
        .await;
    let (a_base, b_base) = (metrics_base(&a).await, metrics_base(&b).await);
    let health = healthz(&b_base).await;
    assert_eq!(
        (health["leading"].as_bool(), health["leader"].as_str()),
        (Some(false), Some("a")),
        "the standby names the leader: {health}"
    );
    assert_eq!(health["ok"].as_bool(), Some(true), "a standby is healthy");
    assert_eq!(
        metric(
            &get(&format!("{a_base}/metrics")).await.1,
            "wxplugin_leader"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &get(&format!("{b_base}/metrics")).await.1,
            "wxplugin_leader"
        ),
        Some(0.0)
    );

    a.signal("STOP");
    assert!(leads(&app, "b", TAKEOVER_WAIT).await, "{}", b.printed());
    let first = newcomer(&app, 1);
    app.command(ALICE, "/refresh").await;
    assert!(every_pending_applicant_carded(&app, TAKEOVER_WAIT).await);

    // Woken, the old leader finds its lease taken and stops leading; its writes are refused.
    a.signal("CONT");
    steps_down(&app, &a).await;
    let second = newcomer(&app, 2);
    app.command(BOB, "/refresh").await;
    assert!(every_pending_applicant_carded(&app, TAKEOVER_WAIT).await);
    tokio::time::sleep(Duration::from_secs(LEASE_SECS)).await;

    one_live_card_each(&app, 0);
    assert_eq!(messages_of(&app, &first), (1, 1));
    assert_eq!(messages_of(&app, &second), (1, 1));
    assert_eq!(
        lease(&app).await.0.as_deref(),
        Some("b"),
        "b keeps the lease"
    );
    let health = healthz(&a_base).await;
    assert_eq!(
        (health["leading"].as_bool(), health["leader"].as_str()),
        (Some(false), Some("b")),
        "the old leader says who leads now: {health}"
    );
    assert_eq!(
        metric(
            &get(&format!("{a_base}/metrics")).await.1,
            "wxplugin_leader"
        ),
        Some(0.0)
    );
    let status = app.command(ALICE, "/status").await.plain_text;
    assert!(
        status.contains("Replica: b (leading"),
        "/status names the leader: {status}"
    );
    let a_status = a.terminate();
    assert!(a_status.success(), "{}", a_printed_or(&app));
    b.terminate();
}

async fn healthz(base: &str) -> serde_json::Value {
    serde_json::from_str(&get(&format!("{base}/healthz")).await.1).expect("/healthz is JSON")
}

fn a_printed_or(app: &TestApp) -> String {
    std::fs::read_to_string(app.db.path().join("bot-1.log")).unwrap_or_default()
}

#[tokio::test]
#[ignore = "a measurement: 20 kills at the default lease take about five minutes"]
async fn takeover() {
    let lease_secs: u64 = std::env::var("LEASE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let kills: usize = std::env::var("KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let Some(app) = team(1, "replicas::takeover", lease_secs).await else {
        return;
    };
    let mut started = 1;
    let mut leader = app.start_process(started, &[("REPLICA_NAME", "r1")]).await;
    app.wait_cards(1).await;
    let mut took = Vec::new();
    for kill in 0..kills {
        started += 1;
        let name = format!("r{started}");
        let standby = app
            .start_process(started, &[("REPLICA_NAME", name.as_str())])
            .await;
        // Kill at a random point of the renewal cycle.
        let jitter = rand_millis(kill, lease_secs * 1000 / 3);
        tokio::time::sleep(Duration::from_millis(1000 + jitter)).await;
        let polls = app.wechat_calls("dev_apply_list");
        leader.kill();
        let killed = Instant::now();
        // The first poll by the new leader: a list call once it holds the lease (one the old
        // leader had in flight does not count).
        let deadline = killed + Duration::from_secs(lease_secs * 3);
        let mut polled = None;
        while Instant::now() < deadline {
            if lease(&app).await.0.as_deref() == Some(name.as_str())
                && app.wechat_calls("dev_apply_list") > polls
            {
                polled = Some(killed.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let Some(after) = polled else {
            panic!("no takeover: {}", standby.printed());
        };
        took.push(after);
        println!(
            "kill {}: first poll by {name} after {:?}",
            kill + 1,
            took[kill]
        );
        leader = standby;
    }
    leader.terminate();
    took.sort();
    let p50 = took[took.len() / 2];
    let max = took[took.len() - 1];
    println!(
        "takeover over {} kills at LEASE_SECS={lease_secs}: p50 {:.1} s, max {:.1} s",
        took.len(),
        p50.as_secs_f64(),
        max.as_secs_f64()
    );
}

/// A spread of kill moments without a random-number crate: the kill's number, hashed.
fn rand_millis(n: usize, below: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(n);
    h.finish() % below.max(1)
}

#[tokio::test]
async fn in_webhook_mode_the_same_press_at_two_replicas_makes_one_write() {
    let Some(mut app) = team(2, "replicas::webhook", LEASE_SECS).await else {
        return;
    };
    let (port_a, port_b) = (free_port(), free_port());
    // Telegram posts to one URL; the load balancer behind it (here: the fake, then this test)
    // may hand an update to any replica, or, retrying, to two.
    let secret = "shared_hook-secret-7";
    app.vars.insert(
        "TELEGRAM_WEBHOOK_URL",
        format!("https://127.0.0.1:{port_a}/telegram/hook"),
    );
    app.vars
        .insert("TELEGRAM_WEBHOOK_SECRET", secret.to_owned());
    let listen_a = format!("127.0.0.1:{port_a}");
    let listen_b = format!("127.0.0.1:{port_b}");
    let a = app
        .start_process(
            1,
            &[
                ("REPLICA_NAME", "a"),
                ("TELEGRAM_WEBHOOK_LISTEN", &listen_a),
            ],
        )
        .await;
    app.wait_cards(2).await;
    let b = app
        .start_process(
            2,
            &[
                ("REPLICA_NAME", "b"),
                ("TELEGRAM_WEBHOOK_LISTEN", &listen_b),
            ],
        )
        .await;
    let listening = app
        .tg
        .fake
        .wait_until(WAIT, |_| b.printed().contains("bot started (webhook)"))
        .await;
    assert!(listening, "b serves the webhook: {}", b.printed());
    app.wx.sandbox.inject(wx_fault(
        "dev_agree",
        Fault::Delay(Duration::from_millis(500)),
        1,
    ));

    // One press, delivered to both replicas at once.
    let appid = app.appids()[0].clone();
    let card = app.card(&appid);
    let data = card
        .buttons
        .iter()
        .flatten()
        .find(|b| b.text.starts_with('✅'))
        .and_then(|b| b.callback_data.clone())
        .expect("✅ on the card");
    let press = serde_json::json!({
        "update_id": 8_000_001,
        "callback_query": {
            "id": "pressed-once",
            "from": { "id": ALICE, "is_bot": false, "first_name": "Alice", "username": "alice" },
            "message": {
                "message_id": card.message_id,
                "date": 0,
                "chat": { "id": TEAM, "type": "supergroup", "title": "Plugin team" },
                "from": { "id": 123_456, "is_bot": true, "first_name": "WxPlugin Bot" },
                "text": "card"
            },
            "chat_instance": "x",
            "data": data
        }
    });
    let http = reqwest::Client::new();
    let post = |port: u16| {
        http.post(format!("http://127.0.0.1:{port}/telegram/hook"))
            .header("X-Telegram-Bot-Api-Secret-Token", secret)
            .json(&press)
            .send()
    };
    let (to_a, to_b) = tokio::join!(post(port_a), post(port_b));
    assert_eq!(to_a.expect("POST a").status().as_u16(), 200);
    assert_eq!(to_b.expect("POST b").status().as_u16(), 200);

    app.wait_card_text(&appid, "✅ Approved by @alice").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        app.wechat_calls("dev_agree"),
        1,
        "one write for one press, whichever replicas it reached"
    );
    // Telegram's own deliveries reach a replica too: a command is answered.
    let reply = app.command(BOB, "/chatid").await;
    assert!(reply.plain_text.contains(&TEAM.to_string()));
    assert_eq!(
        app.tg.fake.call_count("getUpdates"),
        0,
        "no replica long-polls"
    );

    // A replica that stops leaves the webhook to the others.
    let stopped = b.terminate();
    assert!(stopped.success(), "{}", a_printed_or(&app));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        app.tg.fake.call_count("deleteWebhook"),
        0,
        "a replica that stops leaves the webhook to the others"
    );
    assert!(app.tg.fake.webhook().is_some(), "the webhook stays set");
    let other = app.appids()[1].clone();
    app.press(BOB, &other, "✅");
    app.wait_card_text(&other, "✅ Approved by @bob").await;
    drop(a);
}
