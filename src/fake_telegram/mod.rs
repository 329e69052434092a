//! A fake Telegram Bot API server. The end-to-end tests run the real bot against it (teloxide's
//! `set_api_url`), and the offline demo shows its chats. It keeps chats and messages, hands out
//! updates for what people do, and is as strict as Telegram where bots go wrong: HTML parsing,
//! message length, callback data size, "message is not modified", edits of deleted messages,
//! rate limits. Faults (429, 5xx, delays, API errors) can be injected per method.

mod html;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

pub use html::to_plain as html_to_plain;

/// The token the fake accepts.
pub const FAKE_BOT_TOKEN: &str = "123456:FAKE-telegram-token";
/// The bot's own user id.
pub const FAKE_BOT_ID: i64 = 123_456;
/// The bot's username.
pub const FAKE_BOT_USERNAME: &str = "wxplugin_test_bot";

/// A person in the fake world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeUser {
    /// Telegram user id.
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Username without `@`.
    pub username: Option<String>,
    /// Language.
    pub language_code: Option<String>,
}

/// An inline keyboard button.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeButton {
    /// Label.
    pub text: String,
    /// Callback data.
    pub callback_data: Option<String>,
    /// URL.
    pub url: Option<String>,
}

/// A message as the chat holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeMessage {
    /// Chat.
    pub chat_id: i64,
    /// Id within the chat.
    pub message_id: i32,
    /// Sent by the bot.
    pub from_bot: bool,
    /// Sender's user id.
    pub from_user: i64,
    /// As sent: HTML source under parse mode HTML.
    pub text: String,
    /// What a person sees.
    pub plain_text: String,
    /// The parse mode it was sent with.
    pub parse_mode: Option<String>,
    /// Inline keyboard rows.
    pub buttons: Vec<Vec<FakeButton>>,
    /// Sent with a ForceReply markup.
    pub force_reply: bool,
    /// The message it replies to.
    pub reply_to: Option<i32>,
    /// Times edited.
    pub edits: u32,
    /// Deleted (by a person or the bot).
    pub deleted: bool,
    /// Unix seconds.
    pub date: i64,
}

/// A Bot API call as received.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    /// Method name.
    pub method: String,
    /// Parameters.
    pub params: Value,
    /// `None` when answered ok, else the error code.
    pub error_code: Option<u16>,
}

/// An answer to a callback query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackAnswer {
    /// The query.
    pub callback_query_id: String,
    /// Text shown.
    pub text: Option<String>,
    /// As an alert (a dialog) rather than a toast.
    pub show_alert: bool,
}

/// What happens in chats, for a live view.
#[derive(Clone, Debug)]
pub enum ChatEvent {
    /// A message appeared.
    MessageSent(FakeMessage),
    /// A message changed.
    MessageEdited(FakeMessage),
    /// A message was deleted.
    MessageDeleted {
        /// Chat.
        chat_id: i64,
        /// Message.
        message_id: i32,
    },
    /// A press was answered.
    CallbackAnswered(CallbackAnswer),
}

/// An injected fault.
#[derive(Clone, Debug)]
pub enum TgFault {
    /// 429 with this retry_after.
    RetryAfter(u32),
    /// This HTTP status (5xx) with an error body.
    Http(u16),
    /// Answer normally after this long.
    Delay(Duration),
    /// Carry out the call at once, then hold the answer this long (the call took effect but its
    /// answer is late: the window between a send and the bot recording it).
    DelayAnswer(Duration),
    /// This error code and description.
    Api {
        /// HTTP status / error_code.
        code: u16,
        /// Telegram's description.
        description: String,
    },
}

/// A fault for the next calls of a method.
#[derive(Clone, Debug)]
pub struct TgFaultRule {
    /// Method name, or `None` for every method but getUpdates.
    pub method: Option<String>,
    /// What happens.
    pub fault: TgFault,
    /// For how many calls.
    pub times: u32,
}

struct Chat {
    title: String,
    private: bool,
    admins: Vec<i64>,
    kicked: bool,
    next_message_id: i32,
    messages: Vec<FakeMessage>,
    sends: VecDeque<Instant>,
}

#[derive(Default)]
struct World {
    chats: HashMap<i64, Chat>,
    users: HashMap<i64, FakeUser>,
    updates: VecDeque<(i64, Value)>,
    next_update_id: i64,
    calls: Vec<RecordedCall>,
    queries: HashMap<String, bool>,
    next_query: u64,
    answers: Vec<CallbackAnswer>,
    commands: Vec<(String, String)>,
    faults: Vec<TgFaultRule>,
    group_rate_limit: Option<u32>,
    webhook: Option<Webhook>,
    deliveries: Vec<Delivery>,
    membership: Membership,
}

/// Where updates go while a webhook is set.
#[derive(Clone, Debug)]
struct Webhook {
    url: String,
    secret: Option<String>,
}

/// One attempt to deliver an update to the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The update.
    pub update_id: i64,
    /// The webhook's HTTP status, or `None` when it could not be reached.
    pub status: Option<u16>,
}

