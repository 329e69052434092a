//! The one test helper: the whole bot against the WeChat sandbox and the fake Telegram Bot API,
//! all on port 0, with a database in a temporary directory that survives restarts.

#![allow(dead_code)]

pub mod postgres;

use std::collections::HashMap;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wxplugin_bot::config::Settings;
use wxplugin_bot::testbed::fake_telegram::{
    FAKE_BOT_TOKEN, FakeMessage, FakeTelegram, FakeUser, RunningFakeTelegram,
};
use wxplugin_bot::testbed::fake_telegram::{TgFault, TgFaultRule};
use wxplugin_bot::testbed::sandbox::{
    Fault, FaultRule, FaultTarget, RunningSandbox, Sandbox, SandboxConfig,
};
use wxplugin_bot::wechat::RetryPolicy;

/// The team chat (a supergroup).
pub const TEAM: i64 = -1_001_234_567_890;
/// Another group the bot is in.
pub const OTHER_CHAT: i64 = -1_009_999_999_999;
/// Approvers.
pub const ALICE: i64 = 1001;
pub const BOB: i64 = 1002;
/// A team member who is not an approver.
pub const EVE: i64 = 1003;

/// A sandbox fault for `times` calls of `target` ("any", "token" or a devplugin action).
pub fn wx_fault(target: &str, fault: Fault, times: u32) -> FaultRule {
    let target = match target {
        "any" => FaultTarget::Any,
        "token" => FaultTarget::Token,
        action => FaultTarget::Action(action.to_owned()),
    };
    FaultRule {
        target,
        fault,
        times,
        skip: 0,
    }
}

/// A fake Bot API fault for `times` calls of `method`.
pub fn tg_fault(method: &str, fault: TgFault, times: u32) -> TgFaultRule {
    TgFaultRule {
        method: Some(method.to_owned()),
        fault,
        times,
    }
}

/// A message's button labels, row by row.
pub fn button_labels(message: &FakeMessage) -> Vec<String> {
    message
        .buttons
        .iter()
        .flatten()
        .map(|b| b.text.clone())
        .collect()
}

/// How long a test waits for something the bot should do promptly.
pub const WAIT: Duration = Duration::from_secs(10);

/// How long a test waits for the reply to a command. A reply is paced behind whatever the
/// command set off before it: a /refresh that brings back three cards answers after their six
/// calls, which in a group chat go out 3 s apart once the burst is spent — about 10 s on an idle
/// machine, so [`WAIT`] alone failed under CI's load.
pub const REPLY_WAIT: Duration = Duration::from_secs(30);

pub struct TestApp {
    pub tg: RunningFakeTelegram,
    pub wx: RunningSandbox,
    pub db: tempfile::TempDir,
    pub vars: HashMap<&'static str, String>,
    /// [`Settings::absence_proof_after`] for the bot started in-process (zero unless a test sets
    /// it).
    pub absence_proof_after: Duration,
    /// [`Settings::remind_settle`] for the bot started in-process (zero unless a test sets it).
    pub remind_settle: Duration,
    bot: Option<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
    restarts: usize,
}

impl TestApp {
    /// Sandbox with `applicants` pending applicants, fake Telegram with the team; bot not started.
    pub async fn new(applicants: usize) -> Self {
        Self::with_sandbox(SandboxConfig {
            applicants,
            ..SandboxConfig::default()
        })
        .await
    }

