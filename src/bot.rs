//! The bot as a whole: the handler tree (commands, button presses, typed reasons), and [`run`],
//! which starts the poller beside the dispatcher and stops both through one shutdown path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use secrecy::ExposeSecret;
use teloxide::adaptors::throttle::Limits;
use teloxide::dispatching::UpdateHandler;
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::payloads::{AnswerCallbackQuerySetters, SendMessageSetters};
use teloxide::prelude::*;
use teloxide::types::{ForceReply, MaybeInaccessibleMessage, Me, ParseMode, ReplyParameters};
use teloxide::update_listeners::{Polling, UpdateListener};
use tokio_util::sync::CancellationToken;

use crate::app::{App, TgBot};
use crate::card::{Actor, Card, CardState, Note, Press, clean, escape, reason_by_key};
use crate::commands;
use crate::config::Settings;
use crate::decision::{self, Action, Begin, Via};
use crate::i18n::fill;
use crate::store::Store;
use crate::wechat::WeChatClient;

/// Handler errors are logged by the dispatcher; users already got their answer.
pub type HandlerResult = anyhow::Result<()>;

/// Longest typed refusal reason.
pub const REASON_MAX_CHARS: usize = 200;

/// The handler tree.
pub fn schema() -> UpdateHandler<anyhow::Error> {
    dptree::entry()
        .branch(Update::filter_callback_query().endpoint(on_press))
        .branch(
            Update::filter_message()
                .branch(
                    dptree::filter(|m: Message| m.text().is_some_and(|t| t.starts_with('/')))
                        .endpoint(commands::on_command),
                )
                .branch(
                    dptree::filter(|m: Message| m.reply_to_message().is_some()).endpoint(on_reply),
                ),
        )
}

/// Builds a Telegram client from settings (`TELOXIDE_TOKEN`, `TELOXIDE_API_URL`,
/// `TELEGRAM_TIMEOUT_SECS`).
pub fn telegram_bot(settings: &Settings) -> anyhow::Result<Bot> {
    let client = teloxide::net::default_reqwest_settings()
        .timeout(settings.telegram_timeout)
        .build()
        .context("could not build the Telegram HTTP client")?;
    let bot = Bot::with_client(settings.telegram_token.expose_secret(), client);
    Ok(match &settings.telegram_api_url {
        Some(url) => bot.set_api_url(url.clone()),
        None => bot,
    })
}

/// Runs the bot until `shutdown` fires: poller and dispatcher stop together, and decisions in
/// flight finish first.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    settings.register_secrets();
    let store = Store::open(&settings.database_url).await?;
    let wechat = WeChatClient::new(settings.wechat.clone())?;
    let limits = if settings.telegram_throttle {
        telegram_limits()
    } else {
        unthrottled()
    };
    let bot = telegram_bot(&settings)?.throttle(limits);
    let app = App::new(settings, wechat, store, bot);
    serve(app, shutdown).await
}

/// Telegram's documented limits: one message a second per chat and 20 a minute per group.
/// teloxide's default allows supergroups only 10 a minute, which halves how fast a burst of new
/// applicants reaches the team chat; any 429 Telegram still sends is waited out by `Throttle`.
pub fn telegram_limits() -> Limits {
    Limits {
        messages_per_min_channel_or_supergroup: 20,
        ..Limits::default()
    }
}

/// Limits so high they never bind: for a fake Bot API in benchmarks (`TELEGRAM_THROTTLE=off`).
pub fn unthrottled() -> Limits {
    Limits {
        messages_per_sec_chat: 100_000,
        messages_per_sec_overall: 100_000,
        messages_per_min_chat: 6_000_000,
        messages_per_min_channel_or_supergroup: 6_000_000,
    }
}