struct Inner {
    world: Mutex<World>,
    changed: Notify,
    events: broadcast::Sender<ChatEvent>,
    deliverer: std::sync::Once,
}

/// The fake Bot API. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeTelegram {
    inner: Arc<Inner>,
}

impl Default for FakeTelegram {
    fn default() -> Self {
        Self::new()
    }
}

/// A fake serving on a port; stops when dropped.
pub struct RunningFakeTelegram {
    /// The fake, for driving and inspection.
    pub fake: FakeTelegram,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The URL to give `Bot::set_api_url`.
    pub api_url: reqwest::Url,
    stop: CancellationToken,
}

impl RunningFakeTelegram {
    /// Stops serving.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for RunningFakeTelegram {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A Bot API error: error_code, description, retry_after.
type ApiError = (u16, String, Option<u32>);
type ApiResult = Result<Value, ApiError>;

fn bad(description: impl Into<String>) -> ApiError {
    (400, format!("Bad Request: {}", description.into()), None)
}

const NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";

impl FakeTelegram {
    /// An empty world with the bot in it.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                world: Mutex::new(World {
                    next_update_id: 1,
                    ..World::default()
                }),
                changed: Notify::new(),
                events,
                deliverer: std::sync::Once::new(),
            }),
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.inner
            .world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn changed(&self, event: Option<ChatEvent>) {
        if let Some(event) = event {
            let _ = self.inner.events.send(event);
        }
        self.inner.changed.notify_waiters();
    }

    /// The routes: `POST /bot<token>/<method>`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/{bot}/{method}", post(api).get(api_get))
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Binds 127.0.0.1 on a free port and serves in a task.
    pub async fn spawn() -> std::io::Result<RunningFakeTelegram> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fake = Self::new();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(
            fake.clone()
                .serve(listener, async move { stopped.cancelled().await }),
        );
        let api_url =
            reqwest::Url::parse(&format!("http://{addr}/")).map_err(std::io::Error::other)?;
        Ok(RunningFakeTelegram {
            fake,
            addr,
            api_url,
            stop,
        })
    }

    // ---- the world ----

    /// Adds a supergroup.
    pub fn add_group(&self, chat_id: i64, title: &str) {
        self.world().chats.insert(chat_id, Chat::new(title, false));
    }

    /// Adds a private chat with a user.
    pub fn add_private_chat(&self, user_id: i64) {
        self.world().chats.insert(user_id, Chat::new("", true));
    }

    /// Adds a person.
    pub fn add_user(&self, user: FakeUser) {
        self.world().users.insert(user.id, user);
    }

    /// Sets a group's administrators (the first is the creator).
    pub fn set_admins(&self, chat_id: i64, user_ids: &[i64]) {
        if let Some(chat) = self.world().chats.get_mut(&chat_id) {
            chat.admins = user_ids.to_vec();
        }
    }

    /// Removes the bot from a chat: every later call about it is refused.
    pub fn kick_bot(&self, chat_id: i64) {
        if let Some(chat) = self.world().chats.get_mut(&chat_id) {
            chat.kicked = true;
        }
        self.changed(None);
    }

    /// Adds the bot back to a chat it was removed from.
    pub fn readd_bot(&self, chat_id: i64) {
        if let Some(chat) = self.world().chats.get_mut(&chat_id) {
            chat.kicked = false;
        }
        self.changed(None);
    }

    /// A person deletes a message.
    pub fn delete_message_as_user(&self, chat_id: i64, message_id: i32) {
        let deleted = {
            let mut world = self.world();
            world
                .chats
                .get_mut(&chat_id)
                .and_then(|c| c.messages.iter_mut().find(|m| m.message_id == message_id))
                .map(|m| m.deleted = true)
                .is_some()
        };
        if deleted {
            self.changed(Some(ChatEvent::MessageDeleted {
                chat_id,
                message_id,
            }));
        }
    }

    // ---- what people do ----

    /// A person sends `text`; returns the message id.
    pub fn user_sends(&self, chat_id: i64, from: i64, text: &str) -> i32 {
        self.user_message(chat_id, from, text, None)
    }

    /// A person replies to a message; returns the new message's id.
    pub fn user_replies(&self, chat_id: i64, from: i64, reply_to: i32, text: &str) -> i32 {
        self.user_message(chat_id, from, text, Some(reply_to))
    }

    fn user_message(&self, chat_id: i64, from: i64, text: &str, reply_to: Option<i32>) -> i32 {
        let (message, id) = {
            let mut world = self.world();
            let date = now();
            let Some(chat) = world.chats.get_mut(&chat_id) else {
                return 0;
            };
            let message = FakeMessage {
                chat_id,
                message_id: chat.next_id(),
                from_bot: false,
                from_user: from,
                text: text.to_owned(),
                plain_text: text.to_owned(),
                parse_mode: None,
                buttons: Vec::new(),
                force_reply: false,
                reply_to,
                edits: 0,
                deleted: false,
                date,
            };
            chat.messages.push(message.clone());
            let json = world.message_json(&message, true);
            world.push_update("message", json);
            (message.clone(), message.message_id)
        };
        self.changed(Some(ChatEvent::MessageSent(message)));
        id
    }

    /// A person presses the button whose label starts with `prefix`; returns the callback query
    /// id, or `None` when the message has no such button.
    pub fn user_presses(
        &self,
        chat_id: i64,
        message_id: i32,
        from: i64,
        prefix: &str,
    ) -> Option<String> {
        let data = {
            let world = self.world();
            let message = world
                .chats
                .get(&chat_id)?
                .messages
                .iter()
                .find(|m| m.message_id == message_id)?;
            message
                .buttons
                .iter()
                .flatten()
                .find(|b| b.text.starts_with(prefix))?
                .callback_data
                .clone()?
        };
        Some(self.press_raw(chat_id, message_id, from, &data))
    }

    /// A press with arbitrary (possibly forged) callback data.
    pub fn press_raw(&self, chat_id: i64, message_id: i32, from: i64, data: &str) -> String {
        let id = {
            let mut world = self.world();
            world.next_query += 1;
            let id = format!("cq{}", world.next_query);
            world.queries.insert(id.clone(), false);
            let message = world
                .chats
                .get(&chat_id)
                .and_then(|c| c.messages.iter().find(|m| m.message_id == message_id))
                .cloned();
            let message_json = match message {
                Some(m) => world.message_json(&m, true),
                None => {
                    json!({ "chat": world.chat_json(chat_id), "message_id": message_id, "date": 0 })
                }
            };
            let query = json!({
                "id": id,
                "from": world.user_json(from),
                "message": message_json,
                "chat_instance": format!("ci{chat_id}"),
                "data": data,
            });
            world.push_update("callback_query", query);
            id
        };
        self.changed(None);
        id
    }

    // ---- observation ----

    /// Every message in a chat, in order.
    pub fn messages(&self, chat_id: i64) -> Vec<FakeMessage> {
        self.world()
            .chats
            .get(&chat_id)
            .map(|c| c.messages.clone())
            .unwrap_or_default()
    }

    /// The bot's live messages in a chat.
    pub fn bot_messages(&self, chat_id: i64) -> Vec<FakeMessage> {
        self.messages(chat_id)
            .into_iter()
            .filter(|m| m.from_bot && !m.deleted)
            .collect()
    }

    /// One message.
    pub fn message(&self, chat_id: i64, message_id: i32) -> Option<FakeMessage> {
        self.messages(chat_id)
            .into_iter()
            .find(|m| m.message_id == message_id)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.world().calls.clone()
    }

    /// Calls of one method so far.
    pub fn call_count(&self, method: &str) -> usize {
        self.world()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .count()
    }

    /// Answers to presses so far.
    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.world().answers.clone()
    }

    /// The registered command list.
    pub fn my_commands(&self) -> Vec<(String, String)> {
        self.world().commands.clone()
    }

    /// Waits until `cond` holds (re-checked on every change), up to `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        cond: impl Fn(&FakeTelegram) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cond(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return cond(self);
            }
        }
    }

    /// Live events of every chat.
    pub fn subscribe(&self) -> broadcast::Receiver<ChatEvent> {
        self.inner.events.subscribe()
    }

    // ---- faults ----

    /// Queues a fault.
    pub fn inject(&self, rule: TgFaultRule) {
        if rule.times > 0 {
            self.world().faults.push(rule);
        }
    }

    /// Drops queued faults.
    pub fn clear_faults(&self) {
        self.world().faults.clear();
    }

    /// Limits sendMessage per group per minute, like Telegram (about 20).
    pub fn set_group_rate_limit(&self, per_minute: Option<u32>) {
        self.world().group_rate_limit = per_minute;
    }

    // ---- the API ----

    async fn handle(&self, method: &str, params: Value) -> ApiResult {
        let fault = self.world().take_fault(method);
        let mut hold_answer = None;
        let injected: Option<ApiError> = match fault {
            Some(TgFault::Delay(d)) => {
                tokio::time::sleep(d).await;
                None
            }
            Some(TgFault::DelayAnswer(d)) => {
                hold_answer = Some(d);
                None
            }
            Some(TgFault::RetryAfter(n)) => {
                Some((429, format!("Too Many Requests: retry after {n}"), Some(n)))
            }
            Some(TgFault::Http(code)) => Some((code, "Internal Server Error".to_owned(), None)),
            Some(TgFault::Api { code, description }) => Some((code, description, None)),
            None => None,
        };
        if let Some(error) = injected {
            // Faulted calls are recorded too: tests count what the bot tried.
            self.world().calls.push(RecordedCall {
                method: method.to_owned(),
                params,
                error_code: Some(error.0),
            });
            return Err(error);
        }
        if method == "getUpdates" {
            return self.get_updates(&params).await;
        }
        let (result, event) = {
            let mut world = self.world();
            world.dispatch(method, &params)
        };
        if method == "setWebhook" && result.is_ok() {
            self.start_delivering();
        }
        self.changed(event);
        if let Some(hold) = hold_answer {
            tokio::time::sleep(hold).await;
        }
        result
    }

    /// Like Telegram: while a webhook is set, updates are POSTed to it in order, each retried
    /// until the webhook answers 2xx.
    fn start_delivering(&self) {
        let fake = self.clone();
        self.inner.deliverer.call_once(move || {
            let weak = Arc::downgrade(&fake.inner);
            drop(fake);
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    let fake = FakeTelegram { inner };
                    let next = {
                        let world = fake.world();
                        world
                            .webhook
                            .clone()
                            .and_then(|hook| world.updates.front().cloned().map(|u| (hook, u)))
                    };
                    let Some((hook, (update_id, update))) = next else {
                        // Holds the fake at most this long after everyone else let go.
                        let notified = fake.inner.changed.notified();
                        let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
                        continue;
                    };
                    let mut request = http
                        .post(&hook.url)
                        .timeout(Duration::from_secs(10))
                        .json(&update);
                    if let Some(secret) = &hook.secret {
                        request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
                    }
                    let status = request.send().await.ok().map(|r| r.status().as_u16());
                    let delivered = status.is_some_and(|s| (200..300).contains(&s));
                    {
                        let mut world = fake.world();
                        world.deliveries.push(Delivery { update_id, status });
                        if delivered
                            && world
                                .updates
                                .front()
                                .is_some_and(|(id, _)| *id == update_id)
                        {
                            world.updates.pop_front();
                        }
                    }
                    fake.changed(None);
                    if !delivered {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            });
        });
    }

    /// Webhook deliveries so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.world().deliveries.clone()
    }

    /// The webhook URL and secret the bot set, if any.
    pub fn webhook(&self) -> Option<(String, Option<String>)> {
        self.world()
            .webhook
            .as_ref()
            .map(|w| (w.url.clone(), w.secret.clone()))
    }

    async fn get_updates(&self, params: &Value) -> ApiResult {
        if self.world().webhook.is_some() {
            return Err((
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first".to_owned(),
                None,
            ));
        }
        let offset = params.get("offset").and_then(Value::as_i64).unwrap_or(0);
        let limit = params
            .get("limit")
            .and_then(Value::as_u64)
            .unwrap_or(100)
            .clamp(1, 100) as usize;
        let timeout = params
            .get("timeout")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(50);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut world = self.world();
                world.updates.retain(|(id, _)| *id >= offset);
                let batch: Vec<Value> = world
                    .updates
                    .iter()
                    .take(limit)
                    .map(|(_, u)| u.clone())
                    .collect();
                if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
                    return Ok(Value::Array(batch));
                }
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Chat {
    fn new(title: &str, private: bool) -> Self {
        Self {
            title: title.to_owned(),
            private,
            admins: Vec::new(),
            kicked: false,
            next_message_id: 1,
            messages: Vec::new(),
            sends: VecDeque::new(),
        }
    }

    fn next_id(&mut self) -> i32 {
        let id = self.next_message_id;
        self.next_message_id += 1;
        id
    }
}