    /// [`TestApp::new`] with a sandbox set up as `sandbox` says.
    pub async fn with_sandbox(sandbox: SandboxConfig) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info,wxplugin_bot=debug")
                .with_test_writer()
                .try_init();
        }
        let wx = Sandbox::spawn(sandbox).await.expect("sandbox starts");
        let tg = FakeTelegram::spawn().await.expect("fake Telegram starts");
        tg.fake.add_group(TEAM, "Plugin team");
        tg.fake.add_group(OTHER_CHAT, "Somewhere else");
        for (id, name, username) in [
            (ALICE, "Alice", Some("alice")),
            (BOB, "Bob", Some("bob")),
            (EVE, "Eve", None),
        ] {
            tg.fake.add_user(FakeUser {
                id,
                first_name: name.to_owned(),
                username: username.map(str::to_owned),
                language_code: Some("en".to_owned()),
            });
        }
        tg.fake.set_admins(TEAM, &[ALICE]);
        let db = tempfile::tempdir().expect("temp dir");
        let database_url = if postgres::suites_on_postgres() {
            postgres::fresh_database().await
        } else {
            format!("sqlite:{}", db.path().join("bot.db").display())
        };
        let defaults = SandboxConfig::default();
        let vars = HashMap::from([
            ("TELOXIDE_TOKEN", FAKE_BOT_TOKEN.to_owned()),
            ("TELOXIDE_API_URL", tg.api_url.to_string()),
            ("WECHAT_API_BASE", wx.base_url.clone()),
            ("WECHAT_APPID", defaults.appid),
            ("WECHAT_SECRET", defaults.secret),
            ("TEAM_CHAT_ID", TEAM.to_string()),
            ("APPROVER_IDS", format!("{ALICE},{BOB}")),
            ("POLL_INTERVAL_SECS", "3600".to_owned()),
            ("POLL_ALERT_AFTER", "2".to_owned()),
            ("DATABASE_URL", database_url),
            ("BOT_LANG", "en".to_owned()),
            ("TZ", "UTC".to_owned()),
            ("WECHAT_TIMEOUT_SECS", "1".to_owned()),
        ]);
        Self {
            tg,
            wx,
            db,
            vars,
            absence_proof_after: Duration::ZERO,
            remind_settle: Duration::ZERO,
            bot: None,
            restarts: 0,
        }
    }

    /// A connection to the bot's database beside the bot, on whichever backend it runs. Raw SQL
    /// for it uses `$1`-style placeholders, which SQLite and PostgreSQL both read.
    pub async fn database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.vars["DATABASE_URL"])
            .await
            .expect("the bot's database opens")
    }

    /// Whether the bot runs on PostgreSQL (`WXBOT_TEST_DB=postgres`).
    pub fn on_postgres(&self) -> bool {
        self.vars["DATABASE_URL"].starts_with("postgres")
    }

    /// [`TestApp::new`] and start the bot, waiting for the first poll's cards.
    pub async fn spawn(applicants: usize) -> Self {
        let mut app = Self::new(applicants).await;
        app.start().await;
        app.wait_cards(applicants).await;
        app
    }

    pub fn settings(&self) -> Settings {
        let mut settings =
            Settings::from_vars(|k| self.vars.get(k).cloned()).expect("test settings are valid");
        // Absence is proven by two listings in a row, however close: the test that stages a
        // glitch met twice within seconds sets the real gap itself.
        settings.absence_proof_after = self.absence_proof_after;
        settings.remind_settle = self.remind_settle;
        for plugin in &mut settings.plugins {
            plugin.wechat.retry = RetryPolicy {
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                max_retries: 2,
            };
        }
        settings
    }

    pub async fn start(&mut self) {
        assert!(self.bot.is_none(), "bot already running");
        let token = CancellationToken::new();
        let handle = tokio::spawn(wxplugin_bot::bot::run(self.settings(), token.clone()));
        self.bot = Some((token, handle));
        // Started when the command list is registered (the first thing it does).
        let started = self
            .tg
            .fake
            .wait_until(WAIT, |f| {
                f.calls()
                    .iter()
                    .filter(|c| c.method == "setMyCommands")
                    .count()
                    >= self.starts()
            })
            .await;
        if !started {
            let ended = match self.bot.take() {
                Some((_, handle)) if handle.is_finished() => format!("{:?}", handle.await),
                _ => "still running".to_owned(),
            };
            panic!(
                "bot did not start: {ended}; Telegram calls: {:?}",
                self.tg.fake.calls()
            );
        }
    }

    fn starts(&self) -> usize {
        1 + self.restarts
    }

    pub async fn stop(&mut self) {
        if let Some((token, handle)) = self.bot.take() {
            token.cancel();
            let result = tokio::time::timeout(WAIT, handle)
                .await
                .expect("bot stops in time")
                .expect("bot task");
            result.expect("bot ran without error");
        }
    }

    /// Starts again after [`TestApp::stop`] (with whatever `vars` say now).
    pub async fn restart_stopped(&mut self) {
        self.restarts += 1;
        self.start().await;
    }

    /// A clean restart on the same database and fakes.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.restarts += 1;
        self.start().await;
    }

    /// Live cards the bot posted in the team chat.
    pub fn cards(&self) -> Vec<FakeMessage> {
        self.tg
            .fake
            .bot_messages(TEAM)
            .into_iter()
            .filter(|m| m.plain_text.starts_with("🧩"))
            .collect()
    }

    pub fn card_for(&self, appid: &str) -> Option<FakeMessage> {
        self.cards()
            .into_iter()
            .find(|m| m.plain_text.contains(appid))
    }

    pub fn card(&self, appid: &str) -> FakeMessage {
        self.card_for(appid)
            .unwrap_or_else(|| panic!("no card for {appid}"))
    }

    pub async fn wait_cards(&self, n: usize) {
        // Each card is two calls at about one a second in a chat after a burst of three.
        let patience = WAIT + Duration::from_secs(2 * n as u64);
        let ok = self
            .tg
            .fake
            .wait_until(patience, |_| {
                let cards = self.cards();
                cards.len() >= n && cards.iter().all(armed)
            })
            .await;
        assert!(
            ok,
            "expected {n} cards with their buttons added, have {:?}",
            self.cards()
        );
    }

    /// Whether the card of `appid` comes to show `needle` within [`WAIT`].
    async fn card_shows(&self, appid: &str, needle: &str) -> bool {
        self.tg
            .fake
            .wait_until(WAIT, |_| {
                self.card_for(appid)
                    .is_some_and(|m| m.plain_text.contains(needle) && armed(&m))
            })
            .await
    }

    /// Waits until the card of `appid` shows `needle`.
    pub async fn wait_card_text(&self, appid: &str, needle: &str) -> FakeMessage {
        let ok = self.card_shows(appid, needle).await;
        let card = self.card_for(appid);
        assert!(
            ok,
            "card of {appid} never showed {needle:?}; it shows {:?}",
            card.map(|c| c.plain_text)
        );
        self.card(appid)
    }

    /// Waits until `appid`'s card shows `needle` while `process` runs, and says what it printed
    /// when it never does.
    pub async fn wait_card_text_of(&self, process: &BotProcess, appid: &str, needle: &str) {
        let shown = self.card_shows(appid, needle).await;
        assert!(
            shown,
            "card never showed {needle:?}; the process printed:\n{}",
            process.printed()
        );
    }

    /// Another instance long-polls with the bot's token until the fake has answered `n` of the
    /// two pollers with 409 Conflict.
    pub async fn another_instance_polls(&self, n: usize) {
        let http = reqwest::Client::new();
        let get_updates = format!(
            "{}bot{}/getUpdates",
            self.tg.api_url,
            wxplugin_bot::testbed::fake_telegram::FAKE_BOT_TOKEN
        );
        let conflicts = |f: &FakeTelegram| {
            f.calls()
                .iter()
                .filter(|c| c.method == "getUpdates" && c.error_code == Some(409))
                .count()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while conflicts(&self.tg.fake) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "no 409 arose: the bot stopped polling"
            );
            let _ = http
                .post(&get_updates)
                .json(&serde_json::json!({ "timeout": 1 }))
                .send()
                .await;
        }
    }

    /// Presses the button starting with `prefix` on `appid`'s card; returns the callback query id.
    pub fn press(&self, who: i64, appid: &str, prefix: &str) -> String {
        let card = self.card(appid);
        self.tg
            .fake
            .user_presses(TEAM, card.message_id, who, prefix)
            .unwrap_or_else(|| panic!("no button {prefix:?} on {appid}'s card: {:?}", card.buttons))
    }

    /// Waits for the answer to a callback query.
    pub async fn answer(&self, callback_id: &str) -> (Option<String>, bool) {
        let ok = self
            .tg
            .fake
            .wait_until(WAIT, |f| {
                f.callback_answers()
                    .iter()
                    .any(|a| a.callback_query_id == callback_id)
            })
            .await;
        assert!(ok, "callback {callback_id} was never answered");
        let answer = self
            .tg
            .fake
            .callback_answers()
            .into_iter()
            .find(|a| a.callback_query_id == callback_id)
            .expect("answer");
        (answer.text, answer.show_alert)
    }

    /// Sends `text` as `who` in `chat` and returns the bot's reply to it.
    pub async fn command_in(&self, chat: i64, who: i64, text: &str) -> FakeMessage {
        let id = self.tg.fake.user_sends(chat, who, text);
        let ok = self
            .tg
            .fake
            .wait_until(REPLY_WAIT, |f| {
                f.bot_messages(chat).iter().any(|m| m.reply_to == Some(id))
            })
            .await;
        assert!(ok, "no reply to {text:?}");
        self.tg
            .fake
            .bot_messages(chat)
            .into_iter()
            .find(|m| m.reply_to == Some(id))
            .expect("reply")
    }

    pub async fn command(&self, who: i64, text: &str) -> FakeMessage {
        self.command_in(TEAM, who, text).await
    }

    /// WeChat calls of one action so far.
    pub fn wechat_calls(&self, action: &str) -> usize {
        self.wx
            .sandbox
            .calls()
            .iter()
            .filter(|c| c.action.as_deref() == Some(action))
            .count()
    }

    pub fn status(&self, appid: &str) -> Option<i64> {
        self.wx.sandbox.applicant(appid).map(|a| a.status)
    }

    /// The seeded applicants' appids, newest first.
    pub fn appids(&self) -> Vec<String> {
        self.wx
            .sandbox
            .applicants()
            .into_iter()
            .map(|a| a.appid)
            .collect()
    }
}