/// Runs an already wired [`App`] (tests and the demo build their own).
pub async fn serve(app: Arc<App>, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Before anything is counted.
    let telemetry = match app.settings.metrics_addr {
        Some(addr) => Some((addr, crate::telemetry::install()?)),
        None => None,
    };
    let me = app
        .bot
        .get_me()
        .await
        .context("Telegram refused the bot (check TELOXIDE_TOKEN and TELOXIDE_API_URL)")?;
    app.warm_up().await?;
    if let Err(e) = app
        .bot
        .set_my_commands(commands::bot_commands(app.texts()))
        .await
    {
        tracing::warn!(error = %e, "could not register the command list with Telegram");
    }
    let recovered = decision::recover_abandoned(&app).await?;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "reconciled decisions interrupted by the last stop"
        );
    }
    let refreshed = app.refresh_stale_cards().await?;
    if refreshed > 0 {
        tracing::info!(
            refreshed,
            "brought cards up to date that the last stop left behind"
        );
    }
    let poller = tokio::spawn(crate::poller::run(
        Arc::clone(&app),
        app.settings.poll_interval,
        shutdown.clone(),
    ));
    let mut dispatcher = Dispatcher::builder(app.bot.clone(), schema())
        .dependencies(dptree::deps![Arc::clone(&app)])
        // Presses on different cards must not wait for each other's WeChat calls; the store's
        // atomic claim keeps presses on one card apart.
        .distribution_function(|_| None::<()>)
        .default_handler(|_| async {})
        .build();
    let stopper = dispatcher.shutdown_token();
    let stop_signal = shutdown.clone();
    tokio::spawn(async move {
        stop_signal.cancelled().await;
        // The dispatcher may not have started yet: try until it takes the request.
        loop {
            match stopper.shutdown() {
                Ok(done) => {
                    done.await;
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    });
    let dispatched = listen(&app, &me, &mut dispatcher, telemetry, &shutdown).await;
    if let Err(e) = &dispatched {
        tracing::error!(error = %format!("{e:#}"), "could not receive updates from Telegram; stopping");
    }
    shutdown.cancel();
    let _ = poller.await;
    app.store.close().await;
    dispatched.context("the dispatcher could not start")?;
    tracing::info!("bot stopped");
    Ok(())
}

/// Receives updates, by long polling or by webhook, and serves `/metrics` and `/healthz` when
/// asked to, until the dispatcher stops.
async fn listen(
    app: &Arc<App>,
    me: &Me,
    dispatcher: &mut Dispatcher<TgBot, anyhow::Error, ()>,
    telemetry: Option<(SocketAddr, metrics_exporter_prometheus::PrometheusHandle)>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let settings = &app.settings;
    let shares_webhook =
        |addr: SocketAddr| settings.webhook.as_ref().is_some_and(|w| w.listen == addr);
    if let Some((addr, handle)) = &telemetry
        && !shares_webhook(*addr)
    {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("METRICS_ADDR: cannot listen on {addr}"))?;
        let bound = listener.local_addr()?;
        tracing::info!("metrics on http://{bound}/metrics, health on http://{bound}/healthz");
        let router = crate::telemetry::router(Arc::clone(app), handle.clone());
        let stop = shutdown.clone();
        spawn_http(
            listener,
            router,
            async move { stop.cancelled().await },
            "metrics",
        );
    }
    let errors = CountingErrorHandler::new("getUpdates failed", Arc::clone(app));
    let Some(webhook) = &settings.webhook else {
        // The long poll must end before the HTTP timeout does.
        let long_poll = settings
            .telegram_timeout
            .saturating_sub(Duration::from_secs(2))
            .clamp(Duration::from_secs(1), Duration::from_secs(10));
        let mut listener = Polling::builder(app.bot.clone())
            .timeout(long_poll)
            .delete_webhook()
            .await
            .build();
        stop_listener_too(&mut listener, shutdown);
        tracing::info!(bot = %me.username(), chat = app.chat.0, approvers = %app.approvers.describe(), "bot started (long polling)");
        return Ok(dispatcher
            .try_dispatch_with_listener(listener, errors)
            .await?);
    };
    let tcp = tokio::net::TcpListener::bind(webhook.listen)
        .await
        .with_context(|| {
            format!(
                "TELEGRAM_WEBHOOK_LISTEN: cannot listen on {}",
                webhook.listen
            )
        })?;
    let bound = tcp.local_addr()?;
    let options = teloxide::update_listeners::webhooks::Options::new(bound, webhook.url.clone())
        .secret_token(webhook.secret.expose_secret().to_owned());
    let (mut listener, stopped, mut router) =
        teloxide::update_listeners::webhooks::axum_to_router(app.bot.clone(), options)
            .await
            .context("Telegram refused the webhook (setWebhook)")?;
    stop_listener_too(&mut listener, shutdown);
    // teloxide compares the secret with `!=`; refuse wrong ones first, in constant time, so its
    // comparison only ever sees the right secret.
    let expected = webhook.secret.clone();
    router = router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let expected = expected.clone();
            async move {
                let given = request
                    .headers()
                    .get("x-telegram-bot-api-secret-token")
                    .map(|v| v.as_bytes())
                    .unwrap_or_default();
                if !same_secret(given, expected.expose_secret().as_bytes()) {
                    crate::telemetry::webhook_refused();
                    tracing::debug!("refused a webhook request without the secret token");
                    return axum::response::IntoResponse::into_response(
                        axum::http::StatusCode::UNAUTHORIZED,
                    );
                }
                next.run(request).await
            }
        },
    ));
    if let Some((addr, handle)) = &telemetry
        && shares_webhook(*addr)
    {
        router = router.merge(crate::telemetry::router(Arc::clone(app), handle.clone()));
        tracing::info!("metrics on http://{bound}/metrics, health on http://{bound}/healthz");
    }
    spawn_http(tcp, router, stopped, "webhook");
    tracing::info!(bot = %me.username(), chat = app.chat.0, approvers = %app.approvers.describe(), url = %webhook.url, listen = %bound, "bot started (webhook)");
    Ok(dispatcher
        .try_dispatch_with_listener(listener, errors)
        .await?)
}