/// Parses `reply_markup` into buttons and the ForceReply flag, enforcing the 64-byte data limit.
fn parse_markup(markup: Option<&Value>) -> Result<(Vec<Vec<FakeButton>>, bool), ApiError> {
    let Some(markup) = markup else {
        return Ok((Vec::new(), false));
    };
    let markup = match markup {
        Value::String(s) => serde_json::from_str(s)
            .map_err(|_| bad("can't parse reply keyboard markup JSON object"))?,
        other => other.clone(),
    };
    if markup.get("force_reply").and_then(Value::as_bool) == Some(true) {
        return Ok((Vec::new(), true));
    }
    let rows = markup
        .get("inline_keyboard")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut buttons = Vec::new();
        for b in row.as_array().cloned().unwrap_or_default() {
            let text = b
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if text.is_empty() {
                return Err(bad("text buttons are unallowed in the inline keyboard"));
            }
            let callback_data = b
                .get("callback_data")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if callback_data
                .as_ref()
                .is_some_and(|d| d.is_empty() || d.len() > 64)
            {
                return Err(bad("BUTTON_DATA_INVALID"));
            }
            let url = b.get("url").and_then(Value::as_str).map(str::to_owned);
            buttons.push(FakeButton {
                text,
                callback_data,
                url,
            });
        }
        out.push(buttons);
    }
    Ok((out, false))
}