/// The real binary as a child process, for crash tests (SIGKILL) and output checks.
pub struct BotProcess {
    child: std::process::Child,
    pub output: std::path::PathBuf,
}

impl Drop for BotProcess {
    /// A test that fails midway must not leave the bot running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl BotProcess {
    /// SIGKILL: no shutdown path runs.
    pub fn kill(self) {
        drop(self);
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        self.child.wait().expect("bot process exits")
    }

    /// Sends signal `name` (`STOP`, `CONT`, …) without waiting for anything.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{name} {pid}");
    }

    /// Everything the process printed so far.
    pub fn printed(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }
}

impl TestApp {
    /// Starts the binary with this app's configuration and waits until it registered its
    /// commands (start number `nth`, counting from 1 across restarts).
    pub async fn start_process(&self, nth: usize, extra: &[(&str, &str)]) -> BotProcess {
        let output = self.db.path().join(format!("bot-{nth}.log"));
        let log = std::fs::File::create(&output).expect("log file");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wxplugin-bot"));
        cmd.env_clear()
            .current_dir(self.db.path())
            .envs(self.vars.iter().map(|(k, v)| (*k, v.as_str())))
            .envs(extra.iter().copied())
            .arg("run")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        let child = cmd.spawn().expect("bot binary starts");
        let process = BotProcess { child, output };
        let started = self
            .tg
            .fake
            .wait_until(WAIT, |f| f.call_count("setMyCommands") >= nth)
            .await;
        assert!(started, "bot process did not start: {}", process.printed());
        process
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((token, _)) = &self.bot {
            token.cancel();
        }
    }
}

