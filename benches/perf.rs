//! What a team feels, measured: time to card, time to outcome, the cost of a poll over many
//! applicants (busy and idle), and the bot's memory. The WeChat sandbox and the fake Bot API run in
//! this process on loopback and answer at once; the bot is the real release binary in a child
//! process, so its CPU time and resident memory are read from `/proc/<pid>` alone.
//!
//! `cargo bench --bench perf` runs it at full scale and prints a Markdown table. Under
//! `cargo test` it runs at a small scale as a smoke test (the same checks, fewer samples).
//! `PERF_ONLY=poll cargo bench --bench perf` stops after the poll measurements (seconds, not
//! minutes), for profiling the poll; `PERF_ONLY=card` after the poll → card latency;
//! `PERF_ONLY=plugins` measures many plugins in one bot alone (idle polls' CPU and memory, and
//! time to card in one plugin while another's WeChat times out). Latencies are taken at the boundaries: the instant the
//! sandbox finished answering a list call, the instant the fake Bot API handled a call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::broadcast::error::RecvError;
use wxplugin_bot::telegram::limiter::Limits;
use wxplugin_bot::testbed::fake_telegram::{
    ChatEvent, FAKE_BOT_TOKEN, FakeTelegram, FakeUser, RecordedCall, RunningFakeTelegram,
};
use wxplugin_bot::testbed::sandbox::{NewApplicant, RunningSandbox, Sandbox, SandboxConfig};

const TEAM: i64 = -1_001_234_567_890;
const ALICE: i64 = 1001;
const PAGE: usize = 100;
const WAIT: Duration = Duration::from_secs(120);
/// Posting many cards: a burst paced at 20 a minute in a group takes minutes.
const CARDS_WAIT: Duration = Duration::from_secs(900);
/// Calls that count against a chat's flood budgets (the fake's and the limiter's).
const MESSAGE_CALLS: [&str; 4] = [
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "deleteMessage",
];

struct Scale {
    name: &'static str,
    burst: usize,
    burst_presses: usize,
    known: usize,
    presses: usize,
    card_samples: usize,
    idle_polls: usize,
    interval_samples: usize,
    /// Plugins in one bot, and applicants of each (`PERF_ONLY=plugins`).
    plugins: usize,
    per_plugin: usize,
    /// Newcomers carded while another plugin's WeChat times out.
    slow_samples: usize,
}

const FULL: Scale = Scale {
    name: "full",
    burst: 60,
    burst_presses: 15,
    known: 10_000,
    presses: 1_000,
    card_samples: 50,
    idle_polls: 10,
    interval_samples: 6,
    plugins: 50,
    per_plugin: 200,
    slow_samples: 6,
};
const SMOKE: Scale = Scale {
    name: "smoke",
    burst: 4,
    burst_presses: 2,
    known: 300,
    presses: 10,
    card_samples: 3,
    idle_polls: 2,
    interval_samples: 1,
    plugins: 3,
    per_plugin: 10,
    slow_samples: 1,
};

fn main() {
    let scale = if std::env::args().any(|a| a == "--bench") {
        FULL
    } else {
        SMOKE
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(scale));
}

/// The bot child process and where it writes.
struct Bot {
    child: Child,
    dir: PathBuf,
}

