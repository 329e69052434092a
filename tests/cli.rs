//! The binary itself: a bad configuration stops the start with one line naming the variable and
//! exit code 2; `check` reads WeChat (here the sandbox) and Telegram (the fake Bot API), says what
//! it found, and names each problem on a line of its own.

use std::process::{Command, Output};

use wxplugin_bot::testbed::fake_telegram::{FAKE_BOT_TOKEN, FakeTelegram, RunningFakeTelegram};
use wxplugin_bot::testbed::sandbox::{RunningSandbox, Sandbox, SandboxConfig};

/// The team chat of the `check` tests.
const TEAM: i64 = -1_001_234_567_890;

fn bot() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wxplugin-bot"));
    // A clean environment: nothing from the developer's shell or a .env file leaks in.
    cmd.env_clear().current_dir(env!("CARGO_TARGET_TMPDIR"));
    cmd
}

fn valid<'a>(cmd: &'a mut Command, base: &str) -> &'a mut Command {
    let d = SandboxConfig::default();
    cmd.env("TELOXIDE_TOKEN", "123:abc")
        .env("WECHAT_APPID", d.appid)
        .env("WECHAT_SECRET", d.secret)
        .env("WECHAT_API_BASE", base)
        .env("TEAM_CHAT_ID", "-1001")
}

#[test]
fn a_bad_value_stops_the_start_with_one_line_and_exit_code_2() {
    let output = valid(&mut bot(), "http://127.0.0.1:9")
        .env("POLL_INTERVAL_SECS", "soon")
        .arg("run")
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("POLL_INTERVAL_SECS"), "{stderr}");
}

#[test]
fn a_missing_variable_is_named() {
    let output = bot().arg("check").output().unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("TELOXIDE_TOKEN: is not set"), "{stderr}");
}