fn chat_id_of(params: &Value) -> Option<i64> {
    match params.get("chat_id")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn text_of(params: &Value) -> Result<(String, String, Option<String>), ApiError> {
    let text = params
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let parse_mode = params
        .get("parse_mode")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let plain = match parse_mode.as_deref() {
        Some(mode) if mode.eq_ignore_ascii_case("html") => {
            html::to_plain(&text).map_err(|e| bad(format!("can't parse entities: {e}")))?
        }
        _ => text.clone(),
    };
    if plain.trim().is_empty() {
        return Err(bad("message text is empty"));
    }
    if plain.chars().count() > 4096 {
        return Err(bad("message is too long"));
    }
    Ok((text, plain, parse_mode))
}

impl World {
    fn take_fault(&mut self, method: &str) -> Option<TgFault> {
        let index = self.faults.iter().position(|r| match &r.method {
            Some(m) => m == method,
            None => method != "getUpdates",
        })?;
        let rule = &mut self.faults[index];
        let fault = rule.fault.clone();
        rule.times -= 1;
        if rule.times == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }

    fn push_update(&mut self, kind: &str, payload: Value) {
        let id = self.next_update_id;
        self.next_update_id += 1;
        self.updates
            .push_back((id, json!({ "update_id": id, kind: payload })));
    }

    fn user_json(&self, id: i64) -> Value {
        if id == FAKE_BOT_ID {
            return json!({ "id": FAKE_BOT_ID, "is_bot": true, "first_name": "WxPlugin Bot", "username": FAKE_BOT_USERNAME });
        }
        match self.users.get(&id) {
            Some(u) => {
                let mut v = json!({ "id": u.id, "is_bot": false, "first_name": u.first_name });
                if let Some(name) = &u.username {
                    v["username"] = json!(name);
                }
                if let Some(lang) = &u.language_code {
                    v["language_code"] = json!(lang);
                }
                v
            }
            None => json!({ "id": id, "is_bot": false, "first_name": format!("User {id}") }),
        }
    }

    fn chat_json(&self, chat_id: i64) -> Value {
        match self.chats.get(&chat_id) {
            Some(c) if c.private => {
                let name = self
                    .users
                    .get(&chat_id)
                    .map(|u| u.first_name.clone())
                    .unwrap_or_default();
                json!({ "id": chat_id, "type": "private", "first_name": name })
            }
            Some(c) => json!({ "id": chat_id, "type": "supergroup", "title": c.title }),
            None => json!({ "id": chat_id, "type": "supergroup", "title": "" }),
        }
    }

    fn message_json(&self, m: &FakeMessage, with_reply: bool) -> Value {
        let mut v = json!({
            "message_id": m.message_id,
            "date": m.date,
            "chat": self.chat_json(m.chat_id),
            "from": self.user_json(if m.from_bot { FAKE_BOT_ID } else { m.from_user }),
            "text": m.plain_text,
        });
        if !m.from_bot && m.text.starts_with('/') {
            let length: usize = m
                .text
                .split_whitespace()
                .next()
                .map_or(0, |w| w.encode_utf16().count());
            v["entities"] = json!([{ "type": "bot_command", "offset": 0, "length": length }]);
        }
        if m.edits > 0 {
            v["edit_date"] = json!(m.date);
        }
        if !m.buttons.is_empty() {
            let rows: Vec<Vec<Value>> = m
                .buttons
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|b| match (&b.callback_data, &b.url) {
                            (Some(d), _) => json!({ "text": b.text, "callback_data": d }),
                            (None, Some(u)) => json!({ "text": b.text, "url": u }),
                            (None, None) => json!({ "text": b.text, "callback_data": "" }),
                        })
                        .collect()
                })
                .collect();
            v["reply_markup"] = json!({ "inline_keyboard": rows });
        }
        if with_reply
            && let Some(reply_to) = m.reply_to
            && let Some(original) = self
                .chats
                .get(&m.chat_id)
                .and_then(|c| c.messages.iter().find(|o| o.message_id == reply_to))
        {
            v["reply_to_message"] = self.message_json(original, false);
        }
        v
    }

    /// The chat a call is about, refusing unknown chats and ones the bot was removed from.
    fn chat_mut(&mut self, params: &Value) -> Result<(i64, &mut Chat), ApiError> {
        let chat_id = chat_id_of(params).ok_or_else(|| bad("chat not found"))?;
        let chat = self
            .chats
            .get_mut(&chat_id)
            .ok_or_else(|| bad("chat not found"))?;
        if chat.kicked {
            return Err((
                403,
                "Forbidden: bot was kicked from the supergroup chat".to_owned(),
                None,
            ));
        }
        Ok((chat_id, chat))
    }

    fn dispatch(&mut self, method: &str, params: &Value) -> (ApiResult, Option<ChatEvent>) {
        let mut event = None;
        let result = self.call(method, params, &mut event);
        self.calls.push(RecordedCall {
            method: method.to_owned(),
            params: params.clone(),
            error_code: result.as_ref().err().map(|(code, _, _)| *code),
        });
        (result, event)
    }

    fn call(&mut self, method: &str, params: &Value, event: &mut Option<ChatEvent>) -> ApiResult {
        match method {
            "getMe" => Ok(json!({
                "id": FAKE_BOT_ID, "is_bot": true, "first_name": "WxPlugin Bot", "username": FAKE_BOT_USERNAME,
                "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
                "can_connect_to_business": false, "has_main_web_app": false,
            })),
            // Like Telegram, setWebhook with an empty URL removes the webhook.
            "setWebhook" | "deleteWebhook" => {
                let url = match method {
                    "setWebhook" => params.get("url").and_then(Value::as_str),
                    _ => None,
                }
                .unwrap_or_default();
                self.webhook = if url.is_empty() {
                    None
                } else {
                    reqwest::Url::parse(url).map_err(|_| bad("bad webhook: invalid URL"))?;
                    let secret = params.get("secret_token").and_then(Value::as_str);
                    Some(Webhook {
                        url: url.to_owned(),
                        secret: secret.map(str::to_owned),
                    })
                };
                if params.get("drop_pending_updates") == Some(&json!(true)) {
                    self.updates.clear();
                }
                Ok(json!(true))
            }
            "close" | "logOut" => Ok(json!(true)),
            "getWebhookInfo" => Ok(json!({
                "url": self.webhook.as_ref().map(|w| w.url.clone()).unwrap_or_default(),
                "has_custom_certificate": false,
                "pending_update_count": self.updates.len(),
            })),
            "setMyCommands" => {
                let commands = params
                    .get("commands")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                self.commands = commands
                    .iter()
                    .map(|c| {
                        let get = |k: &str| {
                            c.get(k)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        (get("command"), get("description"))
                    })
                    .collect();
                Ok(json!(true))
            }
            "getMyCommands" => Ok(json!(
                self.commands
                    .iter()
                    .map(|(c, d)| json!({ "command": c, "description": d }))
                    .collect::<Vec<_>>()
            )),
            "deleteMyCommands" => {
                self.commands.clear();
                Ok(json!(true))
            }
            "getChat" => self.chat_full_info(params),
            "getChatAdministrators" => {
                let (_, chat) = self.chat_mut(params)?;
                let admins = chat.admins.clone();
                let mut out: Vec<Value> = admins
                    .iter()
                    .enumerate()
                    .map(|(i, id)| admin_json(self.user_json(*id), i == 0))
                    .collect();
                out.push(admin_json(self.user_json(FAKE_BOT_ID), false));
                Ok(json!(out))
            }
            "getChatMember" => {
                let (_, chat) = self.chat_mut(params)?;
                let user_id = params
                    .get("user_id")
                    .and_then(Value::as_i64)
                    .unwrap_or_default();
                let position = chat.admins.iter().position(|a| *a == user_id);
                Ok(match position {
                    Some(i) => admin_json(self.user_json(user_id), i == 0),
                    None => json!({ "status": "member", "user": self.user_json(user_id) }),
                })
            }
            "sendMessage" => self.send_message(params, event),
            "editMessageText" | "editMessageReplyMarkup" => self.edit(method, params, event),
            "deleteMessage" => {
                let message_id = params
                    .get("message_id")
                    .and_then(Value::as_i64)
                    .unwrap_or_default() as i32;
                let (chat_id, chat) = self.chat_mut(params)?;
                let message = chat
                    .messages
                    .iter_mut()
                    .find(|m| m.message_id == message_id && !m.deleted)
                    .ok_or_else(|| bad("message to delete not found"))?;
                message.deleted = true;
                *event = Some(ChatEvent::MessageDeleted {
                    chat_id,
                    message_id,
                });
                Ok(json!(true))
            }
            "answerCallbackQuery" => {
                let id = params
                    .get("callback_query_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                match self.queries.get_mut(&id) {
                    Some(answered @ false) => *answered = true,
                    _ => {
                        return Err(bad(
                            "query is too old and response timeout expired or query ID is invalid",
                        ));
                    }
                }
                let answer = CallbackAnswer {
                    callback_query_id: id,
                    text: params
                        .get("text")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    show_alert: params
                        .get("show_alert")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                };
                self.answers.push(answer.clone());
                *event = Some(ChatEvent::CallbackAnswered(answer));
                Ok(json!(true))
            }
            _ => Err((404, "Not Found: method not found".to_owned(), None)),
        }
    }

    fn send_message(&mut self, params: &Value, event: &mut Option<ChatEvent>) -> ApiResult {
        let limit = self.group_rate_limit;
        let (text, plain, parse_mode) = text_of(params)?;
        let (buttons, force_reply) = parse_markup(params.get("reply_markup"))?;
        let reply_to = params
            .get("reply_parameters")
            .and_then(|r| r.get("message_id"))
            .or_else(|| params.get("reply_to_message_id"))
            .and_then(Value::as_i64)
            .map(|id| id as i32);
        let (chat_id, chat) = self.chat_mut(params)?;
        if let Some(per_minute) = limit.filter(|_| !chat.private) {
            let now = Instant::now();
            while chat
                .sends
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
            {
                chat.sends.pop_front();
            }
            if chat.sends.len() >= per_minute as usize {
                let wait = chat.sends.front().map_or(1, |t| {
                    60u64
                        .saturating_sub(now.duration_since(*t).as_secs())
                        .max(1)
                });
                return Err((
                    429,
                    format!("Too Many Requests: retry after {wait}"),
                    Some(wait as u32),
                ));
            }
            chat.sends.push_back(now);
        }
        let message = FakeMessage {
            chat_id,
            message_id: chat.next_id(),
            from_bot: true,
            from_user: FAKE_BOT_ID,
            text,
            plain_text: plain,
            parse_mode,
            buttons,
            force_reply,
            reply_to,
            edits: 0,
            deleted: false,
            date: now(),
        };
        chat.messages.push(message.clone());
        *event = Some(ChatEvent::MessageSent(message.clone()));
        Ok(self.message_json(&message, true))
    }

    fn edit(&mut self, method: &str, params: &Value, event: &mut Option<ChatEvent>) -> ApiResult {
        let message_id = params
            .get("message_id")
            .and_then(Value::as_i64)
            .unwrap_or_default() as i32;
        let new_text = if method == "editMessageText" {
            Some(text_of(params)?)
        } else {
            None
        };
        let (buttons, _) = parse_markup(params.get("reply_markup"))?;
        let (_, chat) = self.chat_mut(params)?;
        let message = chat
            .messages
            .iter_mut()
            .find(|m| m.message_id == message_id && !m.deleted && m.from_bot)
            .ok_or_else(|| bad("message to edit not found"))?;
        let same_text = new_text
            .as_ref()
            .is_none_or(|(text, _, _)| *text == message.text);
        if same_text && buttons == message.buttons {
            return Err((400, NOT_MODIFIED.to_owned(), None));
        }
        if let Some((text, plain, parse_mode)) = new_text {
            message.text = text;
            message.plain_text = plain;
            message.parse_mode = parse_mode;
        }
        message.buttons = buttons;
        message.edits += 1;
        let message = message.clone();
        *event = Some(ChatEvent::MessageEdited(message.clone()));
        Ok(self.message_json(&message, true))
    }
}