impl Bot {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time so far.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of stat: indexes 11 and 12 after the name.
        let total = ticks(11) + ticks(12);
        Duration::from_micros(total * 1_000_000 / clock_ticks())
    }

    /// Resident memory in MiB.
    fn rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    }

    /// Size and modification time of the database and its WAL: unchanged means untouched.
    fn db_fingerprint(&self) -> Vec<(u64, Option<SystemTime>)> {
        ["bot.db", "bot.db-wal"]
            .iter()
            .map(|f| {
                let meta = std::fs::metadata(self.dir.join(f)).ok();
                (
                    meta.as_ref().map_or(0, |m| m.len()),
                    meta.and_then(|m| m.modified().ok()),
                )
            })
            .collect()
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn start_bot(tg: &RunningFakeTelegram, wx: &RunningSandbox, dir: &Path, interval_secs: u64) -> Bot {
    start_bot_with(tg, wx, dir, interval_secs, "off")
}

fn start_bot_with(
    tg: &RunningFakeTelegram,
    wx: &RunningSandbox,
    dir: &Path,
    interval_secs: u64,
    throttle: &str,
) -> Bot {
    let defaults = SandboxConfig::default();
    let vars: HashMap<&str, String> = HashMap::from([
        ("TELOXIDE_TOKEN", FAKE_BOT_TOKEN.to_owned()),
        ("TELOXIDE_API_URL", tg.api_url.to_string()),
        ("TELEGRAM_THROTTLE", throttle.to_owned()),
        ("WECHAT_API_BASE", wx.base_url.clone()),
        ("WECHAT_APPID", defaults.appid),
        ("WECHAT_SECRET", defaults.secret),
        ("WECHAT_PAGE_SIZE", PAGE.to_string()),
        ("TEAM_CHAT_ID", TEAM.to_string()),
        ("APPROVER_IDS", ALICE.to_string()),
        ("POLL_INTERVAL_SECS", interval_secs.to_string()),
        (
            "DATABASE_URL",
            format!("sqlite:{}", dir.join("bot.db").display()),
        ),
        ("BOT_LANG", "en".to_owned()),
        ("TZ", "UTC".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]);
    spawn_bot(dir, vars, &format!("bot-{interval_secs}.log"))
}

/// The release binary running with exactly `vars`, in `dir`, its output in `log`.
fn spawn_bot<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
    dir: &Path,
    vars: impl IntoIterator<Item = (K, V)>,
    log: &str,
) -> Bot {
    let log = std::fs::File::create(dir.join(log)).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_wxplugin-bot"))
        .env_clear()
        .envs(vars)
        .current_dir(dir)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("the bot binary starts");
    Bot {
        child,
        dir: dir.to_path_buf(),
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (samples.len() as f64 - 1.0)).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Sends `/refresh` and waits for the bot's reply; returns the wall time.
async fn refresh(tg: &FakeTelegram) -> Duration {
    refresh_within(tg, WAIT).await
}

async fn refresh_within(tg: &FakeTelegram, wait: Duration) -> Duration {
    let started = Instant::now();
    let id = tg.user_sends(TEAM, ALICE, "/refresh");
    let answered = tg
        .wait_until(wait, |f| {
            f.bot_messages(TEAM).iter().any(|m| m.reply_to == Some(id))
        })
        .await;
    assert!(answered, "no reply to /refresh");
    started.elapsed()
}

fn list_calls(wx: &RunningSandbox) -> u64 {
    wx.sandbox.stats().apply_list
}

/// Telegram calls other than long polls and command replies.
fn telegram_side_effects(tg: &FakeTelegram) -> usize {
    tg.calls()
        .iter()
        .filter(|c| c.method != "getUpdates")
        .filter(|c| !(c.method == "sendMessage" && c.params.get("reply_parameters").is_some()))
        .count()
}

async fn wait_event(
    events: &mut tokio::sync::broadcast::Receiver<ChatEvent>,
    matches: impl Fn(&ChatEvent) -> bool,
) -> Instant {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) if matches(&event) => return Instant::now(),
            Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Err(RecvError::Closed)) | Err(_) => panic!("the expected chat event never came"),
        }
    }
}

/// When the fake handled the last successful call of `method` that `pick` accepts.
fn handled_at(tg: &FakeTelegram, method: &str, pick: impl Fn(&RecordedCall) -> bool) -> Instant {
    handled_in(&tg.calls(), method, pick)
}

/// [`handled_at`] over a copy of the call log.
fn handled_in(
    calls: &[RecordedCall],
    method: &str,
    pick: impl Fn(&RecordedCall) -> bool,
) -> Instant {
    calls
        .iter()
        .rev()
        .find(|c| c.method == method && c.error_code.is_none() && pick(c))
        .map(|c| c.at)
        .expect("the fake handled the call")
}

/// When the fake handled the edit that gave `appid`'s card its buttons (a card goes out without
/// them, and gets them once the bot has recorded its message): the card is usable from then on.
fn armed_in(calls: &[RecordedCall], appid: &str) -> Option<Instant> {
    calls
        .iter()
        .find(|c| {
            c.method == "editMessageText"
                && c.error_code.is_none()
                && text_has(c, appid)
                && c.params
                    .pointer("/reply_markup/inline_keyboard/0/0")
                    .is_some()
        })
        .map(|c| c.at)
}

fn text_has(call: &RecordedCall, needle: &str) -> bool {
    call.params
        .get("text")
        .and_then(|t| t.as_str())
        .is_some_and(|t| t.contains(needle))
}

