//! `wxplugin-bot demo`: the whole bot in one process with nothing to configure. Two plugins'
//! WeChat sandboxes (Maps, with applicants arriving now and then, and Pay), configured by a
//! `PLUGINS_FILE` as a team would, the fake Bot API and the real bot wired to them,
//! plus a small web page that shows the team chat live as Telegram would and lets a visitor
//! press the buttons and type commands as an approver or as a team member who is not one.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::i18n::Lang;
use crate::lifecycle::app::App;
use crate::store::Store;
use crate::testbed::fake_telegram::{
    ChatEvent, FAKE_BOT_TOKEN, FAKE_BOT_USERNAME, FakeMessage, FakeTelegram, FakeUser,
    RunningFakeTelegram,
};
use crate::testbed::sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use crate::wechat::WeChatClient;

/// The second plugin's AppID in the demo.
pub const SECOND_APPID: &str = "wx5a4db0c0ffee0002";

/// The demo team chat.
pub const TEAM_CHAT: i64 = -1_001_000_000_001;

/// The people on the page: two approvers and one member who is not.
pub const PEOPLE: [(i64, &str, &str, bool); 3] = [
    (101, "Alice", "alice", true),
    (102, "Bob", "bob", true),
    (103, "Eve", "eve", false),
];

/// How the demo runs.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Where the page is served.
    pub addr: SocketAddr,
    /// Pending applicants at start.
    pub applicants: usize,
    /// A new applicant arrives this often (`None`: never).
    pub arrive_every: Option<Duration>,
    /// `BOT_LANG`: `en` or `zh`.
    pub lang: String,
    /// Seed for the generated applicants.
    pub seed: u64,
    /// Pending applicants of the second plugin (Pay) at start.
    pub second_plugin_applicants: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            applicants: 5,
            arrive_every: Some(Duration::from_secs(40)),
            lang: "en".to_owned(),
            seed: 7,
            second_plugin_applicants: 2,
        }
    }
}

/// A running demo; dropping it stops everything.
pub struct RunningDemo {
    /// The page, e.g. `http://127.0.0.1:8080/`.
    pub url: String,
    /// The first plugin's (Maps') WeChat sandbox.
    pub wechat: RunningSandbox,
    /// The second plugin's (Pay's).
    pub second: RunningSandbox,
    /// The fake Bot API.
    pub telegram: RunningFakeTelegram,
    stop: CancellationToken,
    bot: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningDemo {
    /// Stops the bot (decisions in flight finish), the page and both fakes.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        let result = match self.bot.take() {
            Some(bot) => bot.await.context("the bot task panicked")?,
            None => Ok(()),
        };
        self.wechat.stop();
        self.second.stop();
        self.telegram.stop();
        result
    }
}