fn admin_json(user: Value, creator: bool) -> Value {
    if creator {
        return json!({ "status": "creator", "user": user, "is_anonymous": false });
    }
    json!({
        "status": "administrator", "user": user, "can_be_edited": false, "is_anonymous": false,
        "can_manage_chat": true, "can_delete_messages": true, "can_manage_video_chats": true,
        "can_restrict_members": true, "can_promote_members": false, "can_change_info": true,
        "can_invite_users": true, "can_post_stories": false, "can_edit_stories": false,
        "can_delete_stories": false, "can_pin_messages": true, "can_manage_topics": false,
        "can_post_messages": false, "can_edit_messages": false,
    })
}

fn answer(result: ApiResult) -> Response {
    match result {
        Ok(value) => axum::Json(json!({ "ok": true, "result": value })).into_response(),
        Err((code, description, retry_after)) => {
            let mut body = json!({ "ok": false, "error_code": code, "description": description });
            if let Some(n) = retry_after {
                body["parameters"] = json!({ "retry_after": n });
            }
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
            (status, axum::Json(body)).into_response()
        }
    }
}

async fn api(
    State(fake): State<FakeTelegram>,
    Path((bot, method)): Path<(String, String)>,
    request: axum::extract::Request,
) -> Response {
    if bot.strip_prefix("bot") != Some(FAKE_BOT_TOKEN) {
        return answer(Err((401, "Unauthorized".to_owned(), None)));
    }
    let multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let params = if multipart {
        form_params(request).await
    } else {
        match axum::body::to_bytes(request.into_body(), 10 << 20).await {
            Ok(body) if body.is_empty() => Ok(json!({})),
            Ok(body) => serde_json::from_slice(&body).map_err(|_| bad("can't parse request JSON")),
            Err(_) => Err(bad("request too large")),
        }
    };
    match params {
        Ok(params) => {
            let method = canonical(&method);
            match fake.standing_answer(&method, &params) {
                Some(refused) => refused,
                None => answer(fake.handle(&method, params).await),
            }
        }
        Err(e) => answer(Err(e)),
    }
}