fn chat_is(call: &RecordedCall, chat: i64) -> bool {
    call.params.get("chat_id").and_then(|c| c.as_i64()) == Some(chat)
}

fn message_is(call: &RecordedCall, message_id: i32) -> bool {
    call.params.get("message_id").and_then(|m| m.as_i64()) == Some(i64::from(message_id))
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

/// Presses ✅ on a card as Alice; the time until the fake handled the card's edit. Waited for by
/// event, not by polling the fake's messages: every poll clones the whole chat under the fake's
/// lock, which would hold up the very calls being timed.
async fn press_to_edit(
    tg: &RunningFakeTelegram,
    events: &mut tokio::sync::broadcast::Receiver<ChatEvent>,
    message_id: i32,
) -> Duration {
    let pressed_at = Instant::now();
    tg.fake
        .user_presses(TEAM, message_id, ALICE, "✅")
        .expect("✅ on the card");
    wait_event(events, |e| {
        matches!(e, ChatEvent::MessageEdited(m) if m.message_id == message_id && m.plain_text.contains("Approved by"))
    })
    .await;
    let at = handled_at(&tg.fake, "editMessageText", |c| {
        chat_is(c, TEAM) && message_is(c, message_id)
    });
    at.saturating_duration_since(pressed_at)
}

/// Poll's answer → card, `samples` times: a new applicant in the sandbox, `/refresh`, then from
/// the instant the sandbox finished answering the poll's last list call (the listing is complete
/// only then: the bot reads every page before it judges absence) to the instant the fake handled
/// the edit that gave the card its buttons (its sendMessage goes just before, without them).
async fn poll_to_card(
    tg: &RunningFakeTelegram,
    wx: &RunningSandbox,
    samples: usize,
) -> Vec<Duration> {
    let mut events = tg.fake.subscribe();
    let mut to_card = Vec::new();
    for _ in 0..samples {
        let appid = wx.sandbox.add_applicant(NewApplicant::default());
        tg.fake.user_sends(TEAM, ALICE, "/refresh");
        wait_event(
            &mut events,
            |e| matches!(e, ChatEvent::MessageEdited(m) if m.plain_text.contains(&appid) && !m.buttons.is_empty()),
        )
        .await;
        let sent = armed_in(&tg.fake.calls(), &appid).expect("the card got its buttons");
        let answered = wx
            .sandbox
            .list_answers()
            .into_iter()
            .filter(|at| *at <= sent)
            .max()
            .expect("a poll listed the applicant before its card");
        assert!(
            wx.sandbox
                .first_listed(&appid)
                .is_some_and(|at| at <= answered),
            "the card's poll listed the applicant"
        );
        to_card.push(sent.saturating_duration_since(answered));
    }
    to_card
}

async fn run(scale: Scale) {
    let dir = tempfile::tempdir().expect("temp dir");
    let wx = Sandbox::spawn(SandboxConfig {
        applicants: 0,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let tg = FakeTelegram::spawn().await.expect("fake Telegram");
    tg.fake.add_group(TEAM, "Plugin team");
    tg.fake.add_user(FakeUser {
        id: ALICE,
        first_name: "Alice".into(),
        username: Some("alice".into()),
        language_code: None,
    });
    let mut rows: Vec<(String, String)> = Vec::new();

    // Many plugins in one bot, alone.
    if std::env::var("PERF_ONLY").is_ok_and(|v| v == "plugins") {
        plugins_section(&tg, dir.path(), &scale, &mut rows).await;
        print_table(&scale, rows);
        return;
    }

    // The burst alone (minutes, not a quarter of an hour), for profiling the limiter.
    if std::env::var("PERF_ONLY").is_ok_and(|v| v == "burst") {
        burst_section(&tg, &wx, dir.path(), &scale, &mut rows).await;
        print_table(&scale, rows);
        return;
    }

    // 0. Poll's answer → card in a plugin of ordinary size (no more applicants than samples): a
    //    sandbox, database and bot of its own, stopped before the rest starts.
    let small_dir = tempfile::tempdir().expect("temp dir");
    let small_wx = Sandbox::spawn(SandboxConfig {
        applicants: 0,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let small = start_bot(&tg, &small_wx, small_dir.path(), 86_400);
    assert!(
        tg.fake
            .wait_until(WAIT, |f| f.call_count("setMyCommands") >= 1)
            .await,
        "bot did not start"
    );
    let mut to_card = poll_to_card(&tg, &small_wx, scale.card_samples).await;
    rows.push((
        format!(
            "poll's answer → card's buttons, one new applicant ({0} samples, at most {0} known): p50",
            scale.card_samples
        ),
        ms(percentile(&mut to_card, 50.0)),
    ));
    rows.push(("— p99".into(), ms(percentile(&mut to_card, 99.0))));
    drop(small);
    if std::env::var("PERF_ONLY").is_ok_and(|v| v == "small") {
        print_table(&scale, rows);
        return;
    }

    // 1. Start, idle.
    let bot = start_bot(&tg, &wx, dir.path(), 86_400);
    assert!(
        tg.fake
            .wait_until(WAIT, |f| f.call_count("setMyCommands") >= 2)
            .await,
        "bot did not start"
    );
    refresh(&tg.fake).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    rows.push((
        "resident memory, idle after start".into(),
        format!("{:.1} MiB", bot.rss_mib()),
    ));

    // 2. A poll over `known` applicants (decided ones: no cards), then idle polls.
    for _ in 0..scale.known {
        wx.sandbox.add_applicant(NewApplicant {
            status: Some(2),
            ..NewApplicant::default()
        });
    }
    let (calls_before, cpu_before) = (list_calls(&wx), bot.cpu());
    let first = refresh(&tg.fake).await;
    let (first_calls, first_cpu) = (list_calls(&wx) - calls_before, bot.cpu() - cpu_before);
    let expected_calls = scale.known / PAGE + 1;
    assert_eq!(
        first_calls as usize, expected_calls,
        "pages until a short one"
    );
    rows.push((
        format!(
            "first poll of {} applicants (num = {PAGE}): wall",
            scale.known
        ),
        ms(first),
    ));
    rows.push(("— its CPU time (bot process)".into(), ms(first_cpu)));
    rows.push(("— its dev_apply_list calls".into(), first_calls.to_string()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    rows.push((
        format!("resident memory with {} applicants known", scale.known),
        format!("{:.1} MiB", bot.rss_mib()),
    ));

    let db_before = bot.db_fingerprint();
    let effects_before = telegram_side_effects(&tg.fake);
    let (calls_before, cpu_before) = (list_calls(&wx), bot.cpu());
    let mut walls = Vec::new();
    for _ in 0..scale.idle_polls {
        walls.push(refresh(&tg.fake).await);
    }
    let idle_cpu = (bot.cpu() - cpu_before) / scale.idle_polls as u32;
    let idle_calls = (list_calls(&wx) - calls_before) / scale.idle_polls as u64;
    assert_eq!(
        bot.db_fingerprint(),
        db_before,
        "an idle poll wrote to the database"
    );
    assert_eq!(
        telegram_side_effects(&tg.fake),
        effects_before,
        "an idle poll called Telegram"
    );
    rows.push((
        format!("idle poll of {} applicants: wall p50", scale.known),
        ms(percentile(&mut walls, 50.0)),
    ));
    rows.push(("— its CPU time (mean, bot process)".into(), ms(idle_cpu)));
    rows.push(("— its dev_apply_list calls".into(), idle_calls.to_string()));
    rows.push((
        "— database writes / Telegram calls".into(),
        "0 / 0 (file size+mtime and call log unchanged)".into(),
    ));
    if std::env::var("PERF_ONLY").is_ok_and(|v| v == "poll") {
        // For profiling the poll: stop before the slow Telegram-paced sections.
        drop(bot);
        print_table(&scale, rows);
        return;
    }

    // 3. The same latency with `known` applicants listed besides the new one.
    let mut to_card = poll_to_card(&tg, &wx, scale.card_samples).await;
    let mut events = tg.fake.subscribe();
    rows.push((
        format!(
            "poll's answer → card's buttons, one new applicant ({} samples, {} known): p50",
            scale.card_samples, scale.known
        ),
        ms(percentile(&mut to_card, 50.0)),
    ));
    rows.push(("— p99".into(), ms(percentile(&mut to_card, 99.0))));

    if std::env::var("PERF_ONLY").is_ok_and(|v| v == "card") {
        // For profiling the poll → card path: stop after it.
        drop(bot);
        print_table(&scale, rows);
        return;
    }

    // 4. Time to outcome: ✅ handed out by the fake → the card's edit arriving, over N cards.
    let first_new = tg.fake.bot_messages(TEAM).len();
    let mut appids = Vec::new();
    for _ in 0..scale.presses {
        appids.push(wx.sandbox.add_applicant(NewApplicant::default()));
    }
    let refreshed = Instant::now();
    refresh_within(&tg.fake, CARDS_WAIT).await;
    let posted = tg
        .fake
        .wait_until(WAIT, |f| {
            f.bot_messages(TEAM)
                .iter()
                .filter(|m| m.plain_text.starts_with("🧩"))
                .count()
                >= scale.card_samples + scale.presses
        })
        .await;
    assert!(posted, "cards for the presses were not posted");
    let calls = tg.fake.calls();
    let last_card = appids
        .iter()
        .filter_map(|a| armed_in(&calls, a))
        .max()
        .unwrap_or(refreshed);
    let first_listed = appids
        .iter()
        .filter_map(|a| wx.sandbox.first_listed(a))
        .min()
        .unwrap_or(refreshed);
    rows.push((
        format!(
            "{} cards in one poll, TELEGRAM_THROTTLE=off: /refresh → last card",
            scale.presses
        ),
        format!(
            "{} ({} after the first list answer naming them)",
            ms(last_card - refreshed),
            ms(last_card.saturating_duration_since(first_listed)),
        ),
    ));
    let cards: Vec<i32> = tg.fake.bot_messages(TEAM)[first_new..]
        .iter()
        .filter(|m| {
            m.plain_text.starts_with("🧩")
                && appids.iter().any(|a| m.plain_text.contains(a.as_str()))
        })
        .map(|m| m.message_id)
        .collect();
    assert_eq!(cards.len(), scale.presses);
    let mut to_outcome = Vec::new();
    for message_id in cards {
        let started = Instant::now();
        tg.fake
            .user_presses(TEAM, message_id, ALICE, "✅")
            .expect("✅ on the card");
        let edited = wait_event(&mut events, |e| {
            matches!(e, ChatEvent::MessageEdited(m) if m.message_id == message_id && m.plain_text.contains("Approved by"))
        })
        .await;
        to_outcome.push(edited - started);
    }
    rows.push((
        format!(
            "time to outcome, ✅ → edited card ({} presses on {} cards): p50",
            scale.presses, scale.presses
        ),
        ms(percentile(&mut to_outcome, 50.0)),
    ));
    rows.push(("— p99".into(), ms(percentile(&mut to_outcome, 99.0))));

    // 4b. The same with the bot idle between presses, spaced as the burst's presses below are
    //     (one per refill of the group's reserved slot), limits off and no burst: the control for
    //     that row, since a press after seconds of quiet starts from parked threads.
    let gap = Limits::TELEGRAM.per_group.interval() + Duration::from_millis(200);
    let spaced: Vec<String> = (0..scale.burst_presses)
        .map(|_| wx.sandbox.add_applicant(NewApplicant::default()))
        .collect();
    refresh(&tg.fake).await;
    let mut after_quiet = Vec::new();
    for appid in &spaced {
        let card = |f: &FakeTelegram| {
            f.bot_messages(TEAM)
                .iter()
                .find(|m| m.plain_text.starts_with("🧩") && m.plain_text.contains(appid.as_str()))
                .map(|m| m.message_id)
        };
        assert!(
            tg.fake.wait_until(WAIT, |f| card(f).is_some()).await,
            "no card for a spaced press"
        );
        let Some(message_id) = card(&tg.fake) else {
            continue;
        };
        tokio::time::sleep(gap).await;
        after_quiet.push(press_to_edit(&tg, &mut events, message_id).await);
    }
    rows.push((
        format!(
            "— the same, {} presses {:.1} s apart (as in the burst below), no burst: p50",
            after_quiet.len(),
            gap.as_secs_f64()
        ),
        ms(percentile(&mut after_quiet, 50.0)),
    ));
    rows.push(("— p99".into(), ms(percentile(&mut after_quiet, 99.0))));
    rows.push((
        "resident memory at the end".into(),
        format!("{:.1} MiB", bot.rss_mib()),
    ));
    drop(bot);

    // 5. Time to card with the poll interval (5 s, the shortest allowed).
    let bot = start_bot(&tg, &wx, dir.path(), 5);
    assert!(
        tg.fake
            .wait_until(WAIT, |f| f.call_count("setMyCommands") >= 3)
            .await,
        "bot did not restart"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut by_interval = Vec::new();
    for i in 0..scale.interval_samples {
        // Arrive at different points of the interval.
        tokio::time::sleep(Duration::from_millis(700 * (i as u64 % 7))).await;
        let started = Instant::now();
        let appid = wx.sandbox.add_applicant(NewApplicant::default());
        let arrived = wait_event(
            &mut events,
            |e| matches!(e, ChatEvent::MessageSent(m) if m.plain_text.contains(&appid)),
        )
        .await;
        by_interval.push(arrived - started);
    }
    rows.push((
        format!(
            "time to card with POLL_INTERVAL_SECS=5 ({} samples): p50",
            scale.interval_samples
        ),
        ms(percentile(&mut by_interval, 50.0)),
    ));
    rows.push(("— max".into(), ms(percentile(&mut by_interval, 100.0))));
    drop(bot);

    burst_section(&tg, &wx, dir.path(), &scale, &mut rows).await;
    print_table(&scale, rows);
}

/// Section 6, a burst with Telegram's limits on both sides: the fake refuses with 429 past
/// Telegram's budgets (its own buckets, fresh now), the bot runs on its default limits (fresh at
/// start), and presses on the first cards are made while the rest are being paced.
async fn burst_section(
    tg: &RunningFakeTelegram,
    wx: &RunningSandbox,
    dir: &Path,
    scale: &Scale,
    rows: &mut Vec<(String, String)>,
) {
    tg.fake.enforce_telegram_limits();
    let refusals_before = tg.fake.flood_refusals();
    let starts = tg.fake.call_count("setMyCommands");
    let bot = start_bot_with(tg, wx, dir, 86_400, "telegram");
    assert!(
        tg.fake
            .wait_until(WAIT, |f| f.call_count("setMyCommands") > starts)
            .await,
        "bot did not restart"
    );
    let mut burst = Vec::new();
    for _ in 0..scale.burst {
        burst.push(wx.sandbox.add_applicant(NewApplicant::default()));
    }
    let started = Instant::now();
    tg.fake.user_sends(TEAM, ALICE, "/refresh");
    let burst_card = |f: &FakeTelegram, pressed: &[i32]| {
        f.bot_messages(TEAM)
            .iter()
            .filter(|m| {
                m.plain_text.starts_with("🧩")
                    && !m.buttons.is_empty()
                    && !pressed.contains(&m.message_id)
            })
            .find(|m| burst.iter().any(|a| m.plain_text.contains(a.as_str())))
            .map(|m| m.message_id)
    };
    let group = Limits::TELEGRAM.per_group;
    let mut pressed = Vec::new();
    let mut to_edit = Vec::new();
    for _ in 0..scale.burst_presses {
        // One press per refill of the group's slot that the card lane leaves to decisions.
        tokio::time::sleep(group.interval() + Duration::from_millis(200)).await;
        let found = tg
            .fake
            .wait_until(WAIT, |f| burst_card(f, &pressed).is_some())
            .await;
        let Some(message_id) = burst_card(&tg.fake, &pressed).filter(|_| found) else {
            break;
        };
        pressed.push(message_id);
        let mut events = tg.fake.subscribe();
        to_edit.push(press_to_edit(tg, &mut events, message_id).await);
    }
    let all = tg
        .fake
        .wait_until(CARDS_WAIT, |f| {
            let sent = f.calls();
            burst.iter().all(|a| armed_in(&sent, a).is_some())
        })
        .await;
    assert!(all, "cards were lost in the burst");
    let calls = tg.fake.calls();
    let last_card = burst
        .iter()
        .filter_map(|a| armed_in(&calls, a))
        .max()
        .unwrap_or(started);
    // Messages that counted against the group's budget from the /refresh to the last card's
    // buttons: the cards, the edits adding their buttons, the digest, the reply, the pressed
    // cards' edits.
    let in_group = calls
        .iter()
        .filter(|c| {
            MESSAGE_CALLS.contains(&c.method.as_str())
                && c.error_code.is_none()
                && chat_is(c, TEAM)
                && c.at >= started
                && c.at <= last_card
        })
        .count();
    // Telegram's group limit alone (20 a minute, a burst of 20) lets the n-th message go no
    // sooner than (n - burst) intervals after an untouched budget's first; the one slot the
    // card lane leaves to decisions costs one interval more than that.
    let earliest = |messages: usize| {
        group.interval()
            * u32::try_from(messages.saturating_sub(group.burst as usize)).unwrap_or(u32::MAX)
    };
    let took = last_card - started;
    let allowed = earliest(in_group);
    let refusals = tg.fake.flood_refusals() - refusals_before;
    assert_eq!(refusals, 0, "the bot earned 429s in the burst");
    // The digest ("📥 N new plugin applications…") went out after the /refresh and before the
    // burst's first card.
    let first_card = burst
        .iter()
        .map(|a| handled_in(&calls, "sendMessage", |c| text_has(c, a)))
        .min()
        .unwrap_or(last_card);
    let digest = calls.iter().any(|c| {
        c.method == "sendMessage"
            && c.error_code.is_none()
            && chat_is(c, TEAM)
            && (started..=first_card).contains(&c.at)
            && c.params
                .get("text")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.starts_with("📥"))
    });
    rows.push((
        format!(
            "burst of {} new applicants, Telegram's limits enforced by the fake, bot on its defaults: /refresh → last card's buttons",
            scale.burst
        ),
        format!(
            "{:.1} s; earliest Telegram's limits allow for the {in_group} group messages sent meanwhile \
             ({cards} cards and {cards} edits adding their buttons, {} pressed cards' edits, {} other): {:.1} s \
             (cards and their buttons alone: {:.1} s); over by {}; 429s: {refusals}; lost: 0; digest first: {}",
            took.as_secs_f64(),
            to_edit.len(),
            in_group.saturating_sub(2 * scale.burst + to_edit.len()),
            allowed.as_secs_f64(),
            earliest(2 * scale.burst).as_secs_f64(),
            if allowed.is_zero() {
                ms(took)
            } else {
                format!(
                    "{:.1} %",
                    (took.as_secs_f64() / allowed.as_secs_f64() - 1.0) * 100.0
                )
            },
            if digest { "yes" } else { "no" },
            cards = scale.burst,
        ),
    ));
    rows.push((
        format!(
            "press → edited card while the burst is paced ({} presses): p50",
            to_edit.len()
        ),
        ms(percentile(&mut to_edit, 50.0)),
    ));
    rows.push(("— p99".into(), ms(percentile(&mut to_edit, 99.0))));
    drop(bot);
}

/// Many plugins in one bot (`PERF_ONLY=plugins`): `plugins` sandboxes of `per_plugin`
/// applicants each, configured by one `PLUGINS_FILE`, polled every 5 s with Telegram's limits off.
/// Measures the first cards, idle polls' CPU and the bot's memory, then the time to card of a
/// newcomer in one plugin while another's WeChat answers only after its timeout.
async fn plugins_section(
    tg: &RunningFakeTelegram,
    dir: &Path,
    scale: &Scale,
    rows: &mut Vec<(String, String)>,
) {
    const INTERVAL: u64 = 5;
    let mut sandboxes = Vec::with_capacity(scale.plugins);
    let mut file = String::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    for i in 0..scale.plugins {
        let appid = format!("wxbench{i:011x}");
        let wx = Sandbox::spawn(SandboxConfig {
            appid: appid.clone(),
            secret: format!("bench-secret-{i}"),
            applicants: scale.per_plugin,
            seed: 1_000 + i as u64,
            ..SandboxConfig::default()
        })
        .await
        .expect("sandbox");
        file.push_str(&format!(
            "[[plugin]]\nname = \"P{i:02}\"\nappid = \"{appid}\"\nsecret_env = \"BENCH_SECRET_{i}\"\napi_base = \"{}\"\n\n",
            wx.base_url
        ));
        vars.insert(format!("BENCH_SECRET_{i}"), format!("bench-secret-{i}"));
        sandboxes.push(wx);
    }
    let plugins_file = dir.join("plugins.toml");
    std::fs::write(&plugins_file, file).expect("plugins file");
    for (k, v) in [
        ("TELOXIDE_TOKEN", FAKE_BOT_TOKEN.to_owned()),
        ("TELOXIDE_API_URL", tg.api_url.to_string()),
        ("TELEGRAM_THROTTLE", "off".to_owned()),
        ("PLUGINS_FILE", plugins_file.display().to_string()),
        ("WECHAT_PAGE_SIZE", PAGE.to_string()),
        ("WECHAT_TIMEOUT_SECS", "2".to_owned()),
        ("TEAM_CHAT_ID", TEAM.to_string()),
        ("APPROVER_IDS", ALICE.to_string()),
        ("POLL_INTERVAL_SECS", INTERVAL.to_string()),
        (
            "DATABASE_URL",
            format!("sqlite:{}", dir.join("bot.db").display()),
        ),
        ("BOT_LANG", "en".to_owned()),
        ("TZ", "UTC".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ] {
        vars.insert(k.to_owned(), v);
    }
    let bot = spawn_bot(dir, &vars, "bot-plugins.log");
    let total = scale.plugins * scale.per_plugin;
    let started = Instant::now();
    let carded = tg
        .fake
        .wait_until(CARDS_WAIT, |f| {
            f.bot_messages(TEAM)
                .iter()
                .filter(|m| !m.buttons.is_empty())
                .count()
                >= total
        })
        .await;
    assert!(
        carded,
        "the first cards of {total} applicants never all arrived"
    );
    rows.push((
        format!(
            "{} plugins × {} applicants, `TELEGRAM_THROTTLE=off`: start → every card's buttons",
            scale.plugins, scale.per_plugin
        ),
        format!("{:.1} s", started.elapsed().as_secs_f64()),
    ));

    // Idle: every plugin polled every interval, nothing new.
    tokio::time::sleep(Duration::from_secs(INTERVAL)).await;
    let calls = |sandboxes: &[RunningSandbox]| -> u64 { sandboxes.iter().map(list_calls).sum() };
    let (cpu_before, calls_before, telegram_before) = (
        bot.cpu(),
        calls(&sandboxes),
        telegram_side_effects(&tg.fake),
    );
    let idle = Duration::from_secs(INTERVAL * scale.idle_polls as u64);
    tokio::time::sleep(idle).await;
    let cpu = bot.cpu().saturating_sub(cpu_before);
    // A listing reads every page and the empty one after the last.
    let pages = scale.per_plugin.div_ceil(PAGE) + 1;
    let rounds = (calls(&sandboxes) - calls_before) as f64 / (scale.plugins * pages) as f64;
    rows.push((
        format!(
            "— idle, every plugin polled every {INTERVAL} s, over {} s: CPU",
            idle.as_secs()
        ),
        format!(
            "{:.2} % of one core ({} ms; about {rounds:.0} listings of each plugin)",
            cpu.as_secs_f64() / idle.as_secs_f64() * 100.0,
            cpu.as_millis()
        ),
    ));
    assert_eq!(
        telegram_side_effects(&tg.fake),
        telegram_before,
        "idle polls sent nothing to Telegram"
    );
    rows.push((
        "— resident memory, idle".into(),
        format!("{:.1} MiB", bot.rss_mib()),
    ));

    // A newcomer of plugin 0 while plugin 1's WeChat answers only after its 2 s timeout (each
    // listing fails after its retries).
    sandboxes[1]
        .sandbox
        .inject(wxplugin_bot::testbed::sandbox::FaultRule {
            target: wxplugin_bot::testbed::sandbox::FaultTarget::Action("dev_apply_list".into()),
            fault: wxplugin_bot::testbed::sandbox::Fault::Delay(Duration::from_secs(30)),
            times: 1_000_000,
            skip: 0,
        });
    let mut to_card = Vec::with_capacity(scale.slow_samples);
    for _ in 0..scale.slow_samples {
        let appid = sandboxes[0].sandbox.add_applicant(NewApplicant::default());
        let applied = Instant::now();
        let shown = tg
            .fake
            .wait_until(WAIT, |f| armed_in(&f.calls(), &appid).is_some())
            .await;
        assert!(
            shown,
            "a newcomer was never carded while another plugin timed out"
        );
        let at = armed_in(&tg.fake.calls(), &appid).expect("armed");
        to_card.push(at.saturating_duration_since(applied));
    }
    let max = to_card.iter().max().copied().unwrap_or_default();
    rows.push((
        format!(
            "— a newcomer applies → its card's buttons, while another plugin's WeChat times out ({} samples, polls every {INTERVAL} s): p50 / max",
            scale.slow_samples
        ),
        format!("{} / {}", ms(percentile(&mut to_card, 50.0)), ms(max)),
    ));
    drop(bot);
}

fn print_table(scale: &Scale, rows: Vec<(String, String)>) {
    println!(
        "\nwxplugin-bot perf ({} scale) on {}\n",
        scale.name,
        machine()
    );
    println!("| measure | value |\n| --- | --- |");
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
}