impl Drop for RunningDemo {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts the sandbox, the fake Bot API, the bot and the page; returns once the page listens.
pub async fn start(config: DemoConfig) -> anyhow::Result<RunningDemo> {
    let sandbox_config = SandboxConfig {
        applicants: config.applicants,
        seed: config.seed,
        arrival_every: config.arrive_every,
        ..SandboxConfig::default()
    };
    let (appid, secret) = (sandbox_config.appid.clone(), sandbox_config.secret.clone());
    let wechat = Sandbox::spawn(sandbox_config)
        .await
        .context("could not start the WeChat sandbox")?;
    let second_config = SandboxConfig {
        appid: SECOND_APPID.to_owned(),
        secret: "sandbox-secret-pay".to_owned(),
        applicants: config.second_plugin_applicants,
        seed: config.seed + 1,
        arrival_every: None,
        ..SandboxConfig::default()
    };
    let second_secret = second_config.secret.clone();
    let second = Sandbox::spawn(second_config)
        .await
        .context("could not start the second plugin's WeChat sandbox")?;
    // The plugins as a team writes them; the AppSecrets stay in variables the file names.
    let plugins_file = std::env::temp_dir().join(format!(
        "wxplugin-bot-demo-{}-{}.toml",
        std::process::id(),
        wechat.addr.port()
    ));
    std::fs::write(
        &plugins_file,
        format!(
            "[[plugin]]\nname = \"Maps\"\nappid = \"{appid}\"\nsecret_env = \"DEMO_MAPS_SECRET\"\napi_base = \"{}\"\n\n\
             [[plugin]]\nname = \"Pay\"\nappid = \"{SECOND_APPID}\"\nsecret_env = \"DEMO_PAY_SECRET\"\napi_base = \"{}\"\n",
            wechat.base_url, second.base_url
        ),
    )
    .with_context(|| format!("cannot write {}", plugins_file.display()))?;
    let telegram = FakeTelegram::spawn()
        .await
        .context("could not start the fake Bot API")?;
    let fake = telegram.fake.clone();
    let lang: Lang = config
        .lang
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--lang: {e}"))?;
    fake.add_group(TEAM_CHAT, lang.page().chat_title);
    for (id, name, username, _) in PEOPLE {
        fake.add_user(FakeUser {
            id,
            first_name: name.to_owned(),
            username: Some(username.to_owned()),
            language_code: Some(config.lang.clone()),
        });
    }
    let approvers: Vec<String> = PEOPLE
        .iter()
        .filter(|p| p.3)
        .map(|p| p.0.to_string())
        .collect();
    fake.set_admins(TEAM_CHAT, &[PEOPLE[0].0]);

    let vars = [
        ("TELOXIDE_TOKEN", FAKE_BOT_TOKEN.to_owned()),
        ("TELOXIDE_API_URL", telegram.api_url.to_string()),
        ("PLUGINS_FILE", plugins_file.display().to_string()),
        ("DEMO_MAPS_SECRET", secret),
        ("DEMO_PAY_SECRET", second_secret),
        ("TEAM_CHAT_ID", TEAM_CHAT.to_string()),
        ("APPROVER_IDS", approvers.join(",")),
        ("POLL_INTERVAL_SECS", "5".to_owned()),
        ("BOT_LANG", config.lang.clone()),
        ("TZ", "Asia/Shanghai".to_owned()),
        ("DATABASE_URL", "sqlite::memory:".to_owned()),
    ];
    let settings = Settings::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .map_err(|e| anyhow::anyhow!("demo settings: {e}"));
    // Read once, at start: the file is not needed after.
    let _ = std::fs::remove_file(&plugins_file);
    let settings = settings?;
    settings.register_secrets();
    let store = Store::in_memory().await?;
    let clients = settings
        .plugins
        .iter()
        .map(|plugin| WeChatClient::new(plugin.wechat.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let bot = crate::bot::telegram_bot(&settings)?;
    let app = App::new(settings, clients, store, bot);

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {} (try --addr)", config.addr))?;
    let bound = listener.local_addr()?;
    let stop = CancellationToken::new();
    let page = router(fake.clone(), Arc::clone(&app), lang);
    let page_stop = stop.clone();
    crate::bot::listen::spawn_http(
        listener,
        page,
        async move { page_stop.cancelled().await },
        "demo page",
        crate::bot::listen::Connections::for_this_process(),
    );
    let bot = tokio::spawn(crate::bot::serve(app, stop.clone()));
    Ok(RunningDemo {
        url: format!("http://{bound}/"),
        wechat,
        second,
        telegram,
        stop,
        bot: Some(bot),
    })
}

/// Runs the demo until `shutdown` fires.
pub async fn run(config: DemoConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let demo = start(config).await?;
    println!("wxplugin-bot demo: open {} in a browser", demo.url);
    println!("  WeChat sandbox   {} (Maps)", demo.wechat.base_url);
    println!("  WeChat sandbox   {} (Pay)", demo.second.base_url);
    println!("  fake Bot API     {}", demo.telegram.api_url);
    println!(
        "  metrics, health  {}metrics  {}healthz",
        demo.url, demo.url
    );
    println!("  Ctrl-C stops it; nothing is kept.");
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = demo.stop.cancelled() => {}
    }
    demo.shutdown().await
}

#[derive(Clone)]
struct Page {
    fake: FakeTelegram,
    /// The page's own words are in the bot's language.
    lang: Lang,
}

fn router(fake: FakeTelegram, app: Arc<App>, lang: Lang) -> Router {
    let mut router = Router::new()
        .route("/", get(index))
        .route("/demo.js", get(script))
        .route("/demo.css", get(style))
        .route("/api/state", get(state))
        .route("/api/events", get(events))
        .route("/api/press", post(press))
        .route("/api/send", post(send))
        .with_state(Page { fake, lang });
    match crate::telemetry::install() {
        Ok(handle) => router = router.merge(crate::bot::telemetry_router(app, handle)),
        Err(e) => tracing::warn!(error = %e, "demo runs without /metrics"),
    }
    router
}

/// The page in the demo's language: its words from [`Lang::page`], the script's as JSON.
async fn index(State(page): State<Page>) -> Response {
    let t = page.lang.page();
    // Our own words; `<` is escaped so no text can end the script element early.
    let json = serde_json::to_string(t)
        .unwrap_or_else(|_| "{}".to_owned())
        .replace('<', "\\u003c");
    let html = crate::i18n::fill(
        include_str!("page.html"),
        &[
            ("html_lang", t.html_lang),
            ("page_title", t.page_title),
            ("chat_title", t.chat_title),
            ("connecting", t.connecting),
            ("you_are", t.you_are),
            ("who_label", t.who_label),
            ("replying_to", t.replying_to),
            ("do_not_reply", t.do_not_reply),
            ("placeholder", t.placeholder),
            ("message_label", t.message_label),
            ("send", t.send),
            ("hint", t.hint),
            ("texts_json", &json),
        ],
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("demo.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("demo.css"),
    )
        .into_response()
}

/// A person on the page.
#[derive(Serialize)]
struct Person {
    id: i64,
    name: &'static str,
    username: &'static str,
    approver: bool,
}

/// A chat message as the page draws it. `html` is the bot's Telegram HTML (the page keeps only
/// Telegram's tags); people's messages are plain text.
#[derive(Serialize)]
struct ShownMessage {
    id: i32,
    from_bot: bool,
    from: String,
    html: Option<String>,
    text: String,
    buttons: Vec<Vec<ShownButton>>,
    force_reply: bool,
    reply_to: Option<i32>,
    edits: u32,
    date: i64,
}

#[derive(Serialize)]
struct ShownButton {
    text: String,
    data: Option<String>,
    url: Option<String>,
}

fn shown(m: &FakeMessage) -> ShownMessage {
    let from = if m.from_bot {
        FAKE_BOT_USERNAME.to_owned()
    } else {
        PEOPLE
            .iter()
            .find(|p| p.0 == m.from_user)
            .map_or_else(|| format!("user {}", m.from_user), |p| p.1.to_owned())
    };
    ShownMessage {
        id: m.message_id,
        from_bot: m.from_bot,
        from,
        html: (m.from_bot && m.parse_mode.as_deref() == Some("HTML")).then(|| m.text.clone()),
        text: m.plain_text.clone(),
        buttons: m
            .buttons
            .iter()
            .map(|row| {
                row.iter()
                    .map(|b| ShownButton {
                        text: b.text.clone(),
                        data: b.callback_data.clone(),
                        url: b.url.clone(),
                    })
                    .collect()
            })
            .collect(),
        force_reply: m.force_reply,
        reply_to: m.reply_to,
        edits: m.edits,
        date: m.date,
    }
}

async fn state(State(page): State<Page>) -> Response {
    let messages: Vec<ShownMessage> = page
        .fake
        .messages(TEAM_CHAT)
        .iter()
        .filter(|m| !m.deleted)
        .map(shown)
        .collect();
    let people: Vec<Person> = PEOPLE
        .iter()
        .map(|&(id, name, username, approver)| Person {
            id,
            name,
            username,
            approver,
        })
        .collect();
    axum::Json(serde_json::json!({
        "chat": { "id": TEAM_CHAT, "title": page.lang.page().chat_title },
        "bot": FAKE_BOT_USERNAME,
        "people": people,
        "messages": messages,
    }))
    .into_response()
}

/// The team chat's events as server-sent events: `message` (new or edited), `deleted`, `answer`,
/// and `reload` when the page fell too far behind.
async fn events(State(page): State<Page>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    use tokio::sync::broadcast::error::RecvError;
    let stream = futures::stream::unfold(page.fake.subscribe(), |mut events| async move {
        loop {
            let sse = match events.recv().await {
                Err(RecvError::Closed) => return None,
                Err(RecvError::Lagged(_)) => Event::default().event("reload").data("{}"),
                Ok(ChatEvent::MessageSent(m) | ChatEvent::MessageEdited(m))
                    if m.chat_id == TEAM_CHAT =>
                {
                    json_event("message", &shown(&m))
                }
                Ok(ChatEvent::MessageDeleted {
                    chat_id,
                    message_id,
                }) if chat_id == TEAM_CHAT => {
                    json_event("deleted", &serde_json::json!({ "id": message_id }))
                }
                Ok(ChatEvent::CallbackAnswered(a)) => json_event(
                    "answer",
                    &serde_json::json!({
                        "query": a.callback_query_id,
                        "text": a.text,
                        "alert": a.show_alert,
                    }),
                ),
                Ok(_) => continue,
            };
            return Some((Ok(sse), events));
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn json_event(name: &str, value: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned()))
}

/// Only the page's people may act: an id from elsewhere is refused.
fn person(id: i64) -> Option<i64> {
    PEOPLE.iter().find(|p| p.0 == id).map(|p| p.0)
}

fn unknown_person() -> Response {
    (StatusCode::BAD_REQUEST, "unknown person").into_response()
}

#[derive(Deserialize)]
struct PressRequest {
    user: i64,
    message_id: i32,
    data: String,
}

async fn press(State(page): State<Page>, axum::Json(req): axum::Json<PressRequest>) -> Response {
    let Some(user) = person(req.user) else {
        return unknown_person();
    };
    if req.data.len() > 64 {
        return (StatusCode::BAD_REQUEST, "callback data too long").into_response();
    }
    let query = page
        .fake
        .press_raw(TEAM_CHAT, req.message_id, user, &req.data);
    axum::Json(serde_json::json!({ "query": query })).into_response()
}

#[derive(Deserialize)]
struct SendRequest {
    user: i64,
    text: String,
    reply_to: Option<i32>,
}

async fn send(State(page): State<Page>, axum::Json(req): axum::Json<SendRequest>) -> Response {
    let Some(user) = person(req.user) else {
        return unknown_person();
    };
    let text = req.text.trim();
    if text.is_empty() || text.chars().count() > 4096 {
        return (StatusCode::BAD_REQUEST, "a message is 1 to 4096 characters").into_response();
    }
    let id = match req.reply_to {
        Some(to) => page.fake.user_replies(TEAM_CHAT, user, to, text),
        None => page.fake.user_sends(TEAM_CHAT, user, text),
    };
    axum::Json(serde_json::json!({ "id": id })).into_response()
}
