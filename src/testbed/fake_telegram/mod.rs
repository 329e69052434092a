//! A fake Telegram Bot API server. The end-to-end tests run the real bot against it (teloxide's
//! `set_api_url`), and the offline demo shows its chats. It keeps chats and messages, hands out
//! updates for what people do, and is as strict as Telegram where bots go wrong: HTML parsing,
//! message length, whitespace-only text, callback data size, callback answers over 200
//! characters, "message is not modified", edits of deleted messages, replies to deleted messages,
//! flood limits on sends and edits (429 with `Retry-After`; on request Telegram's own per chat,
//! per group and overall, with a count of refusals), two long pollers on one token (409),
//! groups upgraded to supergroups (`migrate_to_chat_id`), anonymous admins, who sees a selective
//! ForceReply, HTTPS-only webhooks. Every version of every message is kept with its time, so a
//! test can judge what a chat showed at any moment. Faults (429, 5xx with the front proxy's HTML page, delays,
//! API errors) can be injected per method. Error strings are Telegram's own, word for word
//! (tdlib/telegram-bot-api `Client.cpp`).

pub mod html;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
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
    /// The ForceReply was `selective`: only [`FakeMessage::reply_box_for`] see the reply box.
    pub selective: bool,
    /// Who sees a selective ForceReply's reply box: users @mentioned in the text (by username or
    /// by a `tg://user?id=` link) and the sender of the message it replies to.
    pub reply_box_for: Vec<i64>,
    /// Posted on behalf of a chat (an anonymous admin posts as the group).
    pub sender_chat: Option<i64>,
    /// The message it replies to.
    pub reply_to: Option<i32>,
    /// Times edited.
    pub edits: u32,
    /// Deleted (by a person or the bot).
    pub deleted: bool,
    /// Unix seconds.
    pub date: i64,
    /// Every version people were shown, oldest first: as sent, then after each edit. What a chat
    /// showed at any moment, not only what it shows now, is what a test of truthfulness needs.
    pub history: Vec<MessageVersion>,
    /// When it was deleted, if it was.
    pub deleted_at: Option<Instant>,
    /// The next edits of it fail with this fault, for this many (a 429 or an API error; Telegram
    /// refuses to edit some messages and not others: MESSAGE_ID_INVALID, "message can't be
    /// edited").
    pub refuses_edits: Option<(TgFault, u32)>,
}

/// A message's text and buttons as shown from `at` until the next version (or its deletion).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageVersion {
    /// When the fake made it (the send or the edit handled).
    pub at: Instant,
    /// What a person sees.
    pub plain_text: String,
    /// Inline keyboard rows.
    pub buttons: Vec<Vec<FakeButton>>,
}

impl FakeMessage {
    /// The version as it stands now, stamped `at`.
    fn version(&self, at: Instant) -> MessageVersion {
        MessageVersion {
            at,
            plain_text: self.plain_text.clone(),
            buttons: self.buttons.clone(),
        }
    }
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
    /// When the fake had handled it (its effect visible, just before the HTTP answer leaves), for
    /// latency measured at the boundary.
    pub at: Instant,
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// A basic group (`"type": "group"`), which Telegram may upgrade to a supergroup.
    basic: bool,
    /// Upgraded to this supergroup: every call about this chat is refused with its id.
    migrated_to: Option<i64>,
    admins: Vec<i64>,
    anonymous_admins: Vec<i64>,
    kicked: bool,
    /// A private chat whose user blocked the bot: every call about it is refused with 403.
    blocked: bool,
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
    flood: Flood,
    webhook: Option<Webhook>,
    deliveries: Vec<Delivery>,
    membership: Membership,
    /// Bumped by every getUpdates; a long poll that sees it change was overtaken by another.
    long_polls: u64,
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

/// A Bot API error as Telegram answers it.
#[derive(Debug)]
struct ApiError {
    /// HTTP status and `error_code`.
    code: u16,
    /// Telegram's description.
    description: String,
    /// `parameters` (`retry_after`, `migrate_to_chat_id`).
    parameters: Option<Value>,
    /// Answered by Telegram's front proxy: an HTML page, not JSON.
    proxy_page: bool,
}

impl ApiError {
    fn new(code: u16, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            parameters: None,
            proxy_page: false,
        }
    }

