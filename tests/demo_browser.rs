//! The demo page in real headless Chromium, driven over WebDriver (chromedriver + fantoccini):
//! cards arrive, ✅ approves in the sandbox and the card changes, /pending is answered, a
//! non-approver's press is refused, and a typed "other" reason rejects. The screenshot in the
//! README comes from this test (`UPDATE_SCREENSHOT=1` writes it to docs/demo.png).
//!
//! Needs Debian's `chromium` and `chromium-driver`; `.ci/run` installs them, and so does this
//! test when it runs as root with apt-get at hand.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use wxplugin_bot::testbed::demo::{DemoConfig, RunningDemo};

const WAIT: Duration = Duration::from_secs(30);

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// chromedriver and chromium, installing Debian's packages when they are missing and we can.
fn browser() -> (PathBuf, PathBuf) {
    if let (Some(driver), Some(chromium)) = (which("chromedriver"), which("chromium")) {
        return (driver, chromium);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root && which("apt-get").is_some() {
        let install = |update: bool| {
            if update {
                let _ = Command::new("apt-get").args(["update", "-q"]).status();
            }
            Command::new("apt-get")
                .args(["install", "-y", "-q", "chromium", "chromium-driver"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = install(false) || install(true);
    }
    match (which("chromedriver"), which("chromium")) {
        (Some(driver), Some(chromium)) => (driver, chromium),
        _ => panic!(
            "the browser test needs Chromium and ChromeDriver: \
             `sudo apt-get install chromium chromium-driver` (Debian), or run .ci/run"
        ),
    }
}

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(path: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if reqwest::get(format!("{}/status", driver.url))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on {}", driver.url);
}

async fn open_browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1100,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// Waits until `check` finds what it looks for.
async fn until<T, F, Fut>(what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn cards(c: &Client) -> Vec<String> {
    let Ok(found) = c.find_all(Locator::Css(".msg.card")).await else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for el in found {
        if let Ok(Some(id)) = el.attr("data-id").await {
            ids.push(id);
        }
    }
    ids
}

async fn click_button(c: &Client, card: &str, prefix: &str) {
    let xpath =
        format!("//div[@id='m{card}']//button[starts-with(normalize-space(.), '{prefix}')]");
    let button = until(&format!("{prefix} on card {card}"), || async {
        c.find(Locator::XPath(&xpath)).await.ok()
    })
    .await;
    button.click().await.expect("click");
}

async fn type_and_send(c: &Client, text: &str) {
    let input = c.find(Locator::Id("text")).await.expect("the message box");
    input.send_keys(text).await.expect("typing");
    c.find(Locator::Id("send"))
        .await
        .expect("send button")
        .click()
        .await
        .expect("send");
}

async fn card_shows(c: &Client, card: &str, needle: &str) -> String {
    until(&format!("card {card} to show {needle:?}"), || async {
        text_of(c, &format!("#m{card}"))
            .await
            .filter(|t| t.contains(needle))
    })
    .await
}

/// Acts as the person with this id from now on.
async fn choose(c: &Client, person: &str) {
    c.find(Locator::Id("who"))
        .await
        .expect("person picker")
        .select_by_value(person)
        .await
        .expect("choose a person");
}

fn pending(demo: &RunningDemo) -> usize {
    demo.wechat
        .sandbox
        .applicants()
        .iter()
        .filter(|a| a.status == 1)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_decides_in_the_demo_page_in_real_chromium() {
    let (driver_path, chromium) = browser();
    let demo = wxplugin_bot::testbed::demo::start(DemoConfig {
        addr: "127.0.0.1:0".parse().expect("address"),
        applicants: 3,
        arrive_every: None,
        // The second plugin is served beside, with nobody waiting: the cards are Maps'.
        second_plugin_applicants: 0,
        ..DemoConfig::default()
    })
    .await
    .expect("the demo starts");
    let driver = start_driver(&driver_path).await;
    let profile = tempfile::tempdir().expect("a profile dir");
    let c = open_browser(&driver, &chromium, profile.path()).await;
    c.goto(&demo.url).await.expect("the page loads");

    // The cards arrive, live.
    let ids = until("three cards", || async {
        let ids = cards(&c).await;
        (ids.len() == 3).then_some(ids)
    })
    .await;
    until("the live connection", || async {
        text_of(&c, "#live").await.filter(|t| t == "live")
    })
    .await;
    let first = text_of(&c, &format!("#m{}", ids[0])).await.expect("card");
    assert!(first.contains("⏳ Pending"), "{first}");

    // ✅ as Alice (the default person): approved in WeChat, and the card says so.
    click_button(&c, &ids[0], "✅").await;
    let approved = card_shows(&c, &ids[0], "Approved by @alice").await;
    assert!(!approved.contains("❌ Reject"), "{approved}");
    assert_eq!(pending(&demo), 2);

    // /pending is answered in the chat.
    type_and_send(&c, "/pending").await;
    let answer = until("the answer to /pending", || async {
        let found = c.find_all(Locator::Css(".msg.bot")).await.ok()?;
        for el in found {
            if let Ok(t) = el.text().await
                && t.contains("Pending applications (2)")
            {
                return Some(t);
            }
        }
        None
    })
    .await;
    assert!(answer.contains("Pending applications (2)"));

    // Eve is not an approver: her press is refused with an alert and nothing changes.
    choose(&c, "103").await;
    click_button(&c, &ids[1], "✅").await;
    let alert = until("the not-an-approver alert", || async {
        let toast = c.find(Locator::Css("#toast.alert")).await.ok()?;
        toast.is_displayed().await.ok()?.then_some(())?;
        toast.text().await.ok()
    })
    .await;
    assert!(alert.contains("Only approvers"), "{alert}");
    assert_eq!(pending(&demo), 2);
    let still = text_of(&c, &format!("#m{}", ids[1])).await.expect("card");
    assert!(still.contains("⏳ Pending"), "{still}");

    // Bob rejects with a reason of his own, typed in answer to the bot's prompt.
    choose(&c, "102").await;
    click_button(&c, &ids[1], "❌").await;
    click_button(&c, &ids[1], "✍️").await;
    until("the reply bar", || async {
        let bar = c.find(Locator::Id("replying")).await.ok()?;
        bar.is_displayed().await.ok()?.then_some(())
    })
    .await;
    type_and_send(&c, "Needs a <privacy> policy first").await;
    let rejected = card_shows(&c, &ids[1], "Rejected by @bob").await;
    assert!(
        rejected.contains("Needs a <privacy> policy first"),
        "{rejected}"
    );
    assert_eq!(pending(&demo), 1);

    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(png.len() > 20_000, "suspiciously small screenshot");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join("demo.png"), &png).expect("screenshot written");
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).expect("docs dir");
        std::fs::write(docs.join("demo.png"), &png).expect("README screenshot written");
    }
    c.close().await.expect("browser closes");
    demo.shutdown().await.expect("the demo stops cleanly");
}