/// A multipart request (teloxide sends `setWebhook` so, for the optional certificate) as the
/// same JSON object a JSON request would carry: fields holding JSON are parsed, the rest kept as
/// strings.
async fn form_params(request: axum::extract::Request) -> Result<Value, ApiError> {
    use axum::extract::FromRequest;
    let mut form = axum::extract::Multipart::from_request(request, &())
        .await
        .map_err(|_| bad("can't parse multipart request"))?;
    let mut params = serde_json::Map::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|_| bad("can't parse multipart request"))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let text = field
            .text()
            .await
            .map_err(|_| bad("can't parse multipart request"))?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        params.insert(name, value);
    }
    Ok(Value::Object(params))
}

/// Telegram's method names are case-insensitive (teloxide sends `SendMessage`); calls are
/// recorded under the documented spelling.
fn canonical(method: &str) -> String {
    const METHODS: &[&str] = &[
        "getMe",
        "getUpdates",
        "deleteWebhook",
        "setWebhook",
        "getWebhookInfo",
        "close",
        "logOut",
        "setMyCommands",
        "getMyCommands",
        "deleteMyCommands",
        "getChat",
        "getChatAdministrators",
        "getChatMember",
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "deleteMessage",
        "answerCallbackQuery",
    ];
    METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .map_or_else(|| method.to_owned(), |m| (*m).to_owned())
}