impl TestApp {
    /// [`TestApp::start_process`] with the process's open-file limit (soft and hard) set to
    /// `open_files`, as systemd's `LimitNOFILE` would.
    pub async fn start_process_limited(
        &self,
        nth: usize,
        extra: &[(&str, &str)],
        open_files: u32,
    ) -> BotProcess {
        let output = self.db.path().join(format!("bot-{nth}.log"));
        let log = std::fs::File::create(&output).expect("log file");
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.env_clear()
            .current_dir(self.db.path())
            .envs(self.vars.iter().map(|(k, v)| (*k, v.as_str())))
            .envs(extra.iter().copied())
            .args([
                "-c",
                r#"ulimit -n "$1" && exec "$0" run"#,
                env!("CARGO_BIN_EXE_wxplugin-bot"),
                &open_files.to_string(),
            ])
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        let child = cmd.spawn().expect("bot binary starts");
        let process = BotProcess { child, output };
        let started = self
            .tg
            .fake
            .wait_until(WAIT, |f| f.call_count("setMyCommands") >= nth)
            .await;
        assert!(started, "bot process did not start: {}", process.printed());
        process
    }
}

/// Whether a card message has had the edit that follows its send: a card goes out without
/// buttons and gets them once the bot has recorded it (or shows an outcome by then).
pub fn armed(m: &FakeMessage) -> bool {
    !m.buttons.is_empty() || m.history.len() > 1
}

/// A free TCP port on the loopback interface (for a listener the bot binds itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GETs `url`: its HTTP status and body.
pub async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The address a bot process printed for its metrics.
/// `/healthz` at `base` once it answers other than 200, or its last answer after 40 s.
pub async fn healthz_once_failing(base: &str) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let (status, body) = get(&format!("{base}/healthz")).await;
        if status != 200 || tokio::time::Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn metrics_base(process: &BotProcess) -> String {
    for _ in 0..100 {
        let printed = process.printed();
        if let Some(rest) = printed.split("metrics on http://").nth(1)
            && let Some(addr) = rest.split("/metrics").next()
        {
            return format!("http://{addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no metrics address printed: {}", process.printed());
}

/// The value of one series (name and labels, as printed) in a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