    fn retry_after(seconds: u32) -> Self {
        Self {
            parameters: Some(json!({ "retry_after": seconds })),
            ..Self::new(429, format!("Too Many Requests: retry after {seconds}"))
        }
    }
}

type ApiResult = Result<Value, ApiError>;

fn bad(description: impl Into<String>) -> ApiError {
    ApiError::new(400, format!("Bad Request: {}", description.into()))
}

/// Telegram's answer to a second long poll on one token, given to the earlier one.
pub const CONFLICT_OTHER_GET_UPDATES: &str = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";
/// Telegram's answer to a call about a group that became a supergroup.
pub const GROUP_UPGRADED: &str = "Bad Request: group chat was upgraded to a supergroup chat";
/// The user id anonymous group admins post as (`GroupAnonymousBot`).
pub const ANONYMOUS_ADMIN_ID: i64 = 1_087_968_824;
/// Longest text of an answer to a callback query.
pub const CALLBACK_ANSWER_MAX_CHARS: usize = 200;

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

    /// Adds a basic group (`"type": "group"`), the kind Telegram upgrades to a supergroup.
    pub fn add_basic_group(&self, chat_id: i64, title: &str) {
        let mut chat = Chat::new(title, false);
        chat.basic = true;
        self.world().chats.insert(chat_id, chat);
    }

    /// Upgrades a group to a supergroup, as Telegram does when a group gains a public link or
    /// many members: the supergroup `new` (with a fresh message history) takes the title and
    /// admins, each chat gets its service message, and every later call naming `old` is refused
    /// with `migrate_to_chat_id`.
    pub fn upgrade_group(&self, old: i64, new: i64) {
        {
            let mut world = self.world();
            let Some(chat) = world.chats.get_mut(&old) else {
                return;
            };
            chat.migrated_to = Some(new);
            let mut upgraded = Chat::new(&chat.title, false);
            upgraded.admins = chat.admins.clone();
            upgraded.anonymous_admins = chat.anonymous_admins.clone();
            let by = chat.admins.first().copied().unwrap_or(FAKE_BOT_ID);
            let date = now();
            let old_note = json!({
                "message_id": chat.next_id(), "date": date, "from": world.user_json(by),
                "chat": world.chat_json(old), "migrate_to_chat_id": new,
            });
            world.chats.insert(new, upgraded);
            let new_note = json!({
                "message_id": world.chats.get_mut(&new).map_or(1, Chat::next_id), "date": date,
                "from": world.user_json(by), "chat": world.chat_json(new), "migrate_from_chat_id": old,
            });
            world.push_update("message", old_note);
            world.push_update("message", new_note);
        }
        self.changed(None);
    }

    /// Makes admins of a group anonymous: their messages come from GroupAnonymousBot.
    pub fn set_anonymous_admins(&self, chat_id: i64, user_ids: &[i64]) {
        if let Some(chat) = self.world().chats.get_mut(&chat_id) {
            chat.anonymous_admins = user_ids.to_vec();
        }
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

    /// The user of a private chat blocks the bot (Telegram then answers every send there with
    /// 403 "Forbidden: bot was blocked by the user").
    pub fn block_bot(&self, user_id: i64) {
        if let Some(chat) = self.world().chats.get_mut(&user_id) {
            chat.blocked = true;
        }
        self.changed(None);
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

    /// The next `times` edits of this one message fail with `fault` (a 429 or an API error);
    /// other messages are edited as before.
    pub fn refuse_edits_of(&self, chat_id: i64, message_id: i32, fault: TgFault, times: u32) {
        let mut world = self.world();
        if let Some(m) = world
            .chats
            .get_mut(&chat_id)
            .and_then(|c| c.messages.iter_mut().find(|m| m.message_id == message_id))
        {
            m.refuses_edits = Some((fault, times));
        }
    }

    /// A person deletes a message.
    pub fn delete_message_as_user(&self, chat_id: i64, message_id: i32) {
        let deleted = {
            let mut world = self.world();
            world
                .chats
                .get_mut(&chat_id)
                .and_then(|c| c.messages.iter_mut().find(|m| m.message_id == message_id))
                .map(|m| {
                    if !m.deleted {
                        m.deleted = true;
                        m.deleted_at = Some(Instant::now());
                    }
                })
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

    /// A person sends `text`; returns the message id (0 when the chat cannot take messages).
    pub fn user_sends(&self, chat_id: i64, from: i64, text: &str) -> i32 {
        self.user_message(chat_id, from, text, None, false)
    }

    /// A person replies to a message; returns the new message's id.
    pub fn user_replies(&self, chat_id: i64, from: i64, reply_to: i32, text: &str) -> i32 {
        self.user_message(chat_id, from, text, Some(reply_to), false)
    }

    /// An anonymous admin posts `text`: it comes from GroupAnonymousBot with `sender_chat` set to
    /// the group, as Telegram sends it; who really wrote it is not in the update.
    pub fn anonymous_admin_sends(&self, chat_id: i64, text: &str, reply_to: Option<i32>) -> i32 {
        self.user_message(chat_id, ANONYMOUS_ADMIN_ID, text, reply_to, true)
    }

    fn user_message(
        &self,
        chat_id: i64,
        from: i64,
        text: &str,
        reply_to: Option<i32>,
        as_chat: bool,
    ) -> i32 {
        let (message, id) = {
            let mut world = self.world();
            let date = now();
            let Some(chat) = world
                .chats
                .get_mut(&chat_id)
                .filter(|c| c.migrated_to.is_none())
            else {
                return 0;
            };
            let mut message = FakeMessage {
                chat_id,
                message_id: chat.next_id(),
                from_bot: false,
                from_user: from,
                text: text.to_owned(),
                plain_text: text.to_owned(),
                parse_mode: None,
                buttons: Vec::new(),
                force_reply: false,
                selective: false,
                reply_box_for: Vec::new(),
                sender_chat: as_chat.then_some(chat_id),
                reply_to,
                edits: 0,
                deleted: false,
                date,
                history: Vec::new(),
                deleted_at: None,
                refuses_edits: None,
            };
            message.history.push(message.version(Instant::now()));
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

    /// Enforces Telegram's flood limits ([`FloodLimits::TELEGRAM`]) from now on.
    pub fn enforce_telegram_limits(&self) {
        self.enforce_flood_limits(Some(FloodLimits::TELEGRAM));
    }

    /// Enforces these flood limits (`None`: none, the default). Budgets start untouched.
    pub fn enforce_flood_limits(&self, limits: Option<FloodLimits>) {
        let mut world = self.world();
        world.flood.limits = limits;
        world.flood.budgets.clear();
    }

    /// Stops the flood budgets' clock where it is (until [`Self::advance_flood_clock`]), so a
    /// test can make many calls at one instant however slow the machine is.
    pub fn freeze_flood_clock(&self) {
        let mut world = self.world();
        world.flood.frozen = Some(world.flood.frozen.unwrap_or_else(tokio::time::Instant::now));
    }

    /// Moves the frozen flood clock on (a no-op while it runs with real time).
    pub fn advance_flood_clock(&self, by: Duration) {
        if let Some(frozen) = &mut self.world().flood.frozen {
            *frozen += by;
        }
    }

    /// How many calls the fake's flood control refused with 429 (the enforced limits and the
    /// per-minute group knob; injected faults are not counted).
    pub fn flood_refusals(&self) -> u64 {
        self.world().flood.refusals
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
            Some(TgFault::RetryAfter(n)) => Some(ApiError::retry_after(n)),
            Some(TgFault::Http(code)) => Some(ApiError {
                proxy_page: true,
                ..ApiError::new(code, "Bad Gateway")
            }),
            Some(TgFault::Api { code, description }) => Some(ApiError::new(code, description)),
            None => None,
        };
        if let Some(error) = injected {
            // Faulted calls are recorded too: tests count what the bot tried.
            self.world().calls.push(RecordedCall {
                method: method.to_owned(),
                params,
                error_code: Some(error.code),
                at: Instant::now(),
            });
            return Err(error);
        }
        if method == "getUpdates" {
            let result = self.get_updates(&params).await;
            self.world().calls.push(RecordedCall {
                method: method.to_owned(),
                params,
                error_code: result.as_ref().err().map(|e| e.code),
                at: Instant::now(),
            });
            return result;
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
                        .post(plain_http(&hook.url))
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
            return Err(ApiError::new(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
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
        // Like Telegram, a new getUpdates ends the one still open with 409: two instances on one
        // token keep knocking each other out.
        let me = {
            let mut world = self.world();
            world.long_polls += 1;
            world.long_polls
        };
        self.changed(None);
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut world = self.world();
                if world.long_polls != me {
                    return Err(ApiError::new(409, CONFLICT_OTHER_GET_UPDATES));
                }
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

/// The webhook shim: Telegram only posts to `https://` URLs, and the bot sits behind a
/// TLS-terminating proxy that forwards plain HTTP to `TELEGRAM_WEBHOOK_LISTEN`. The fake plays
/// Telegram and that proxy at once: it delivers an `https://host:port/path` webhook as
/// `http://host:port/path`. (Telegram's restriction to ports 443, 80, 88 and 8443 is not
/// enforced, so tests can listen on a free port.)
fn plain_http(url: &str) -> String {
    match url.strip_prefix("https://") {
        Some(rest) => format!("http://{rest}"),
        None => url.to_owned(),
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
            basic: false,
            migrated_to: None,
            admins: Vec::new(),
            anonymous_admins: Vec::new(),
            kicked: false,
            blocked: false,
            next_message_id: 1,
            messages: Vec::new(),
            sends: VecDeque::new(),
        }
    }

    /// Counts one message-changing call against the group's budget (sends and edits alike, as
    /// Telegram's flood control does), or says how long to wait.
    fn spend_budget(&mut self, per_minute: Option<u32>) -> Result<(), ApiError> {
        let Some(per_minute) = per_minute.filter(|_| !self.private) else {
            return Ok(());
        };
        let now = Instant::now();
        while self
            .sends
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.sends.pop_front();
        }
        if self.sends.len() >= per_minute as usize {
            let wait = self.sends.front().map_or(1, |t| {
                60u64
                    .saturating_sub(now.duration_since(*t).as_secs())
                    .max(1)
            });
            return Err(ApiError::retry_after(wait as u32));
        }
        self.sends.push_back(now);
        Ok(())
    }

    fn next_id(&mut self) -> i32 {
        let id = self.next_message_id;
        self.next_message_id += 1;
        id
    }
}

/// Parses `reply_markup` into buttons and, for a ForceReply, whether it is selective; enforces
/// the 64-byte data limit.
fn parse_markup(markup: Option<&Value>) -> Result<(Vec<Vec<FakeButton>>, Option<bool>), ApiError> {
    let Some(markup) = markup else {
        return Ok((Vec::new(), None));
    };
    let markup = match markup {
        Value::String(s) => serde_json::from_str(s)
            .map_err(|_| bad("can't parse reply keyboard markup JSON object"))?,
        other => other.clone(),
    };
    if markup.get("force_reply").and_then(Value::as_bool) == Some(true) {
        let selective = markup.get("selective").and_then(Value::as_bool) == Some(true);
        return Ok((Vec::new(), Some(selective)));
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
    Ok((out, None))
}

fn chat_id_of(params: &Value) -> Option<i64> {
    match params.get("chat_id")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Telegram's most for a message's text: UTF-16 code units of the text after entity parsing.
const TEXT_MAX_UTF16: usize = 4096;

/// A message's text, its plain form and parse mode, refused as Telegram refuses it; `edit` picks
/// the edit methods' words for a text too long.
fn text_of(params: &Value, edit: bool) -> Result<(String, String, Option<String>), ApiError> {
    let text = params
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if text.is_empty() {
        return Err(bad("message text is empty"));
    }
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
        return Err(bad("text must be non-empty"));
    }
    if plain.encode_utf16().count() > TEXT_MAX_UTF16 {
        return Err(bad(if edit {
            "MESSAGE_TOO_LONG"
        } else {
            "message is too long"
        }));
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
        if id == ANONYMOUS_ADMIN_ID {
            return json!({ "id": ANONYMOUS_ADMIN_ID, "is_bot": true, "first_name": "Group", "username": "GroupAnonymousBot" });
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
            Some(c) if c.basic => json!({ "id": chat_id, "type": "group", "title": c.title }),
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
        if let Some(chat) = m.sender_chat {
            v["sender_chat"] = self.chat_json(chat);
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

    /// Users a message mentions: `@username` of a known user in the text a person sees, and
    /// `tg://user?id=` links under HTML (what Telegram turns into text mentions).
    fn mentioned(&self, html: &str, plain: &str, parse_mode: Option<&str>) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut rest = plain;
        while let Some(at) = rest.find('@') {
            let preceded_by_word = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            rest = &rest[at + 1..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if preceded_by_word || name.is_empty() {
                continue;
            }
            ids.extend(self.users.values().filter_map(|u| {
                u.username
                    .as_ref()
                    .filter(|n| n.eq_ignore_ascii_case(&name))
                    .map(|_| u.id)
            }));
        }
        if parse_mode.is_some_and(|m| m.eq_ignore_ascii_case("html")) {
            ids.extend(html::user_links(html));
        }
        ids
    }

    /// The chat a call is about, refusing unknown chats and ones the bot was removed from.
    fn chat_mut(&mut self, params: &Value) -> Result<(i64, &mut Chat), ApiError> {
        let chat_id = chat_id_of(params).ok_or_else(|| bad("chat not found"))?;
        let chat = self
            .chats
            .get_mut(&chat_id)
            .ok_or_else(|| bad("chat not found"))?;
        if let Some(new) = chat.migrated_to {
            return Err(ApiError {
                parameters: Some(json!({ "migrate_to_chat_id": new })),
                ..ApiError::new(400, GROUP_UPGRADED)
            });
        }
        if chat.kicked {
            return Err(ApiError::new(
                403,
                "Forbidden: bot was kicked from the supergroup chat",
            ));
        }
        if chat.blocked {
            return Err(ApiError::new(403, "Forbidden: bot was blocked by the user"));
        }
        Ok((chat_id, chat))
    }

    fn dispatch(&mut self, method: &str, params: &Value) -> (ApiResult, Option<ChatEvent>) {
        let mut event = None;
        let result = match self.flood.admit(method, params) {
            Ok(()) => self.call(method, params, &mut event),
            Err(refused) => Err(refused),
        };
        if result.as_ref().is_err_and(|e| e.code == 429) {
            self.flood.refusals += 1;
        }
        self.calls.push(RecordedCall {
            method: method.to_owned(),
            params: params.clone(),
            error_code: result.as_ref().err().map(|e| e.code),
            at: Instant::now(),
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
                    let parsed = reqwest::Url::parse(url)
                        .map_err(|_| bad("bad webhook: Failed to resolve host: invalid URL"))?;
                    if parsed.scheme() != "https" {
                        return Err(bad(
                            "bad webhook: An HTTPS URL must be provided for webhook",
                        ));
                    }
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
                let anonymous = chat.anonymous_admins.clone();
                let mut out: Vec<Value> = admins
                    .iter()
                    .enumerate()
                    .map(|(i, id)| admin_json(self.user_json(*id), i == 0, anonymous.contains(id)))
                    .collect();
                out.push(admin_json(self.user_json(FAKE_BOT_ID), false, false));
                Ok(json!(out))
            }
            "getChatMember" => {
                let (_, chat) = self.chat_mut(params)?;
                let user_id = params
                    .get("user_id")
                    .and_then(Value::as_i64)
                    .unwrap_or_default();
                let position = chat.admins.iter().position(|a| *a == user_id);
                let anonymous = chat.anonymous_admins.contains(&user_id);
                Ok(match position {
                    Some(i) => admin_json(self.user_json(user_id), i == 0, anonymous),
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
                message.deleted_at = Some(Instant::now());
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
                let text = params.get("text").and_then(Value::as_str);
                if text.is_some_and(|t| t.encode_utf16().count() > CALLBACK_ANSWER_MAX_CHARS) {
                    // Telegram's own code for it (the Bot API passes the server's error through).
                    return Err(bad("MESSAGE_TOO_LONG"));
                }
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
            _ => Err(ApiError::new(404, "Not Found: method not found")),
        }
    }

    fn send_message(&mut self, params: &Value, event: &mut Option<ChatEvent>) -> ApiResult {
        let limit = self.group_rate_limit;
        let (text, plain, parse_mode) = text_of(params, false)?;
        let (buttons, force_reply) = parse_markup(params.get("reply_markup"))?;
        let reply_parameters = params.get("reply_parameters");
        let mut reply_to = reply_parameters
            .and_then(|r| r.get("message_id"))
            .or_else(|| params.get("reply_to_message_id"))
            .and_then(Value::as_i64)
            .map(|id| id as i32);
        // Either spelling: the old top-level parameter or the one inside reply_parameters.
        let without_reply = [
            params.get("allow_sending_without_reply"),
            reply_parameters.and_then(|r| r.get("allow_sending_without_reply")),
        ]
        .into_iter()
        .flatten()
        .any(|v| v == &json!(true));
        let mentioned = self.mentioned(&text, &plain, parse_mode.as_deref());
        let (chat_id, chat) = self.chat_mut(params)?;
        let replied = reply_to.and_then(|id| {
            chat.messages
                .iter()
                .find(|m| m.message_id == id && !m.deleted)
        });
        let replied_sender = replied.map(|m| m.from_user);
        if reply_to.is_some() && replied.is_none() {
            if !without_reply {
                return Err(bad("message to be replied not found"));
            }
            reply_to = None;
        }
        let selective = force_reply == Some(true);
        let reply_box_for = if selective {
            let mut who = mentioned;
            // The bot itself (sender of a card it replies to) has no reply box to show.
            who.extend(replied_sender.filter(|id| *id != FAKE_BOT_ID));
            who.sort_unstable();
            who.dedup();
            who
        } else {
            Vec::new()
        };
        chat.spend_budget(limit)?;
        let mut message = FakeMessage {
            chat_id,
            message_id: chat.next_id(),
            from_bot: true,
            from_user: FAKE_BOT_ID,
            text,
            plain_text: plain,
            parse_mode,
            buttons,
            force_reply: force_reply.is_some(),
            selective,
            reply_box_for,
            sender_chat: None,
            reply_to,
            edits: 0,
            deleted: false,
            date: now(),
            history: Vec::new(),
            deleted_at: None,
            refuses_edits: None,
        };
        message.history.push(message.version(Instant::now()));
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
            Some(text_of(params, true)?)
        } else {
            None
        };
        let (buttons, _) = parse_markup(params.get("reply_markup"))?;
        let limit = self.group_rate_limit;
        let (_, chat) = self.chat_mut(params)?;
        chat.spend_budget(limit)?;
        let message = chat
            .messages
            .iter_mut()
            .find(|m| m.message_id == message_id && !m.deleted && m.from_bot)
            .ok_or_else(|| bad("message to edit not found"))?;
        if let Some((fault, times)) = &mut message.refuses_edits
            && *times > 0
        {
            *times -= 1;
            return Err(match fault.clone() {
                TgFault::RetryAfter(n) => ApiError::retry_after(n),
                TgFault::Api { code, description } => ApiError::new(code, description),
                other => bad(format!("{other:?}")),
            });
        }
        let same_text = new_text
            .as_ref()
            .is_none_or(|(text, _, _)| *text == message.text);
        if same_text && buttons == message.buttons {
            return Err(ApiError::new(400, NOT_MODIFIED));
        }
        if let Some((text, plain, parse_mode)) = new_text {
            message.text = text;
            message.plain_text = plain;
            message.parse_mode = parse_mode;
        }
        message.buttons = buttons;
        message.edits += 1;
        let version = message.version(Instant::now());
        message.history.push(version);
        let message = message.clone();
        *event = Some(ChatEvent::MessageEdited(message.clone()));
        Ok(self.message_json(&message, true))
    }
}

fn admin_json(user: Value, creator: bool, anonymous: bool) -> Value {
    if creator {
        return json!({ "status": "creator", "user": user, "is_anonymous": anonymous });
    }
    json!({
        "status": "administrator", "user": user, "can_be_edited": false, "is_anonymous": anonymous,
        "can_manage_chat": true, "can_delete_messages": true, "can_manage_video_chats": true,
        "can_restrict_members": true, "can_promote_members": false, "can_change_info": true,
        "can_invite_users": true, "can_post_stories": false, "can_edit_stories": false,
        "can_delete_stories": false, "can_pin_messages": true, "can_manage_topics": false,
        "can_post_messages": false, "can_edit_messages": false,
    })
}

fn answer(result: ApiResult) -> Response {
    let error = match result {
        Ok(value) => return axum::Json(json!({ "ok": true, "result": value })).into_response(),
        Err(error) => error,
    };
    let status = StatusCode::from_u16(error.code).unwrap_or(StatusCode::BAD_REQUEST);
    if error.proxy_page {
        // What Telegram's nginx front sends when the Bot API behind it fails.
        let reason = status.canonical_reason().unwrap_or("Error");
        let page = format!(
            "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n",
            code = error.code
        );
        return (status, [(header::CONTENT_TYPE, "text/html")], page).into_response();
    }
    let mut body =
        json!({ "ok": false, "error_code": error.code, "description": error.description });
    let mut headers = axum::http::HeaderMap::new();
    if let Some(parameters) = error.parameters {
        if let Some(n) = parameters.get("retry_after").and_then(Value::as_u64)
            && let Ok(value) = axum::http::HeaderValue::from_str(&n.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        body["parameters"] = parameters;
    }
    (status, headers, axum::Json(body)).into_response()
}

async fn api(
    State(fake): State<FakeTelegram>,
    Path((bot, method)): Path<(String, String)>,
    request: axum::extract::Request,
) -> Response {
    if bot.strip_prefix("bot") != Some(FAKE_BOT_TOKEN) {
        return answer(Err(ApiError::new(401, "Unauthorized")));
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

// ---- The bot's standing in a chat, as `check` reads it: getChat's full chat info and a bot
// that is in a chat but may not post there. ----

/// What the fake knows about the bot's standing in chats, beyond membership.
#[derive(Default)]
struct Membership {
    /// Chats where the bot is a restricted member that may not send messages.
    muted: Vec<i64>,
}

impl FakeTelegram {
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
        let result: ApiResult = if world.membership.muted.contains(&chat_id)
            && world.chats.get(&chat_id).is_some_and(|c| !c.kicked)
        {
            let about_bot = params.get("user_id").and_then(Value::as_i64) == Some(FAKE_BOT_ID);
            match method {
                "sendMessage" => Err(bad("not enough rights to send text messages to the chat")),
                "getChatMember" if about_bot => Ok(restricted_json(world.user_json(FAKE_BOT_ID))),
                _ => return None,
            }
        } else {
            return None;
        };
        world.calls.push(RecordedCall {
            method: method.to_owned(),
            params: params.clone(),
            error_code: result.as_ref().err().map(|e| e.code),
            at: Instant::now(),
        });
        drop(world);
        self.changed(None);
        Some(answer(result))
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

// ---- Flood control as Telegram documents it: about one message a second per chat with short
// bursts, 20 a minute per group, about 30 a second overall. The fake keeps its own buckets (it
// must not share code with the bot's limiter, which it judges). ----

/// One flood budget: `messages` every `per` on average, up to `burst` back to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloodBudget {
    /// Messages per `per`, sustained.
    pub messages: u32,
    /// The period.
    pub per: Duration,
    /// How many may go back to back after a quiet spell.
    pub burst: u32,
}

/// The flood budgets the fake enforces when asked to. sendMessage, editMessageText,
/// editMessageReplyMarkup and deleteMessage count against their chat, its group (chat id < 0)
/// and the overall budget; answerCallbackQuery against the overall budget only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloodLimits {
    /// Every chat.
    pub per_chat: FloodBudget,
    /// Every group chat, on top of `per_chat`.
    pub per_group: FloodBudget,
    /// All calls together.
    pub overall: FloodBudget,
}

impl FloodLimits {
    /// Telegram's: one a second per chat (burst 3), 20 a minute per group (burst 20), 30 a
    /// second overall (burst 30).
    pub const TELEGRAM: FloodLimits = FloodLimits {
        per_chat: FloodBudget {
            messages: 1,
            per: Duration::from_secs(1),
            burst: 3,
        },
        per_group: FloodBudget {
            messages: 20,
            per: Duration::from_secs(60),
            burst: 20,
        },
        overall: FloodBudget {
            messages: 30,
            per: Duration::from_secs(1),
            burst: 30,
        },
    };
}

/// Whose bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum FloodKey {
    Chat(i64),
    Group(i64),
    Overall,
}

/// The fake's flood control: per bucket, the instant by which everything admitted so far will
/// have drained at the sustained rate. A call fits while that lies no more than `burst - 1`
/// intervals ahead of now.
#[derive(Default)]
struct Flood {
    limits: Option<FloodLimits>,
    budgets: HashMap<FloodKey, tokio::time::Instant>,
    refusals: u64,
    /// The clock's reading while frozen.
    frozen: Option<tokio::time::Instant>,
}

impl Flood {
    /// Admits a call and counts it against every budget it belongs to, or refuses it with
    /// Telegram's 429 saying how many whole seconds until all of them have room (refused calls
    /// cost nothing).
    fn admit(&mut self, method: &str, params: &Value) -> Result<(), ApiError> {
        let Some(limits) = self.limits else {
            return Ok(());
        };
        let mut buckets = Vec::with_capacity(3);
        match method {
            "sendMessage" | "editMessageText" | "editMessageReplyMarkup" | "deleteMessage" => {
                if let Some(chat) = chat_id_of(params) {
                    buckets.push((FloodKey::Chat(chat), limits.per_chat));
                    if chat < 0 {
                        buckets.push((FloodKey::Group(chat), limits.per_group));
                    }
                }
            }
            "answerCallbackQuery" => {}
            _ => return Ok(()),
        }
        buckets.push((FloodKey::Overall, limits.overall));

        let now = self.frozen.unwrap_or_else(tokio::time::Instant::now);
        let mut drained = Vec::with_capacity(buckets.len());
        let mut wait = Duration::ZERO;
        for (key, budget) in &buckets {
            let step = (budget.per / budget.messages.max(1)).max(Duration::from_nanos(1));
            let slack = step * budget.burst.max(1).saturating_sub(1);
            let until = self.budgets.get(key).copied().unwrap_or(now).max(now);
            let over = until.saturating_duration_since(now + slack);
            wait = wait.max(over);
            drained.push((*key, until + step));
        }
        if !wait.is_zero() {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(ApiError::retry_after(
                u32::try_from(seconds).unwrap_or(u32::MAX).max(1),
            ));
        }
        self.budgets.extend(drained);
        Ok(())
    }
}