async fn api_get(
    state: State<FakeTelegram>,
    path: Path<(String, String)>,
    request: axum::extract::Request,
) -> Response {
    api(state, path, request).await
}

// ---- The bot's standing in a chat, as `check` reads it: getChat's full chat info, groups
// upgraded to supergroups, and a bot that is in a chat but may not post there. ----

/// What the fake knows about the bot's standing in chats, beyond membership.
#[derive(Default)]
struct Membership {
    /// Groups upgraded to supergroups: old chat id → new chat id.
    upgraded: HashMap<i64, i64>,
    /// Chats where the bot is a restricted member that may not send messages.
    muted: Vec<i64>,
}

impl FakeTelegram {
    /// A group becomes a supergroup with id `new`, as Telegram does it: every later call naming
    /// `old` is refused with 400 and `migrate_to_chat_id`; the supergroup has the group's title
    /// and admins, no messages, and the bot in it.
    pub fn upgrade_group(&self, old: i64, new: i64) {
        {
            let mut world = self.world();
            let (title, admins) = world
                .chats
                .get(&old)
                .map(|c| (c.title.clone(), c.admins.clone()))
                .unwrap_or_default();
            let mut chat = Chat::new(&title, false);
            chat.admins = admins;
            world.chats.insert(new, chat);
            world.membership.upgraded.insert(old, new);
        }
        self.changed(None);
    }

