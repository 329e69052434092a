//! The binary itself: a bad configuration stops the start with one line naming the variable and
//! exit code 2; `check` reads WeChat (here the sandbox) and says what it found.

use std::process::Command;

use wxplugin_bot::sandbox::{Sandbox, SandboxConfig};

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

#[tokio::test]
async fn check_reads_one_page_and_never_prints_the_secret() {
    let sb = Sandbox::spawn(SandboxConfig {
        applicants: 3,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let base = sb.base_url.clone();

    let output = tokio::task::spawn_blocking(move || {
        valid(&mut bot(), &base).arg("check").output().unwrap()
    })
    .await
    .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("first page has 3 applicants, 3 pending"),
        "{stdout}"
    );
    let secret = SandboxConfig::default().secret;
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
    let token = sb.sandbox.current_token().unwrap();
    assert!(!stdout.contains(&token) && !stderr.contains(&token));
}

#[tokio::test]
async fn check_explains_a_wechat_refusal() {
    let sb = Sandbox::spawn(SandboxConfig::default()).await.unwrap();
    let base = sb.base_url.clone();

    let output = tokio::task::spawn_blocking(move || {
        valid(&mut bot(), &base)
            .env("WECHAT_SECRET", "wrong")
            .arg("check")
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("40125"), "{stderr}");
    assert!(stderr.contains("hint: WECHAT_SECRET"), "{stderr}");
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