/// A sandbox with `applicants` and a fake Bot API whose team chat has the bot in it.
async fn world(applicants: usize) -> (RunningSandbox, RunningFakeTelegram) {
    let wx = Sandbox::spawn(SandboxConfig {
        applicants,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let tg = FakeTelegram::spawn().await.unwrap();
    tg.fake.add_group(TEAM, "Plugin team");
    (wx, tg)
}

/// Runs `check` against both fakes, with `vars` on top of a valid configuration.
async fn check(wx: &RunningSandbox, tg: &RunningFakeTelegram, vars: &[(&str, &str)]) -> Output {
    check_with_secret(wx, tg, true, vars).await
}

/// [`check`], with `WECHAT_SECRET` left out unless `secret` (the modes that have none).
async fn check_with_secret(
    wx: &RunningSandbox,
    tg: &RunningFakeTelegram,
    secret: bool,
    vars: &[(&str, &str)],
) -> Output {
    let base = wx.base_url.clone();
    let api = tg.api_url.to_string();
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = bot();
        valid(&mut cmd, &base);
        if !secret {
            cmd.env_remove("WECHAT_SECRET");
        }
        cmd.env("TELOXIDE_TOKEN", FAKE_BOT_TOKEN)
            .env("TELOXIDE_API_URL", api)
            .env("TEAM_CHAT_ID", TEAM.to_string())
            .envs(vars)
            .arg("check")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// The problem lines `check` printed: stderr from the program's own last words on, without
/// the program name (log lines come before).
fn problems(output: &Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let Some(start) = stderr.find("wxplugin-bot: ") else {
        return Vec::new();
    };
    stderr[start + "wxplugin-bot: ".len()..]
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn check_reads_one_page_and_telegram_and_never_prints_a_secret() {
    let (wx, tg) = world(3).await;

    let output = check(&wx, &tg, &[]).await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("first page has 3 applicants, 3 pending"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "telegram: token ok (@wxplugin_test_bot); TEAM_CHAT_ID {TEAM} is \"Plugin team\", where the bot is a member and may post"
        )),
        "{stdout}"
    );
    let methods: Vec<String> = tg.fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(
        methods,
        ["getMe", "getChat", "getChatMember"],
        "nothing is posted"
    );
    let secret = SandboxConfig::default().secret;
    let token = wx.sandbox.current_token().unwrap();
    for secret in [secret.as_str(), token.as_str(), FAKE_BOT_TOKEN] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
}

/// `check` in `cloudrun` mode, with no `WECHAT_SECRET` at all, against `wx`.
async fn check_cloud_run(wx: &RunningSandbox, tg: &RunningFakeTelegram) -> Output {
    check_with_secret(wx, tg, false, &[("WECHAT_TOKEN_MODE", "cloudrun")]).await
}

#[tokio::test]
async fn check_in_cloud_run_mode_reads_through_the_cloud_call_or_says_why_not() {
    let cloud = Sandbox::spawn(SandboxConfig {
        applicants: 2,
        cloud_run: true,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let (outside, tg) = world(2).await;

    let inside = check_cloud_run(&cloud, &tg).await;
    let elsewhere = check_cloud_run(&outside, &tg).await;

    let stdout = String::from_utf8_lossy(&inside.stdout);
    assert!(
        inside.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&inside.stderr)
    );
    assert!(
        stdout.contains("wechat: cloud call ok (mode cloudrun, no token); first page has 2 applicants, 2 pending"),
        "{stdout}"
    );
    assert_eq!(cloud.sandbox.stats().stable_token_requests, 0);
    // Outside Cloud Run the call goes without a token: 41001, with what to switch on.
    assert_eq!(elsewhere.status.code(), Some(1));
    let problems = problems(&elsewhere);
    assert!(
        problems.iter().any(|l| l.contains("41001"))
            && problems
                .iter()
                .any(|l| l.starts_with("hint:") && l.contains("开放接口服务")),
        "{problems:#?}"
    );
}

/// `check` in authorizer mode (no `WECHAT_SECRET`), its ticket file and database in `dir`.
async fn check_platform(
    wx: &RunningSandbox,
    tg: &RunningFakeTelegram,
    dir: &std::path::Path,
) -> Output {
    let defaults = SandboxConfig::default();
    let ticket_file = dir.join("ticket");
    std::fs::write(&ticket_file, wx.sandbox.ticket()).unwrap();
    let refresh = wx.sandbox.authorizer_refresh_token().unwrap();
    let database = format!("sqlite:{}", dir.join("bot.db").display());
    let ticket_file = ticket_file.display().to_string();
    check_with_secret(
        wx,
        tg,
        false,
        &[
            ("WECHAT_TOKEN_MODE", "authorizer"),
            ("WECHAT_COMPONENT_APPID", &defaults.component_appid),
            ("WECHAT_COMPONENT_SECRET", &defaults.component_secret),
            ("WECHAT_COMPONENT_TICKET_FILE", &ticket_file),
            ("WECHAT_AUTHORIZER_REFRESH_TOKEN", &refresh),
            ("DATABASE_URL", &database),
        ],
    )
    .await
}

#[tokio::test]
async fn check_through_a_platform_trades_the_refresh_token_only_where_it_can_keep_the_new_one() {
    let (wx, tg) = world(2).await;
    let dir = tempfile::tempdir().unwrap();

    // No database yet: the chain up to the component token, and the owner's refresh token
    // left alone for the bot's first start.
    let before = check_platform(&wx, &tg, dir.path()).await;
    let stdout = String::from_utf8_lossy(&before.stdout);
    assert!(
        before.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&before.stderr)
    );
    assert!(
        stdout.contains("wechat: component token ok (mode authorizer); the authorizer token is left to the bot's first start"),
        "{stdout}"
    );
    assert_eq!(wx.sandbox.stats().authorizer_token_requests, 0);

    // The bot's database exists: the whole chain, and the refresh token WeChat returned kept.
    let url = format!("sqlite:{}", dir.path().join("bot.db").display());
    wxplugin_bot::store::Store::open(&url)
        .await
        .unwrap()
        .close()
        .await;
    let configured = wx.sandbox.authorizer_refresh_token().unwrap();
    let after = check_platform(&wx, &tg, dir.path()).await;
    let stdout = String::from_utf8_lossy(&after.stdout);
    assert!(
        after.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&after.stderr)
    );
    assert!(
        stdout
            .contains("wechat: token ok (mode authorizer); first page has 2 applicants, 2 pending"),
        "{stdout}"
    );
    let store = wxplugin_bot::store::Store::open(&url).await.unwrap();
    let kept = store
        .authorizer_refresh_token(&SandboxConfig::default().appid, &configured)
        .await
        .unwrap();
    store.close().await;
    assert_ne!(kept, configured, "WeChat handed out a new refresh token");
    assert_eq!(Some(kept), wx.sandbox.authorizer_refresh_token());
    assert_eq!(wx.sandbox.stats().authorizer_token_requests, 1);
    // Nothing secret printed.
    let printed = format!("{stdout}{}", String::from_utf8_lossy(&after.stderr));
    assert!(!printed.contains(&SandboxConfig::default().component_secret));
    assert!(!printed.contains("refreshtoken@@@"), "{printed}");
}

#[tokio::test]
async fn check_explains_a_wechat_refusal() {
    let (wx, tg) = world(8).await;

    let output = check(&wx, &tg, &[("WECHAT_SECRET", "wrong-secret")]).await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("40125"), "{stderr}");
    assert!(stderr.contains("hint: WECHAT_SECRET"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("telegram: token ok"),
        "Telegram is still checked"
    );
}

#[tokio::test]
async fn check_names_a_bad_bot_token_and_every_other_problem_on_its_own_line() {
    let (wx, tg) = world(1).await;
    let wrong = "123456:not-the-token-of-this-bot";

    let output = check(
        &wx,
        &tg,
        &[("TELOXIDE_TOKEN", wrong), ("WECHAT_SECRET", "wrong-secret")],
    )
    .await;

    assert_eq!(output.status.code(), Some(1));
    let lines = problems(&output);
    assert!(
        lines[0].starts_with("wechat: WeChat errcode 40125"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some(
            "telegram: getMe was refused (401 Unauthorized): TELOXIDE_TOKEN is wrong or was revoked; copy the bot's current token from @BotFather"
        ),
        "{lines:?}"
    );
    let all = format!("{output:?}");
    assert!(!all.contains(wrong), "the token is never printed: {all}");
}

#[tokio::test]
async fn check_names_a_bot_that_is_not_in_the_team_chat() {
    let (wx, tg) = world(1).await;
    tg.fake.kick_bot(TEAM);

    let kicked = check(&wx, &tg, &[]).await;
    let unknown = check(&wx, &tg, &[("TEAM_CHAT_ID", "-1009876543210")]).await;

    assert_eq!(kicked.status.code(), Some(1));
    assert_eq!(
        problems(&kicked),
        [format!(
            "telegram: the bot is not a member of TEAM_CHAT_ID {TEAM} (Forbidden: bot was kicked from the supergroup chat): add it to the team chat, or correct TEAM_CHAT_ID (/chatid in the chat shows it)"
        )]
    );
    assert_eq!(unknown.status.code(), Some(1));
    let lines = problems(&unknown);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "telegram: the bot is not a member of TEAM_CHAT_ID -1009876543210 (Bad Request: chat not found)"
        ),
        "{lines:?}"
    );
}