    /// Restricts the bot in a chat: getChatMember says `restricted` with `can_send_messages`
    /// false, and sendMessage is refused as Telegram refuses it.
    pub fn restrict_bot(&self, chat_id: i64) {
        self.world().membership.muted.push(chat_id);
        self.changed(None);
    }

    /// The answer to a call that the bot's standing decides before anything else, if any.
    fn standing_answer(&self, method: &str, params: &Value) -> Option<Response> {
        let chat_id = chat_id_of(params)?;
        let mut world = self.world();
        let (result, migrate_to) = if let Some(&new) = world.membership.upgraded.get(&chat_id) {
            (
                Err(bad("group chat was upgraded to a supergroup chat")),
                Some(new),
            )
        } else if world.membership.muted.contains(&chat_id)
            && world.chats.get(&chat_id).is_some_and(|c| !c.kicked)
        {
            let about_bot = params.get("user_id").and_then(Value::as_i64) == Some(FAKE_BOT_ID);
            match method {
                "sendMessage" => (
                    Err(bad("not enough rights to send text messages to the chat")),
                    None,
                ),
                "getChatMember" if about_bot => {
                    (Ok(restricted_json(world.user_json(FAKE_BOT_ID))), None)
                }
                _ => return None,
            }
        } else {
            return None;
        };
        world.calls.push(RecordedCall {
            method: method.to_owned(),
            params: params.clone(),
            error_code: result.as_ref().err().map(|(code, _, _)| *code),
        });
        drop(world);
        self.changed(None);
        Some(match (result, migrate_to) {
            (Err((code, description, _)), Some(new)) => {
                let body = json!({
                    "ok": false, "error_code": code, "description": description,
                    "parameters": { "migrate_to_chat_id": new },
                });
                (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
            }
            (result, _) => answer(result),
        })
    }
}

impl World {
    /// getChat: a ChatFullInfo, as Telegram sends it (more than the Chat inside a message).
    fn chat_full_info(&mut self, params: &Value) -> ApiResult {
        let (chat_id, _) = self.chat_mut(params)?;
        let mut info = self.chat_json(chat_id);
        info["accent_color_id"] = json!(0);
        info["max_reaction_count"] = json!(11);
        info["accepted_gift_types"] = json!({
            "unlimited_gifts": false, "limited_gifts": false,
            "unique_gifts": false, "premium_subscription": false,
        });
        if info["type"] == "supergroup" {
            info["permissions"] = json!({
                "can_send_messages": true, "can_send_audios": true, "can_send_documents": true,
                "can_send_photos": true, "can_send_videos": true, "can_send_video_notes": true,
                "can_send_voice_notes": true, "can_send_polls": true,
                "can_send_other_messages": true, "can_add_web_page_previews": true,
                "can_change_info": false, "can_invite_users": true, "can_pin_messages": false,
                "can_manage_topics": false,
            });
        }
        Ok(info)
    }
}

/// A chat member restricted so that it may not send messages.
fn restricted_json(user: Value) -> Value {
    json!({
        "status": "restricted", "user": user, "is_member": true, "until_date": 0,
        "can_send_messages": false, "can_send_audios": false, "can_send_documents": false,
        "can_send_photos": false, "can_send_videos": false, "can_send_video_notes": false,
        "can_send_voice_notes": false, "can_send_polls": false, "can_send_other_messages": false,
        "can_add_web_page_previews": false, "can_change_info": false, "can_invite_users": false,
        "can_pin_messages": false, "can_manage_topics": false,
    })
}
