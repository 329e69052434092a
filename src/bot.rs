//! The running process: [`run`] wires settings, store, WeChat and Telegram into an app, starts the
//! poller beside the dispatcher and stops both through one shutdown path; updates arrive by long
//! polling or by webhook, and `/metrics` and `/healthz` are served where the app is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::{ExposeSecret, SecretString};
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::*;
use teloxide::types::Me;
use teloxide::update_listeners::{Polling, UpdateListener};
use tokio_util::sync::CancellationToken;

use crate::chat::{commands, schema};
use crate::config::Settings;
use crate::domain::now_secs;
use crate::lifecycle::app::App;
use crate::lifecycle::decision;
use crate::lifecycle::leader::Step;
use crate::store::Store;
use crate::wechat::WeChatClient;

pub mod listen;

use listen::Connections;

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
    let clients = settings
        .plugins
        .iter()
        .map(|plugin| {
            WeChatClient::with_keeper(
                plugin.wechat.clone(),
                Arc::new(crate::lifecycle::plugin::KeptInStore(store.clone())),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bot = telegram_bot(&settings)?;
    let app = App::new(settings, clients, store, bot);
    serve(app, shutdown).await
}

/// Rows an older version kept, from before plugins were named, belong to the one plugin it
/// served: named for the plugin before anything reads them when the bot serves one. Beside
/// several, which one they belong to cannot be told, and the start stops saying what to do.
async fn name_kept_rows(app: &App) -> anyhow::Result<()> {
    if let [only] = app.plugins.as_slice() {
        let claimed = app.store.claim_unnamed(only.plugin()).await?;
        if claimed > 0 {
            tracing::info!(rows = claimed, plugin = %only.name, "rows kept from before plugins were named now belong to this plugin");
        }
        return Ok(());
    }
    let unnamed = app.store.unnamed_rows().await?;
    anyhow::ensure!(
        unnamed == 0,
        "the database holds {unnamed} rows from before plugins were named, which belong to the one plugin the older version served; start once with only that plugin (WECHAT_APPID, or a PLUGINS_FILE naming it alone) to name them, then with every plugin"
    );
    Ok(())
}

/// Runs an already wired [`App`] (tests and the demo build their own).
pub async fn serve(app: Arc<App>, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Before anything is counted.
    let telemetry = match app.settings.metrics_addr {
        Some(addr) => Some((addr, crate::telemetry::install()?)),
        None => None,
    };
    // A stop ends every wait for Telegram's budgets at once: a burst of paced cards takes
    // minutes, and the unit gives a stop 30 s before SIGKILL.
    let stopping = Arc::clone(&app);
    let stop_signal = shutdown.clone();
    tokio::spawn(async move {
        stop_signal.cancelled().await;
        stopping.stop_waiting();
    });
    name_kept_rows(&app).await?;
    let me = start_up(&app).await?;
    // The first step of the lease comes before any update is taken: a replica that leads has
    // settled what its last stop interrupted before a press can meet a stale card.
    let first = match app.leadership.step(&app.store, true).await {
        Step::Took(epoch) => match begin_term_renewing(&app, epoch).await {
            Ok(true) => Some(epoch),
            Ok(false) => {
                app.store.follow().await;
                None
            }
            // As in a later term: a failure taking up the duties (a database error mid-way,
            // such as a connection PostgreSQL ended) hands the lease on, and this replica goes on
            // as a standby that tries again at the lease's next step.
            Err(e) => {
                tracing::error!(error = %crate::report::one_line_anyhow(&e), "could not take up the leader's duties; handing the lease on");
                app.store.follow().await;
                app.leadership.release(&app.store).await;
                None
            }
        },
        _ => None,
    };
    let leading = tokio::spawn(lead(Arc::clone(&app), me.clone(), first, shutdown.clone()));
    let received = listen(&app, &me, telemetry, &shutdown).await;
    if let Err(e) = &received {
        tracing::error!(error = %crate::report::one_line_anyhow(e), "could not receive updates from Telegram; stopping");
    }
    shutdown.cancel();
    let led = match leading.await {
        Ok(led) => led,
        Err(e) => Err(anyhow::anyhow!("the lease's task failed: {e}")),
    };
    // Undo windows end their waits at the stop (their deadlines are stored); a write one has
    // begun is finished and recorded.
    app.windows.close();
    app.windows.wait().await;
    app.store.close().await;
    received.context("the dispatcher could not start")?;
    led?;
    tracing::info!("bot stopped");
    Ok(())
}

/// Everything before the first update that every replica does: Telegram knows the bot and the
/// command list is registered.
async fn start_up(app: &App) -> anyhow::Result<Me> {
    let me = app
        .desk
        .bot
        .get_me()
        .await
        .context("Telegram refused the bot (check TELOXIDE_TOKEN and TELOXIDE_API_URL)")?;
    if let Err(e) = app
        .desk
        .bot
        .set_my_commands(commands::bot_commands(app.texts()))
        .await
    {
        tracing::warn!(error = %e, "could not register the command list with Telegram");
    }
    Ok(me)
}

/// What a replica does when it takes the lease, before it polls: its writes are fenced by the
/// new epoch, the poller's memory is loaded from the store, and what the last leader left
/// unfinished (a decision, a card edit) is settled.
async fn begin_term(app: &App, epoch: i64) -> anyhow::Result<()> {
    app.store.lead(epoch).await?;
    app.warm_up().await?;
    let mut recovered = 0;
    for poller in &app.plugins {
        recovered += decision::recover_abandoned(app, poller.plugin()).await?;
    }
    if recovered > 0 {
        tracing::info!(
            recovered,
            "reconciled decisions interrupted by the last stop"
        );
    }
    let unserved = app.close_unserved_cards().await?;
    if unserved > 0 {
        tracing::info!(
            unserved,
            "closed the cards of plugins this bot no longer serves"
        );
    }
    let refreshed = app.desk.refresh_stale_cards().await?;
    if refreshed > 0 {
        tracing::info!(
            refreshed,
            "brought cards up to date that the last stop left behind"
        );
    }
    Ok(())
}

/// [`begin_term`], renewing the lease meanwhile: settling a decision the last leader left waits
/// out its write (its window and WeChat's timeout, seconds), which may outlast a short lease.
/// `Ok(false)` when the lease was lost meanwhile (another replica leads; this one stands by).
async fn begin_term_renewing(app: &App, epoch: i64) -> anyhow::Result<bool> {
    let begin = begin_term(app, epoch);
    tokio::pin!(begin);
    loop {
        tokio::select! {
            begun = &mut begin => return begun.map(|()| true),
            () = tokio::time::sleep(app.leadership.every()) => {
                if !matches!(app.leadership.step(&app.store, false).await, Step::Kept) {
                    tracing::warn!(epoch, "the lease ended while this replica took up the leader's duties; standing by");
                    return Ok(false);
                }
            }
        }
    }
}

/// A term's duties once begun, until `term` ends: the poller (with reminders) and, in
/// long-polling mode, reading Telegram's updates, which only one process may do.
async fn run_term(app: Arc<App>, me: Me, term: CancellationToken) -> anyhow::Result<()> {
    app.reminders_afresh();
    let pollers: Vec<_> = app
        .plugins
        .iter()
        .map(|poller| {
            tokio::spawn(crate::lifecycle::poller::run(
                Arc::clone(&app),
                poller.plugin().clone(),
                app.settings.poll_interval,
                term.clone(),
            ))
        })
        .collect();
    let received = if app.settings.webhook.is_none() {
        let mut dispatcher = dispatcher(&app);
        stop_on(&dispatcher, &term);
        listen_by_polling(&app, &me, &mut dispatcher, &term).await
    } else {
        term.cancelled().await;
        Ok(())
    };
    term.cancel();
    for poller in pollers {
        let _ = poller.await;
    }
    received
}

/// The lease, for the process's life: renews it while this replica leads, tries to take it
/// while another does, and starts and ends terms accordingly. At a stop the term's duties end
/// first, then the lease is handed on.
async fn lead(
    app: Arc<App>,
    me: Me,
    first: Option<i64>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    type Duties = (
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    );
    let start = |app: &Arc<App>| -> Duties {
        let token = shutdown.child_token();
        let duties = tokio::spawn(run_term(Arc::clone(app), me.clone(), token.clone()));
        (token, duties)
    };
    let mut term: Option<Duties> = first.map(|_| start(&app));
    let result = loop {
        let ended = async {
            match term.as_mut() {
                Some((_, duties)) => duties.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            () = tokio::time::sleep(app.leadership.every()) => {}
            done = ended => {
                term = None;
                match done {
                    Ok(Ok(())) if shutdown.is_cancelled() => break Ok(()),
                    Ok(Ok(())) => break Err(anyhow::anyhow!("the update listener ended by itself")),
                    Ok(Err(e)) => break Err(e),
                    Err(e) => break Err(anyhow::anyhow!("a term's task failed: {e}")),
                }
            }
        }
        match app.leadership.step(&app.store, false).await {
            Step::Took(epoch) => match begin_term_renewing(&app, epoch).await {
                Ok(true) => term = Some(start(&app)),
                Ok(false) => app.store.follow().await,
                Err(e) => {
                    tracing::error!(error = %crate::report::one_line_anyhow(&e), "could not take up the leader's duties; handing the lease on");
                    app.store.follow().await;
                    app.leadership.release(&app.store).await;
                }
            },
            Step::Lost => {
                if let Some((token, duties)) = term.take() {
                    token.cancel();
                    let _ = duties.await;
                }
                app.store.follow().await;
            }
            Step::Kept | Step::Standby => {}
        }
    };
    if let Some((token, duties)) = term.take() {
        token.cancel();
        if let Ok(Err(e)) = duties.await {
            tracing::warn!(error = %crate::report::one_line_anyhow(&e), "the term ended with an error");
        }
    }
    app.store.follow().await;
    app.leadership.release(&app.store).await;
    result
}

/// The update dispatcher over the chat's handler tree.
fn dispatcher(app: &Arc<App>) -> BotDispatcher {
    Dispatcher::builder(app.desk.bot.clone(), schema())
        .dependencies(dptree::deps![Arc::clone(app)])
        // Presses on different cards must not wait for each other's WeChat calls; the store's
        // atomic claim keeps presses on one card apart.
        .distribution_function(|_| None::<()>)
        .default_handler(|_| async {})
        .build()
}

/// Stops `dispatcher` when `shutdown` fires.
fn stop_on(dispatcher: &BotDispatcher, shutdown: &CancellationToken) {
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
}

/// The dispatcher the bot runs.
type BotDispatcher = Dispatcher<Bot, anyhow::Error, ()>;

/// The telemetry exporter and the address `/metrics` and `/healthz` are served on.
type Telemetry = (SocketAddr, PrometheusHandle);

/// Serves `/metrics` and `/healthz` when asked to and, in webhook mode, receives updates for the
/// process's whole life (every replica serves them), until `shutdown`. In long-polling mode the
/// updates are read by the leader's term instead ([`run_term`]).
async fn listen(
    app: &Arc<App>,
    me: &Me,
    telemetry: Option<Telemetry>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    // On the webhook's own address the telemetry routes join the webhook's server (one port).
    let shared = |addr: SocketAddr| {
        app.settings
            .webhook
            .as_ref()
            .is_some_and(|w| w.listen == addr)
    };
    // Both listeners draw on the one process's descriptors.
    let connections = Connections::for_this_process();
    let (alone, with_webhook) = match telemetry {
        Some(t) if shared(t.0) => (None, Some(t)),
        other => (other, None),
    };
    if let Some(telemetry) = alone {
        serve_telemetry(app, telemetry, shutdown, Arc::clone(&connections)).await?;
    }
    match &app.settings.webhook {
        None => {
            if !app.leadership.leads() {
                tracing::info!(replica = %app.leadership.me, bot = %me.username(), chat = app.desk.chat.0, store = app.store.backend(), "bot started as a standby (long polling): it reads updates once it leads");
            }
            shutdown.cancelled().await;
            Ok(())
        }
        Some(webhook) => {
            let mut dispatcher = dispatcher(app);
            stop_on(&dispatcher, shutdown);
            listen_by_webhook(
                app,
                me,
                &mut dispatcher,
                webhook,
                with_webhook,
                shutdown,
                connections,
            )
            .await
        }
    }
}

/// Serves `/metrics` and `/healthz` on their own address until `shutdown`.
async fn serve_telemetry(
    app: &Arc<App>,
    (addr, handle): Telemetry,
    shutdown: &CancellationToken,
    connections: Arc<Connections>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("METRICS_ADDR: cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!("metrics on http://{bound}/metrics, health on http://{bound}/healthz");
    let router = telemetry_router(Arc::clone(app), handle);
    let stop = shutdown.clone();
    listen::spawn_http(
        listener,
        router,
        async move { stop.cancelled().await },
        "metrics",
        connections,
    );
    Ok(())
}

/// Long polling (`getUpdates`), after dropping any webhook Telegram still has for the bot.
async fn listen_by_polling(
    app: &Arc<App>,
    me: &Me,
    dispatcher: &mut BotDispatcher,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    // The long poll must end before the HTTP timeout does.
    let long_poll = app
        .settings
        .telegram_timeout
        .saturating_sub(Duration::from_secs(2))
        .clamp(Duration::from_secs(1), Duration::from_secs(10));
    let mut listener = Polling::builder(app.desk.bot.clone())
        .timeout(long_poll)
        .delete_webhook()
        .await
        .build();
    stop_listener_too(&mut listener, shutdown);
    tracing::info!(bot = %me.username(), chat = app.desk.chat.0, approvers = %app.approvers.describe(), store = app.store.backend(), "bot started (long polling)");
    let errors = CountingErrorHandler::new("getUpdates failed", Arc::clone(app));
    Ok(dispatcher
        .try_dispatch_with_listener(listener, errors)
        .await?)
}

/// Webhook mode: registers the webhook, serves it (with the telemetry routes when they share its
/// address) and refuses requests without the secret token.
async fn listen_by_webhook(
    app: &Arc<App>,
    me: &Me,
    dispatcher: &mut BotDispatcher,
    webhook: &crate::config::Webhook,
    telemetry: Option<Telemetry>,
    shutdown: &CancellationToken,
    connections: Arc<Connections>,
) -> anyhow::Result<()> {
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
    if app.store.is_postgres() {
        // Replicas share the webhook: each registers it, and none removes it when it stops (the
        // others still serve it; a long-polling start removes it first anyway).
        app.desk
            .bot
            .set_webhook(webhook.url.clone())
            .secret_token(webhook.secret.expose_secret().to_owned())
            .await
            .context("Telegram refused the webhook (setWebhook)")?;
        let (mut listener, stopped, router) =
            teloxide::update_listeners::webhooks::axum_no_setup(options);
        stop_listener_too(&mut listener, shutdown);
        return serve_webhook(
            app,
            me,
            dispatcher,
            webhook,
            (listener, stopped, router),
            telemetry,
            tcp,
            connections,
        )
        .await;
    }
    let (mut listener, stopped, router) =
        teloxide::update_listeners::webhooks::axum_to_router(app.desk.bot.clone(), options)
            .await
            .context("Telegram refused the webhook (setWebhook)")?;
    stop_listener_too(&mut listener, shutdown);
    serve_webhook(
        app,
        me,
        dispatcher,
        webhook,
        (listener, stopped, router),
        telemetry,
        tcp,
        connections,
    )
    .await
}

/// The webhook's listener and router, served until its listener stops.
#[allow(clippy::too_many_arguments)]
async fn serve_webhook<L>(
    app: &Arc<App>,
    me: &Me,
    dispatcher: &mut BotDispatcher,
    webhook: &crate::config::Webhook,
    (listener, stopped, router): (
        L,
        impl std::future::Future<Output = ()> + Send + 'static,
        Router,
    ),
    telemetry: Option<Telemetry>,
    tcp: tokio::net::TcpListener,
    connections: Arc<Connections>,
) -> anyhow::Result<()>
where
    L: UpdateListener<Err = std::convert::Infallible> + Send,
{
    let bound = tcp.local_addr()?;
    let mut router = refuse_without_secret(screen_updates(router), webhook.secret.clone());
    if let Some((_, handle)) = telemetry {
        router = router.merge(telemetry_router(Arc::clone(app), handle));
        tracing::info!("metrics on http://{bound}/metrics, health on http://{bound}/healthz");
    }
    listen::spawn_http(tcp, router, stopped, "webhook", connections);
    tracing::info!(bot = %me.username(), chat = app.desk.chat.0, approvers = %app.approvers.describe(), store = app.store.backend(), url = %webhook.url, listen = %bound, "bot started (webhook)");
    let errors = CountingErrorHandler::new("getUpdates failed", Arc::clone(app));
    Ok(dispatcher
        .try_dispatch_with_listener(listener, errors)
        .await?)
}

/// teloxide compares the secret with `!=`; this layer refuses wrong ones first, in constant time,
/// so its comparison only ever sees the right secret.
fn refuse_without_secret(router: Router, expected: SecretString) -> Router {
    router.layer(axum::middleware::from_fn(
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
    ))
}

/// Most bytes of one update the webhook reads: Telegram's are far smaller.
const UPDATE_MAX_BYTES: usize = 2 << 20;

/// Most characters of a parse error logged: serde quotes the values it meets, which come from
/// outside.
const PARSE_ERROR_MAX_CHARS: usize = 160;

/// teloxide logs an update that does not parse whole, at ERROR: a peer with the secret could fill
/// the log. This layer (behind the secret check) reads the body within [`UPDATE_MAX_BYTES`],
/// drops an update that does not parse with a line giving its size and the parse error, and
/// answers 200 as teloxide does, so Telegram does not send it again.
fn screen_updates(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            if request.method() != axum::http::Method::POST {
                return next.run(request).await;
            }
            let (parts, body) = request.into_parts();
            let bytes = match axum::body::to_bytes(body, UPDATE_MAX_BYTES).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::warn!(limit = UPDATE_MAX_BYTES, error = %e, "could not read a webhook body, or it was over the limit; refused");
                    return StatusCode::PAYLOAD_TOO_LARGE.into_response();
                }
            };
            if let Err(e) = serde_json::from_slice::<teloxide::types::Update>(&bytes) {
                let error: String = e.to_string().chars().take(PARSE_ERROR_MAX_CHARS).collect();
                tracing::error!(
                    bytes = bytes.len(),
                    error = %error,
                    "a webhook update did not parse; dropped it (the body is not logged)"
                );
                return StatusCode::OK.into_response();
            }
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        },
    ))
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

/// Compares secrets with `subtle`'s constant-time equality: the time taken depends only on the
/// lengths, never on where the first differing byte is.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    given.ct_eq(expected).into()
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
            crate::telegram::record_error(e);
            if matches!(
                e,
                teloxide::RequestError::Api(teloxide::ApiError::TerminatedByOtherGetUpdates)
            ) {
                if self.app.telegram_conflicts.record(now_secs()) {
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

/// `/metrics` and `/healthz`.
pub fn telemetry_router(app: Arc<App>, handle: PrometheusHandle) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(
                |State((_, handle)): State<(Arc<App>, PrometheusHandle)>| async move {
                    handle.run_upkeep();
                    // CPU, memory and descriptors as of this scrape.
                    crate::telemetry::collect_process();
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        handle.render(),
                    )
                },
            ),
        )
        .route("/healthz", get(healthz))
        .with_state((app, handle))
}

async fn healthz(State((app, _)): State<(Arc<App>, PrometheusHandle)>) -> Response {
    let health = crate::lifecycle::health::health(&app);
    let status = if health.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(health)).into_response()
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