#[tokio::test]
async fn check_gives_the_new_id_of_a_group_that_became_a_supergroup() {
    let (wx, tg) = world(1).await;
    let old = -4_012_345_678_i64;
    tg.fake.add_group(old, "Plugin team");
    tg.fake.upgrade_group(old, TEAM);

    let output = check(&wx, &tg, &[("TEAM_CHAT_ID", &old.to_string())]).await;

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        problems(&output),
        [format!(
            "telegram: TEAM_CHAT_ID {old} is a group that was upgraded to a supergroup: set TEAM_CHAT_ID={TEAM}"
        )]
    );
}

#[tokio::test]
async fn check_names_a_bot_that_may_not_post() {
    let (wx, tg) = world(1).await;
    tg.fake.restrict_bot(TEAM);

    let output = check(&wx, &tg, &[]).await;

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        problems(&output),
        [format!(
            "telegram: the bot is in TEAM_CHAT_ID {TEAM} but cannot post there (it is restricted: it may not send messages): let it send messages, or make it an administrator"
        )]
    );
}

/// The README's main command: `wxplugin-bot demo` starts everything, prints where the page is,
/// posts the seeded applicants' cards, and stops cleanly on SIGTERM.
#[tokio::test]
async fn demo_starts_from_nothing_and_stops_on_sigterm() {
    use std::io::BufRead as _;
    let mut child = bot()
        .args(["demo", "--addr", "127.0.0.1:0", "--applicants", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Kept open to the end: the demo prints more lines after the first.
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();

    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(page.contains("<script src=\"/demo.js\">"), "{page}");
    let mut cards = 0;
    for _ in 0..200 {
        let state: serde_json::Value = reqwest::get(format!("{url}api/state"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        cards = state["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["text"].as_str().is_some_and(|t| t.starts_with("🧩")))
            .count();
        if cards == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(cards, 3);
    let health = reqwest::get(format!("{url}healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // `healthcheck` (Docker's HEALTHCHECK) agrees, and fails where nothing answers.
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let ok = bot()
        .args(["healthcheck", "--addr", addr])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let down = bot()
        .env("METRICS_ADDR", "127.0.0.1:9")
        .arg("healthcheck")
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("no answer"));

    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    drop(lines);
}

/// Runs the bot on `db` against both fakes until it exits, or for at most 10 s (then kills it:
/// `None`).
async fn run_on(
    wx: &RunningSandbox,
    tg: &RunningFakeTelegram,
    db: &std::path::Path,
) -> Option<Output> {
    let mut cmd = bot();
    valid(&mut cmd, &wx.base_url)
        .env("TELOXIDE_TOKEN", FAKE_BOT_TOKEN)
        .env("TELOXIDE_API_URL", tg.api_url.as_str())
        .env("TEAM_CHAT_ID", TEAM.to_string())
        .env("DATABASE_URL", format!("sqlite:{}", db.display()))
        .env("POLL_INTERVAL_SECS", "3600")
        .arg("run")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    match tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await {
        Ok(_) => Some(child.wait_with_output().await.unwrap()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_database_the_migrations_did_not_make_stops_the_start_naming_what_is_wrong() {
    let (wx, tg) = world(1).await;
    let dir = tempfile::tempdir().unwrap();
    for (damage, named) in [
        ("DROP TABLE audit", "no such table: audit"),
        (
            "ALTER TABLE cards DROP COLUMN moved",
            "no such column: moved",
        ),
    ] {
        // Arrange: a database the bot made, then damaged by hand.
        let db = dir
            .path()
            .join(format!("{}.db", named.replace([' ', ':'], "-")));
        let url = format!("sqlite:{}", db.display());
        wxplugin_bot::store::Store::open(&url)
            .await
            .unwrap()
            .close()
            .await;
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(damage).execute(&pool).await.unwrap();
        pool.close().await;

        // Act
        let output = run_on(&wx, &tg, &db).await;

        // Assert
        let output = output.unwrap_or_else(|| panic!("the bot ran on a database after {damage:?}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        // 2: restarting cannot mend it, so the unit must not restart in a loop.
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        let last = stderr.trim().lines().last().unwrap_or_default();
        assert!(last.starts_with("wxplugin-bot: "), "{stderr}");
        assert!(last.contains(named), "{damage}: {stderr}");
        assert!(last.contains("migrations"), "{damage}: {stderr}");
        assert!(
            tg.fake.calls().iter().all(|c| c.method != "sendMessage"),
            "the bot posted on a damaged database"
        );
    }
}

/// Runs the bot with `database_url` and nothing else reachable: the database is opened before
/// anything is asked of Telegram or WeChat.
fn run_with_database(database_url: &str) -> Output {
    valid(&mut bot(), "http://127.0.0.1:9")
        .env("TELOXIDE_API_URL", "http://127.0.0.1:9")
        .env("DATABASE_URL", database_url)
        .arg("run")
        .output()
        .unwrap()
}

#[test]
fn a_database_that_cannot_be_opened_is_named_once_with_its_cause_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let cases = [
        (
            format!("sqlite:{root}/missing/bot.db"),
            format!("the directory {root}/missing does not exist"),
        ),
        (
            format!("sqlite:{root}"),
            format!("{root} is a directory, not a database file"),
        ),
        (
            "mysql://db.example/bot".to_owned(),
            "'mysql' is not a database this bot can use".to_owned(),
        ),
        (
            "postgres://bot:hunter2@127.0.0.1:99999/bot".to_owned(),
            "postgres://bot:***@127.0.0.1:99999/bot is not a PostgreSQL URL this bot can read"
                .to_owned(),
        ),
    ];
    for (url, cause) in cases {
        let output = run_with_database(&url);

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{url}: {stderr}");
        let lines: Vec<&str> = stderr.trim().lines().collect();
        assert_eq!(lines.len(), 1, "{url}: {stderr}");
        // A foreign scheme is refused with the rest of the configuration, before any opening.
        assert!(
            !stderr.contains("hunter2"),
            "a password was shown: {stderr}"
        );
        let prefix = if url.starts_with("sqlite:") {
            format!("wxplugin-bot: DATABASE_URL={url}: ")
        } else {
            "wxplugin-bot: configuration error: DATABASE_URL: ".to_owned()
        };
        assert!(lines[0].starts_with(&prefix), "{stderr}");
        assert!(lines[0].contains(&cause), "{url}: {stderr}");
        assert!(
            !lines[0].contains("(code: 14)"),
            "SQLite's code 14 says nothing an operator can act on: {stderr}"
        );
    }
}

#[test]
fn a_postgresql_server_that_cannot_be_reached_is_named_without_its_password_and_may_be_retried() {
    // Nothing listens on port 1: the server is down or not up yet. A restart may mend that
    // (exit 1, which the unit restarts), unlike a wrong URL (exit 2).
    let url = "postgres://bot:hunter2@127.0.0.1:1/bot";
    let output = run_with_database(url);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.trim().lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with(
            "wxplugin-bot: DATABASE_URL=postgres://bot:***@127.0.0.1:1/bot: cannot reach the server: "
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "a password was shown: {stderr}"
    );
}

#[tokio::test]
async fn check_opens_the_database_and_says_whether_migrations_are_pending() {
    let (wx, tg) = world(1).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let url = format!("sqlite:{}", db.display());

    let fresh = check(&wx, &tg, &[("DATABASE_URL", &url)]).await;
    let created = !db.exists();
    wxplugin_bot::store::Store::open(&url)
        .await
        .unwrap()
        .close()
        .await;
    let migrated = check(&wx, &tg, &[("DATABASE_URL", &url)]).await;
    let missing = format!("sqlite:{}/nowhere/bot.db", dir.path().display());
    let unopenable = check(&wx, &tg, &[("DATABASE_URL", &missing)]).await;

    assert!(fresh.status.success(), "{fresh:?}");
    assert!(created, "check created the database");
    let said = String::from_utf8_lossy(&fresh.stdout);
    assert!(
        said.contains(&format!(
            "database: {} does not exist yet; the bot creates it at start",
            db.display()
        )),
        "{said}"
    );
    let said = String::from_utf8_lossy(&migrated.stdout);
    assert!(
        said.contains(&format!(
            "database: {} opens; no migrations pending",
            db.display()
        )),
        "{said}"
    );
    assert_eq!(unopenable.status.code(), Some(1));
    assert_eq!(
        problems(&unopenable),
        [format!(
            "database: DATABASE_URL={missing}: cannot create {}/nowhere/bot.db: the directory {}/nowhere does not exist",
            dir.path().display(),
            dir.path().display()
        )]
    );
}

/// `RUST_LOG` and `LOG_FORMAT` in `.env` count as if they were in the environment: logging
/// starts after `.env` is read, and with `LOG_FORMAT=json` every line on stderr is JSON, the
/// program's last words included; with no terminal there are no colour codes.
#[test]
fn log_settings_in_dotenv_give_json_on_every_stderr_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = SandboxConfig::default();
    let db = dir.path().join("bot.db");
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "LOG_FORMAT=json\nRUST_LOG=debug\nTELOXIDE_TOKEN=123:abc\nTELOXIDE_API_URL=http://127.0.0.1:9\nWECHAT_APPID={}\nWECHAT_SECRET={}\nWECHAT_API_BASE=http://127.0.0.1:9\nTEAM_CHAT_ID=-1001\nDATABASE_URL=sqlite:{}\n",
            d.appid,
            d.secret,
            db.display()
        ),
    )
    .unwrap();

    let output = bot().current_dir(dir.path()).arg("run").output().unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "Telegram is unreachable: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 2, "{stderr}");
    let mut levels = Vec::new();
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{stderr}"));
        levels.push(value["level"].as_str().unwrap_or_default().to_owned());
    }
    assert!(
        levels.iter().any(|l| l == "DEBUG"),
        "RUST_LOG=debug from .env: {levels:?}"
    );
    let last: serde_json::Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    assert!(
        last["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("wxplugin-bot: ") && m.contains("Telegram")),
        "{last}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes without a terminal"
    );
}

/// Colour codes on a terminal (here a pseudo-terminal from util-linux's `script`), none into a
/// pipe or a file (a journal), and none on the terminal either with `NO_COLOR`.
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let on_a_terminal = |no_color: Option<&str>| {
        let mut cmd = Command::new("/usr/bin/script");
        cmd.env_clear().current_dir(env!("CARGO_TARGET_TMPDIR"));
        valid(&mut cmd, "http://127.0.0.1:9")
            .env("TELOXIDE_API_URL", "http://127.0.0.1:9")
            .env("DATABASE_URL", "sqlite::memory:")
            .env("RUST_LOG", "debug")
            .env("PATH", "/usr/bin:/bin");
        if let Some(value) = no_color {
            cmd.env("NO_COLOR", value);
        }
        let run = format!("{} run", env!("CARGO_BIN_EXE_wxplugin-bot"));
        let output = cmd.args(["-qec", &run, "/dev/null"]).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    let piped = valid(&mut bot(), "http://127.0.0.1:9")
        .env("TELOXIDE_API_URL", "http://127.0.0.1:9")
        .env("DATABASE_URL", "sqlite::memory:")
        .env("RUST_LOG", "debug")
        .arg("run")
        .output()
        .unwrap();
    let coloured = on_a_terminal(None);
    let plain = on_a_terminal(Some("1"));
    let empty_no_color = on_a_terminal(Some(""));

    let piped = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.contains("DEBUG"), "{piped}");
    assert!(
        !piped.contains('\u{1b}'),
        "colour codes into a pipe: {piped:?}"
    );
    assert!(coloured.contains("\u{1b}["), "{coloured:?}");
    assert!(plain.contains("wxplugin-bot: "), "{plain:?}");
    assert!(!plain.contains("\u{1b}["), "{plain:?}");
    assert!(
        empty_no_color.contains("\u{1b}["),
        "an empty NO_COLOR does not count: {empty_no_color:?}"
    );
}

#[test]
fn every_configuration_problem_is_named_at_once_one_line_each() {
    let output = bot()
        .env("TELOXIDE_TOKEN", "123:abc")
        .env("WECHAT_APPID", "wx5a4db0c0ffee0001")
        .env("TEAM_CHAT_ID", "the team")
        .env("POLL_INTERVAL_SECS", "soon")
        .arg("run")
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let named: Vec<&str> = stderr
        .lines()
        .map(|l| {
            l.strip_prefix("wxplugin-bot: configuration error: ")
                .and_then(|rest| rest.split(':').next())
                .unwrap_or(l)
        })
        .collect();
    assert_eq!(
        named,
        ["WECHAT_SECRET", "TEAM_CHAT_ID", "POLL_INTERVAL_SECS"],
        "{stderr}"
    );
}

#[test]
fn demo_with_an_unknown_language_names_the_option_and_the_values() {
    let output = bot().args(["demo", "--lang", "fr"]).output().unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("'fr'") && stderr.contains("--lang"),
        "{stderr}"
    );
    assert!(stderr.contains("[possible values: en, zh]"), "{stderr}");
}

#[test]
fn the_help_of_run_and_check_lists_the_variables_they_read() {
    for command in ["run", "check"] {
        let output = bot().args([command, "--help"]).output().unwrap();

        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{command}: {output:?}");
        for line in wxplugin_bot::config::VARIABLES_HELP.lines().skip(1) {
            let name = line.split_whitespace().next().unwrap_or_default();
            assert!(
                stdout
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{name} "))),
                "{command} --help lacks {name}: {stdout}"
            );
        }
    }
}

#[test]
fn healthcheck_with_an_empty_metrics_addr_behaves_as_unset() {
    let output = bot()
        .env("METRICS_ADDR", "")
        .arg("healthcheck")
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "wxplugin-bot: METRICS_ADDR is not set: the bot serves /healthz only when it is"
    );
}

/// `check` speaks English on every line whatever `BOT_LANG` the chat speaks, and prints no dump
/// of the settings.
#[tokio::test]
async fn check_keeps_each_line_to_english_and_prints_no_settings_dump() {
    let (wx, tg) = world(1).await;

    let output = check(
        &wx,
        &tg,
        &[("BOT_LANG", "zh"), ("WECHAT_SECRET", "wrong-secret")],
    )
    .await;

    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("40125"), "{all}");
    assert!(
        !all.contains("Settings {") && !all.contains("reject_reasons"),
        "{all}"
    );
    let chinese = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
    for line in all.lines().filter(|l| !l.contains("errmsg")) {
        assert!(
            !line.chars().any(chinese),
            "a line in two languages: {line}"
        );
    }
}

/// `demo --lang zh`: the page around the chat speaks Chinese too (before: `lang="en"`, "You
/// are", "Send", the English hint and chat title).
#[tokio::test]
async fn the_demo_page_speaks_the_demos_language() {
    use std::io::BufRead as _;
    let mut child = bot()
        .args([
            "demo",
            "--addr",
            "127.0.0.1:0",
            "--applicants",
            "1",
            "--lang",
            "zh",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();

    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let state: serde_json::Value = reqwest::get(format!("{url}api/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    drop(lines);

    assert!(page.contains("<html lang=\"zh-CN\">"), "{page}");
    for words in [
        "你是",
        "发送",
        "插件团队（演示）",
        "输入命令",
        "这里的一切都是模拟的",
    ] {
        assert!(page.contains(words), "{words} missing: {page}");
    }
    for english in [
        "You are",
        ">Send<",
        "Type a command",
        "Everything here is simulated",
        "{send}",
    ] {
        assert!(!page.contains(english), "{english} on the zh page: {page}");
    }
    assert!(
        page.contains("\"asks_reply\":\"↩ 机器人在等你回复"),
        "{page}"
    );
    assert_eq!(state["chat"]["title"], "插件团队（演示）");
}

/// A directory this user may not write (the unit's DynamicUser meeting a directory made by
/// root): named with the user. Run as root, the bot is started as `nobody` through util-linux's
/// `setpriv`, since root may write anywhere.
#[test]
fn a_database_directory_this_user_may_not_write_is_named_with_the_user() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let hidden = dir.path().join("hidden");
    std::fs::create_dir_all(hidden.join("inner")).unwrap();
    std::fs::set_permissions(&hidden, std::fs::Permissions::from_mode(0o700)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let run_as_another_user = |url: &str| {
        let mut cmd = if root {
            let mut cmd = Command::new("/usr/bin/setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_wxplugin-bot"));
            cmd
        } else {
            Command::new(env!("CARGO_BIN_EXE_wxplugin-bot"))
        };
        cmd.env_clear().current_dir("/");
        valid(&mut cmd, "http://127.0.0.1:9")
            .env("TELOXIDE_API_URL", "http://127.0.0.1:9")
            .env("DATABASE_URL", url)
            .arg("run")
            .output()
            .unwrap()
    };

    let unwritable = run_as_another_user(&format!("sqlite:{}/bot.db", locked.display()));
    let unreachable = run_as_another_user(&format!("sqlite:{}/inner/bot.db", hidden.display()));

    let uid = if root {
        65534
    } else {
        unsafe { libc::getuid() }
    };
    let stderr = String::from_utf8_lossy(&unwritable.stderr);
    assert_eq!(unwritable.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.trim().ends_with(&format!(
            "cannot create {0}/bot.db: this user (uid {uid}) may not write the directory {0}",
            locked.display()
        )),
        "{stderr}"
    );
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    if root {
        assert_eq!(unreachable.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "cannot reach the directory {}/inner as this user (uid 65534)",
                hidden.display()
            )),
            "{stderr}"
        );
    }
}

/// A free loopback port (bound and let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn one_sandbox_serves_several_plugins_and_check_names_each_on_its_lines() {
    let port = free_port();
    let mut sandbox = bot()
        .args([
            "sandbox",
            "--plugins",
            "2",
            "--applicants",
            "3",
            "--addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the sandbox starts");
    let up = async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), up)
        .await
        .expect("the sandbox listens");
    let tg = FakeTelegram::spawn().await.unwrap();
    tg.fake.add_group(TEAM, "Plugin team");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plugins.toml");
    let base = SandboxConfig {
        applicants: 3,
        ..SandboxConfig::default()
    };
    let mut toml = String::new();
    let mut secrets = Vec::new();
    for k in 1..=2 {
        let plugin = Sandbox::plugin_config(&base, k);
        let api_base = match k {
            1 => format!("http://127.0.0.1:{port}"),
            _ => format!("http://127.0.0.1:{port}/plugin/{k}"),
        };
        toml.push_str(&format!(
            "[[plugin]]\nname = \"P{k}\"\nappid = \"{}\"\nsecret_env = \"P{k}_SECRET\"\napi_base = \"{api_base}\"\n\n",
            plugin.appid
        ));
        secrets.push((format!("P{k}_SECRET"), plugin.secret));
    }
    std::fs::write(&file, toml).unwrap();
    let run_check = |secrets: Vec<(String, String)>| {
        let (api, file) = (tg.api_url.to_string(), file.display().to_string());
        tokio::task::spawn_blocking(move || {
            bot()
                .env("TELOXIDE_TOKEN", FAKE_BOT_TOKEN)
                .env("TELOXIDE_API_URL", api)
                .env("TEAM_CHAT_ID", TEAM.to_string())
                .env("PLUGINS_FILE", file)
                .envs(secrets)
                .arg("check")
                .output()
                .unwrap()
        })
    };

    let output = run_check(secrets.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for k in 1..=2 {
        assert!(
            stdout.contains(&format!(
                "wechat (P{k}): token ok (mode stable); first page has 3 applicants, 3 pending"
            )),
            "{stdout}"
        );
    }

    // P2's secret is wrong: the line that says so names P2, and P1 still passes.
    let mut wrong = secrets.clone();
    wrong[1].1 = "not-the-secret".to_owned();
    let output = run_check(wrong).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("wechat (P1): token ok"), "{stdout}");
    let problems = problems(&output);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("wechat (P2): WeChat errcode")),
        "{problems:#?}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("not-the-secret"),
        "the secret stays out"
    );
    let _ = sandbox.kill();
    let _ = sandbox.wait();
}