/// How long the dispatcher has to stop by itself before its update listener is stopped too.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// teloxide 0.17 wakes its dispatcher for a shutdown with `Notify::notify_waiters`, which is lost
/// when the dispatcher is not waiting at that moment (it is handling an update): it then waits on
/// the next update forever. Stopping the listener as well ends its stream, so the dispatcher
/// stops either way — and still waits for the handlers in flight.
fn stop_listener_too<L: UpdateListener>(listener: &mut L, shutdown: &CancellationToken) {
    let stop = listener.stop_token();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        signal.cancelled().await;
        tokio::time::sleep(STOP_GRACE).await;
        stop.stop();
    });
}

/// Serves `router` on `listener` in a task until `until` completes; `what` names it in the log if
/// it fails.
pub(crate) fn spawn_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    until: impl std::future::Future<Output = ()> + Send + 'static,
    what: &'static str,
) {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(until)
            .await
        {
            tracing::error!(error = %e, server = what, "an HTTP server stopped");
        }
    });
}

/// Compares secrets in time that depends only on their lengths.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let diff = given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0 && given.len() == expected.len()
}

/// Logs listener errors and counts the Telegram ones. A 409 Conflict (another instance polling
/// the same token) is logged as an error once per episode, not once per retry, and recorded on
/// the [`App`] for `/status`.
struct CountingErrorHandler {
    inner: Arc<LoggingErrorHandler>,
    app: Arc<App>,
}

impl CountingErrorHandler {
    fn new(text: &str, app: Arc<App>) -> Arc<Self> {
        Arc::new(Self {
            inner: LoggingErrorHandler::with_custom_text(text),
            app,
        })
    }
}

impl<E> teloxide::error_handlers::ErrorHandler<E> for CountingErrorHandler
where
    E: std::fmt::Debug + Send + 'static,
{
    fn handle_error(self: Arc<Self>, error: E) -> futures::future::BoxFuture<'static, ()> {
        if let Some(e) = (&error as &dyn std::any::Any).downcast_ref::<teloxide::RequestError>() {
            crate::telemetry::telegram_error(e);
            if matches!(
                e,
                teloxide::RequestError::Api(teloxide::ApiError::TerminatedByOtherGetUpdates)
            ) {
                if self.app.telegram_conflicts.record(crate::store::now_secs()) {
                    tracing::error!(
                        "another instance is long-polling this bot's token (Telegram answers 409 Conflict: terminated by other getUpdates request); updates are split between them at random. Stop the other instance: only one may run"
                    );
                } else {
                    tracing::debug!("another getUpdates ended ours again (409 Conflict)");
                }
                return Box::pin(async {});
            }
        }
        Arc::clone(&self.inner).handle_error(error)
    }
}

/// Where a press came from, once checked against the stored card.
struct Pressed {
    card: Card,
    actor: Actor,
}

async fn alert(bot: &TgBot, q: &CallbackQuery, text: String) -> HandlerResult {
    bot.answer_callback_query(q.id.clone())
        .text(callback_text(&text))
        .show_alert(true)
        .await?;
    Ok(())
}

async fn toast(bot: &TgBot, q: &CallbackQuery, text: &str) -> HandlerResult {
    bot.answer_callback_query(q.id.clone())
        .text(callback_text(text))
        .await?;
    Ok(())
}

/// Longest answer to a press Telegram takes (longer is refused, and the press spins on).
const CALLBACK_TEXT_MAX_CHARS: usize = 200;

/// `text` cut to what Telegram takes in a callback answer (names can be long), by characters.
fn callback_text(text: &str) -> String {
    if text.chars().count() <= CALLBACK_TEXT_MAX_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(CALLBACK_TEXT_MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// A mention of `actor` that Telegram shows as a link to them and that makes a selective
/// ForceReply show its reply box to them, with or without a username.
fn mention(actor: &Actor) -> String {
    format!(
        "<a href=\"tg://user?id={}\">{}</a>",
        actor.id,
        escape(&clean(&actor.name, 64, false))
    )
}

/// Whether a message was posted on behalf of a chat (an anonymous admin, a linked channel):
/// nobody can tell which person sent it.
pub(crate) fn posted_anonymously(message: &Message) -> bool {
    message.sender_chat.is_some() || message.from.as_ref().is_some_and(|u| u.is_anonymous())
}

/// Checks a press against stored state: known data, the team chat, the very message of the card,
/// an approver. Anything else gets an alert and nothing more.
async fn check_press(app: &App, q: &CallbackQuery) -> anyhow::Result<Option<(Press, Pressed)>> {
    let t = app.texts();
    let message = match &q.message {
        Some(MaybeInaccessibleMessage::Regular(m)) => Some((m.chat.id, m.id)),
        Some(MaybeInaccessibleMessage::Inaccessible(m)) => Some((m.chat.id, m.message_id)),
        None => None,
    };
    let press = q.data.as_deref().and_then(Press::decode);
    let card = match press {
        Some(p) => app.settled_card(p.card_id()).await?,
        None => None,
    };
    let genuine = match (&press, &card, message) {
        (Some(_), Some(card), Some((chat, message_id))) => {
            chat == app.chat && card.chat_id == chat.0 && card.message_id == Some(message_id.0)
        }
        _ => false,
    };
    let (Some(press), Some(card), true) = (press, card, genuine) else {
        tracing::warn!(user = q.from.id.0, data = ?q.data, "rejected a press that matches no card");
        alert(&app.bot, q, t.alert_invalid.to_owned()).await?;
        return Ok(None);
    };
    if !app
        .approvers
        .is_approver(&app.bot, app.chat, q.from.id)
        .await
    {
        tracing::info!(
            user = q.from.id.0,
            card = card.id,
            "a non-approver pressed a card"
        );
        alert(&app.bot, q, t.alert_not_approver.to_owned()).await?;
        return Ok(None);
    }
    Ok(Some((
        press,
        Pressed {
            card,
            actor: Actor::from_user(&q.from),
        },
    )))
}

async fn on_press(app: Arc<App>, q: CallbackQuery) -> HandlerResult {
    let Some((press, Pressed { card, actor })) = check_press(&app, &q).await? else {
        return Ok(());
    };
    let t = app.texts();
    match press {
        Press::Approve(_) => decide_answering(&app, &q, &card, &actor, Action::Approve, None).await,
        Press::Delete(_) => decide_answering(&app, &q, &card, &actor, Action::Delete, None).await,
        Press::Reason(_, key) => {
            let Some(reason) = reason_by_key(&app.settings.reject_reasons, key).cloned() else {
                // The reasons changed since the button was drawn: show the current ones.
                courtesy(alert(&app.bot, &q, t.alert_reason_gone.to_owned()).await);
                app.refresh_card(card.id).await?;
                return Ok(());
            };
            if card.state != CardState::ChoosingReason {
                return busy_or_stale(&app, &q, &card).await;
            }
            decide_answering(&app, &q, &card, &actor, Action::Reject, Some(reason)).await
        }
        Press::Retry(_) => {
            let action = match &card.note {
                Some(Note::Failed { action, .. }) => *action,
                // The last write may have happened: re-read instead of writing again.
                Some(Note::Unknown { .. }) => {
                    courtesy(toast(&app.bot, &q, t.toast_refreshed).await);
                    return refresh_one(&app, &card).await;
                }
                _ => {
                    courtesy(alert(&app.bot, &q, t.alert_not_applicable.to_owned()).await);
                    return Ok(());
                }
            };
            decide_answering(&app, &q, &card, &actor, action, card.reason.clone()).await
        }
        Press::Reject(_) => {
            if !claim(
                &app,
                &card,
                &[CardState::Open],
                CardState::ChoosingReason,
                &actor,
            )
            .await?
            {
                return busy_or_stale(&app, &q, &card).await;
            }
            courtesy(toast(&app.bot, &q, t.toast_working).await);
            app.refresh_card(card.id).await?;
            Ok(())
        }
        Press::OtherReason(_) => {
            if !claim(
                &app,
                &card,
                &[CardState::ChoosingReason],
                CardState::AwaitingReason,
                &actor,
            )
            .await?
            {
                return busy_or_stale(&app, &q, &card).await;
            }
            courtesy(toast(&app.bot, &q, t.toast_working).await);
            ask_for_reason(&app, &card, &actor).await
        }
        Press::Cancel(_) => {
            let from = [CardState::ChoosingReason, CardState::AwaitingReason];
            if !app.store.cancel_reason(card.id, &from).await? {
                return busy_or_stale(&app, &q, &card).await;
            }
            courtesy(toast(&app.bot, &q, t.toast_cancelled).await);
            if let Some(prompt) = card.prompt_message_id {
                let _ = app
                    .bot
                    .delete_message(app.chat, teloxide::types::MessageId(prompt))
                    .await;
            }
            app.refresh_card(card.id).await?;
            Ok(())
        }
        Press::Refresh(_) => {
            courtesy(toast(&app.bot, &q, t.toast_refreshed).await);
            refresh_one(&app, &card).await
        }
    }
}

/// Answering a callback query is a courtesy: when Telegram refuses it ("query is too old" after
/// a restart, a 5xx), the press still counts. Logs the failure and goes on.
fn courtesy(answered: HandlerResult) {
    if let Err(e) = answered {
        tracing::info!(error = %e, "could not answer a button press; carrying on");
    }
}

/// Moves a card between states for the reject flow; only approvers get here.
async fn claim(
    app: &App,
    card: &Card,
    from: &[CardState],
    to: CardState,
    actor: &Actor,
) -> anyhow::Result<bool> {
    Ok(app
        .store
        .claim(card.id, from, to, actor, Some(Action::Reject), None)
        .await?
        .is_some())
}

async fn busy_or_stale(app: &App, q: &CallbackQuery, card: &Card) -> HandlerResult {
    let t = app.texts();
    let now = app.store.card(card.id).await?;
    let text = match now {
        Some(c)
            if matches!(
                c.state,
                CardState::Deciding | CardState::AwaitingReason | CardState::ChoosingReason
            ) =>
        {
            let name = c.actor.map(|a| a.name).unwrap_or_default();
            fill(t.alert_busy, &[("name", &name)])
        }
        _ => t.alert_not_applicable.to_owned(),
    };
    courtesy(alert(&app.bot, q, text).await);
    Ok(())
}

/// Answers the press at once, then makes the decision. The answer's fate does not decide
/// whether the decision is made.
async fn decide_answering(
    app: &App,
    q: &CallbackQuery,
    card: &Card,
    actor: &Actor,
    action: Action,
    reason: Option<String>,
) -> HandlerResult {
    let t = app.texts();
    match decision::begin(app, card, actor, action, reason, Via::Button).await? {
        Begin::Claimed(claim) => {
            courtesy(toast(&app.bot, q, t.toast_working).await);
            decision::execute(app, claim).await?;
            Ok(())
        }
        Begin::Busy(name) => {
            courtesy(alert(&app.bot, q, fill(t.alert_busy, &[("name", &name)])).await);
            Ok(())
        }
        Begin::Unsettled => {
            courtesy(alert(&app.bot, q, t.alert_unsettled.to_owned()).await);
            app.refresh_card(card.id).await?;
            Ok(())
        }
        Begin::NotApplicable => {
            courtesy(alert(&app.bot, q, t.alert_not_applicable.to_owned()).await);
            app.refresh_card(card.id).await?;
            Ok(())
        }
    }
}

/// Sends the ForceReply prompt that asks the approver for a reason.
async fn ask_for_reason(app: &App, card: &Card, actor: &Actor) -> HandlerResult {
    let t = app.texts();
    let nickname = match app.store.applicant(&card.appid).await? {
        Some(s) => s.applicant.nickname.unwrap_or_default(),
        None => String::new(),
    };
    let text = fill(
        t.prompt_reason,
        &[
            ("name", &mention(actor)),
            ("nickname", &escape(&clean(&nickname, 64, false))),
            ("appid", &escape(card.appid.as_str())),
        ],
    );
    let guard = app.lock_card(card.id).await;
    let mut request = app
        .bot
        .send_message(app.chat, text)
        .parse_mode(ParseMode::Html)
        .reply_markup(ForceReply::new().selective());
    if let Some(message_id) = card.message_id {
        request = request.reply_parameters(
            ReplyParameters::new(teloxide::types::MessageId(message_id))
                .allow_sending_without_reply(),
        );
    }
    let prompt = request.await?;
    app.store.set_prompt(card.id, prompt.id.0).await?;
    drop(guard);
    app.refresh_card(card.id).await?;
    Ok(())
}

/// A reply to a reason prompt, from the approver who asked for it, becomes the refusal reason.
async fn on_reply(app: Arc<App>, message: Message, me: Me) -> HandlerResult {
    let (Some(replied), Some(from), Some(text)) = (
        message.reply_to_message(),
        message.from.as_ref(),
        message.text(),
    ) else {
        return Ok(());
    };
    if message.chat.id != app.chat || replied.from.as_ref().is_none_or(|u| u.id != me.id) {
        return Ok(());
    }
    let mut card = app.store.card_by_prompt(app.chat.0, replied.id.0).await?;
    if card.is_none() {
        // The prompt may be out but not yet recorded: wait for the cards awaiting a reason.
        for waiting in app.store.awaiting_reason_cards(app.chat.0).await? {
            drop(app.lock_card(waiting).await);
        }
        card = app.store.card_by_prompt(app.chat.0, replied.id.0).await?;
    }
    let Some(card) = card else {
        return Ok(());
    };
    let t = app.texts();
    if posted_anonymously(&message) {
        app.bot
            .send_message(app.chat, escape(t.anonymous_cannot_decide))
            .parse_mode(ParseMode::Html)
            .reply_parameters(ReplyParameters::new(message.id).allow_sending_without_reply())
            .await?;
        return Ok(());
    }
    let Some(actor) = card.actor.as_ref().filter(|a| a.id == from.id.0) else {
        return Ok(());
    };
    let reason = clean(text, usize::MAX, false);
    if reason.is_empty() {
        return Ok(());
    }
    if reason.chars().count() > REASON_MAX_CHARS {
        // The new prompt becomes the card's prompt (recorded under the card's lock, like the
        // first), so the reply to it is the reason.
        let guard = app.lock_card(card.id).await;
        let prompt = app
            .bot
            .send_message(
                app.chat,
                fill(
                    t.reason_too_long_prompt,
                    &[
                        ("name", &mention(actor)),
                        ("max", &REASON_MAX_CHARS.to_string()),
                    ],
                ),
            )
            .parse_mode(ParseMode::Html)
            .reply_parameters(ReplyParameters::new(message.id).allow_sending_without_reply())
            .reply_markup(ForceReply::new().selective())
            .await?;
        app.store.set_prompt(card.id, prompt.id.0).await?;
        drop(guard);
        return Ok(());
    }
    if !app.approvers.is_approver(&app.bot, app.chat, from.id).await {
        return Ok(());
    }
    let actor = Actor::from_user(from);
    decision::decide(
        &app,
        &card,
        &actor,
        Action::Reject,
        Some(reason),
        Via::Button,
    )
    .await?;
    Ok(())
}

/// 🔄 Refresh: re-read WeChat; if nothing changed, clear a failure note so the card is plain again.
pub(crate) async fn refresh_one(app: &App, card: &Card) -> HandlerResult {
    if let Err(e) = crate::poller::poll_once(app).await {
        tracing::warn!(error = %e, "refresh failed");
        return Ok(());
    }
    let Some(now) = app.store.card(card.id).await? else {
        return Ok(());
    };
    if matches!(now.note, Some(Note::Failed { .. }))
        && matches!(now.state, CardState::Open | CardState::Closed)
    {
        // Compare-and-swap: a decision that began meanwhile keeps its card.
        app.store
            .settle_card(now.id, now.version, now.state, None)
            .await?;
    }
    app.refresh_card(card.id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret(b"abc-123", b"abc-123"));
        assert!(!same_secret(b"abc-124", b"abc-123"));
        assert!(!same_secret(b"abc-12", b"abc-123"));
        assert!(!same_secret(b"abc-1234", b"abc-123"));
        assert!(!same_secret(b"", b"abc-123"));
    }
}
