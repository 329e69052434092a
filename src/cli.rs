//! The command line: `run` (the bot, the default), `check` (is the configuration right?),
//! `healthcheck` (for Docker's HEALTHCHECK), `sandbox` (a local WeChat for staging and trials) and
//! `demo` (sandbox, fake Telegram, the bot and a chat page, with nothing to configure). Logging and
//! signal handling live here so `main.rs` only calls [`main`].

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::redact::{RedactingStderr, redact};
use crate::report::one_line_anyhow;
use crate::store::{DatabaseState, Store, StoreError};
use crate::testbed::sandbox::{Sandbox, SandboxConfig};
use crate::wechat::{TokenMode, WeChatClient};

/// Telegram chat-ops for WeChat mini-program plugin applications.
#[derive(Parser, Debug)]
#[command(name = "wxplugin-bot", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Try it with nothing to configure: sandbox, fake Telegram, the bot and a live chat page.
    Demo {
        /// Address of the chat page.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Pending applicants at start.
        #[arg(long, default_value_t = 5)]
        applicants: usize,
        /// A new applicant arrives every this many seconds (0: never).
        #[arg(long, default_value_t = 40)]
        arrive_every_secs: u64,
        /// Chat language of the bot and of the page.
        #[arg(long, default_value = "en", value_parser = ["en", "zh"])]
        lang: String,
    },
    /// Run the bot (the default).
    #[command(after_help = crate::config::VARIABLES_HELP)]
    Run,
    /// Validate the configuration, open the database, fetch a token, read one page of
    /// applicants and ask Telegram about the bot and the team chat.
    #[command(after_help = crate::config::VARIABLES_HELP)]
    Check,
    /// Exit 0 when the running bot's /healthz says healthy, 1 otherwise (for Docker's HEALTHCHECK).
    Healthcheck {
        /// The bot's METRICS_ADDR (0.0.0.0 means this host; empty means unset, as for the bot).
        #[arg(long, env = "METRICS_ADDR")]
        addr: Option<String>,
    },
    /// Copy the team's SQLite state (DATABASE_URL) into an empty PostgreSQL database, in one
    /// transaction; a target that holds anything is refused. Stop the bot first, then start it
    /// with DATABASE_URL set to the target.
    MigrateDb {
        /// The PostgreSQL database to fill: postgres://USER:PASSWORD@HOST:PORT/DATABASE.
        #[arg(long)]
        to: String,
        /// The SQLite database to copy (default: DATABASE_URL, else sqlite:wxplugin-bot.db).
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite:wxplugin-bot.db")]
        from: String,
    },
    /// Serve a local simulator of WeChat's token and devplugin endpoints.
    Sandbox {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8900")]
        addr: SocketAddr,
        /// Pending applicants to seed.
        #[arg(long, default_value_t = 8)]
        applicants: usize,
        /// A new applicant arrives every this many seconds (0: never).
        #[arg(long, default_value_t = 0)]
        arrive_every_secs: u64,
        /// Seed for the generated applicants.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Answer as WeChat does inside Cloud Run's cloud call: calls need no access token and
        /// answers carry x-openapi-seqid (for WECHAT_TOKEN_MODE=cloudrun).
        #[arg(long)]
        cloud_run: bool,
        /// Serve this many plugins' WeChat, each with its own AppID, secret and applicants: the
        /// first at the root, plugin k under /plugin/k (1 to 50).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=50))]
        plugins: u16,
    },
}

/// Whether log lines are JSON (`LOG_FORMAT=json`), so the program's last words are JSON too.
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets up logging: human-readable, or JSON with `LOG_FORMAT=json`; level from `RUST_LOG`.
/// Every line, in either format and from every crate (`log` records included), is written
/// through [`RedactingStderr`], so a secret a library quotes never reaches the log. Colour only
/// when stderr is a terminal and `NO_COLOR` is unset or empty (<https://no-color.org>): a
/// journal or a log file gets no escape codes. Call it after `.env` is read, which may set
/// `RUST_LOG` and `LOG_FORMAT`.
pub fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(RedactingStderr);
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.trim().eq_ignore_ascii_case("json"));
    JSON_LOGS.store(json, std::sync::atomic::Ordering::Relaxed);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The program's last words on stderr: `wxplugin-bot: …`, as a JSON log line when the logs are
/// JSON (so every line a log shipper reads parses), else as plain text.
fn say_last(line: &str) {
    let line = redact(line);
    if JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::error!("wxplugin-bot: {line}");
    } else {
        eprintln!("wxplugin-bot: {line}");
    }
}

/// A token cancelled on Ctrl-C or SIGTERM: the one shutdown path.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        trigger.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down: finishing decisions in flight");
        trigger.cancel();
    });
    token
}

fn settings_or_exit() -> Result<Settings, ExitCode> {
    let settings = Settings::from_env().map_err(|errors| {
        for e in &errors.0 {
            say_last(&format!("configuration error: {e}"));
        }
        ExitCode::from(2)
    })?;
    settings.register_secrets();
    Ok(settings)
}

/// The process: sets the allocator up, then runs [`main`] on a multi-threaded runtime.
pub fn run() -> ExitCode {
    crate::alloc::limit_arenas();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(main()),
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The whole program.
pub async fn main() -> ExitCode {
    // Before the command line (METRICS_ADDR for healthcheck) and before logging (RUST_LOG,
    // LOG_FORMAT): a `.env` in the working directory counts for both. A malformed one is named
    // by the configuration's check (Settings::from_env reads it again).
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let settings = match settings_or_exit() {
                Ok(s) => s,
                Err(code) => return code,
            };
            crate::bot::run(settings, shutdown_on_signal()).await
        }
        Command::Check => {
            let settings = match settings_or_exit() {
                Ok(s) => s,
                Err(code) => return code,
            };
            check(settings).await
        }
        Command::Demo {
            addr,
            applicants,
            arrive_every_secs,
            lang,
        } => {
            let config = crate::testbed::demo::DemoConfig {
                addr,
                applicants,
                arrive_every: (arrive_every_secs > 0)
                    .then(|| Duration::from_secs(arrive_every_secs)),
                lang,
                ..crate::testbed::demo::DemoConfig::default()
            };
            crate::testbed::demo::run(config, shutdown_on_signal()).await
        }
        Command::Healthcheck { addr } => healthcheck(addr).await,
        Command::MigrateDb { to, from } => migrate_db(&from, &to).await,
        Command::Sandbox {
            addr,
            applicants,
            arrive_every_secs,
            seed,
            cloud_run,
            plugins,
        } => {
            let config = SandboxConfig {
                applicants,
                seed,
                arrival_every: (arrive_every_secs > 0)
                    .then(|| Duration::from_secs(arrive_every_secs)),
                cloud_run,
                ..SandboxConfig::default()
            };
            sandbox(addr, config, usize::from(plugins)).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say_last(&one_line_anyhow(&e));
            exit_code(&e)
        }
    }
}

/// `migrate-db`: the SQLite database must exist (copying a new empty one would only hide a
/// wrong path); it is brought to this version's schema as a start would, then copied.
async fn migrate_db(from: &str, to: &str) -> anyhow::Result<()> {
    crate::store::postgres_url(to)?;
    if let DatabaseState::WillBeCreated { path } = Store::inspect(from).await? {
        return Err(StoreError::Open {
            url: from.to_owned(),
            cause: format!("there is no database at {path} to copy"),
        }
        .into());
    }
    let store = Store::open(from).await?;
    let copied = store.copy_to_postgres(to).await;
    store.close().await;
    let copied = copied?;
    println!(
        "copied into {}: {} applicants, {} cards, {} audit rows, {} subscribers, {} kept refresh tokens, clock at {}",
        crate::store::without_password(to),
        copied.applicants,
        copied.cards,
        copied.audit,
        copied.subscribers,
        copied.authorizers,
        copied.tick
    );
    Ok(())
}

/// 2 for a failure only the operator can fix (the configuration, a database that cannot be
/// opened or is not what the migrations made): the systemd unit does not restart on it, since
/// every restart would stop the same way. 1 for everything else, which a restart may cure.
fn exit_code(error: &anyhow::Error) -> ExitCode {
    let operator = error.chain().any(|cause| {
        cause.is::<crate::config::ConfigError>()
            || cause.is::<crate::config::ConfigErrors>()
            || cause
                .downcast_ref::<StoreError>()
                .is_some_and(StoreError::needs_the_operator)
    });
    if operator {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// `check`: the configuration, WeChat (a token and one page of applicants) and Telegram (the
/// token, and that the bot is in `TEAM_CHAT_ID` and may post there). Prints what works; fails
/// with one line per problem, so an operator fixes them all in one round.
async fn check(settings: Settings) -> anyhow::Result<()> {
    println!("configuration: ok");
    let mut problems = Vec::new();
    let mut found = vec![check_database(&settings).await];
    for plugin in &settings.plugins {
        // A plugin named in PLUGINS_FILE is named on each of its lines (the single plugin of
        // the WECHAT_* variables needs no name).
        let named = |line: String| {
            if plugin.name == plugin.wechat.appid {
                line
            } else {
                line.replacen("wechat: ", &format!("wechat ({}): ", plugin.name), 1)
                    .replace("\nhint: ", &format!("\nhint ({}): ", plugin.name))
            }
        };
        found.push(
            check_wechat(&settings, plugin)
                .await
                .map(named)
                .map_err(named),
        );
    }
    found.push(check_telegram(&settings).await);
    for found in found {
        match found {
            Ok(line) => println!("{}", redact(&line)),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(problems.join("\n"))
    }
}

/// The database's side of `check`: does `DATABASE_URL` open, and what will the start do to it?
/// Nothing is created or changed.
async fn check_database(settings: &Settings) -> Result<String, String> {
    match Store::inspect(&settings.database_url).await {
        Ok(DatabaseState::WillBeCreated { path }) => Ok(format!(
            "database: {path} does not exist yet; the bot creates it at start"
        )),
        Ok(DatabaseState::Ready { path, pending: 0 }) => {
            Ok(format!("database: {path} opens; no migrations pending"))
        }
        Ok(DatabaseState::Ready { path, pending }) => Ok(format!(
            "database: {path} opens; {pending} migrations pending (applied at start)"
        )),
        Err(e) => Err(format!("database: {}", crate::report::one_line(&e))),
    }
}

/// WeChat's side of `check`: a token and the first page of applicants. In authorizer mode the
/// refresh token WeChat may return with the authorizer token must be kept, so the whole chain is
/// run only on a database the bot has made (it keeps the token there); before that, the chain is
/// checked up to the component token and the rest left to the bot's first start.
async fn check_wechat(
    settings: &Settings,
    plugin: &crate::config::PluginSettings,
) -> Result<String, String> {
    let config = plugin.wechat.clone();
    let store = match &config.token_mode {
        TokenMode::Authorizer(_) => match Store::inspect(&settings.database_url).await {
            Ok(DatabaseState::Ready { pending: 0, .. }) => {
                Store::open(&settings.database_url).await.ok()
            }
            _ => None,
        },
        _ => None,
    };
    let wechat = match (&config.token_mode, &store) {
        (_, Some(store)) => WeChatClient::with_keeper(
            config,
            std::sync::Arc::new(crate::lifecycle::plugin::KeptInStore(store.clone())),
        ),
        _ => WeChatClient::new(config),
    }
    .map_err(|e| format!("wechat: {e}"))?;
    let checked = if matches!(wechat.tokens().mode(), TokenMode::Authorizer(_)) && store.is_none() {
        match wechat.tokens().component_token_ok().await {
            Ok(_) => Ok(
                "wechat: component token ok (mode authorizer); the authorizer token is left \
                 to the bot's first start, which keeps the refresh token WeChat returns with it \
                 in a database this version has made"
                    .to_owned(),
            ),
            Err(e) => Err(wechat_problem(&e)),
        }
    } else {
        read_first_page(&wechat).await
    };
    if let Some(store) = store {
        store.close().await;
    }
    checked
}

/// `check`'s line for the first page of applicants.
async fn read_first_page(wechat: &WeChatClient) -> Result<String, String> {
    match wechat.apply_list(1, wechat.page_size()).await {
        Ok(page) => {
            let pending = page.iter().filter(|a| a.status.is_decidable()).count();
            let token = wechat.tokens().state().await;
            if wechat.tokens().mode().is_cloud_run() {
                if wechat.answered_outside_cloud_run() {
                    return Err(
                        "wechat: WeChat answered without x-openapi-seqid: this is not going \
                         through Cloud Run's cloud call (WECHAT_TOKEN_MODE=cloudrun works only \
                         inside WeChat Cloud Run, with WECHAT_API_BASE=http://api.weixin.qq.com)"
                            .to_owned(),
                    );
                }
                return Ok(format!(
                    "wechat: cloud call ok (mode cloudrun, no token); first page has {} applicants, {pending} pending",
                    page.len()
                ));
            }
            Ok(format!(
                "wechat: token ok (mode {}); first page has {} applicants, {pending} pending",
                token.mode,
                page.len()
            ))
        }
        Err(e) => Err(wechat_problem(&e)),
    }
}

/// A WeChat failure as `check` prints it: the error, its meaning, and what to do.
fn wechat_problem(e: &crate::wechat::WeChatError) -> String {
    let mut line = format!("wechat: {e}");
    // In English like every other line of check, whatever BOT_LANG the chat speaks.
    if let Some(meaning) = e.meaning(crate::i18n::Lang::En) {
        line.push_str(&format!(" — {meaning}"));
    }
    if let Some(hint) = e.hint() {
        line.push_str(&format!("\nhint: {hint}"));
    }
    line
}

/// Telegram's side of `check`: getMe (is the token good?), then getChat and getChatMember for
/// the bot in `TEAM_CHAT_ID` (is it there, and may it post?). Nothing is sent to the chat.
async fn check_telegram(settings: &Settings) -> Result<String, String> {
    use teloxide::prelude::Requester as _;
    use teloxide::types::ChatMemberKind;

    let bot = crate::bot::telegram_bot(settings).map_err(|e| format!("telegram: {e:#}"))?;
    let chat = settings.team_chat_id;
    let me = bot.get_me().await.map_err(|e| match e {
        teloxide::RequestError::Api(teloxide::ApiError::InvalidToken) => {
            "telegram: getMe was refused (401 Unauthorized): TELOXIDE_TOKEN is wrong or was \
             revoked; copy the bot's current token from @BotFather"
                .to_owned()
        }
        other => format!(
            "telegram: getMe failed: {other} (check TELOXIDE_API_URL and that Telegram is reachable)"
        ),
    })?;
    let info = bot
        .get_chat(chat)
        .await
        .map_err(|e| chat_problem(chat, &e))?;
    let member = bot
        .get_chat_member(chat, me.id)
        .await
        .map_err(|e| chat_problem(chat, &e))?;
    let cannot_post = |why: &str| {
        format!(
            "telegram: the bot is in TEAM_CHAT_ID {chat} but cannot post there ({why}): let it \
             send messages, or make it an administrator"
        )
    };
    let standing = match &member.kind {
        ChatMemberKind::Owner(_) => "the owner",
        ChatMemberKind::Administrator(admin) => {
            if info.is_channel() && !admin.can_post_messages {
                return Err(cannot_post("an administrator without \"Post messages\""));
            }
            "an administrator"
        }
        ChatMemberKind::Member(_) => {
            if info.permissions().is_some_and(|p| !p.can_send_messages()) {
                return Err(cannot_post("members of this chat may not send messages"));
            }
            "a member"
        }
        ChatMemberKind::Restricted(r) if !r.is_member => return Err(not_in_chat(chat, "it left")),
        ChatMemberKind::Restricted(r) if !r.can_send_messages => {
            return Err(cannot_post("it is restricted: it may not send messages"));
        }
        ChatMemberKind::Restricted(_) => "a restricted member that may send messages",
        ChatMemberKind::Left => return Err(not_in_chat(chat, "it left")),
        ChatMemberKind::Banned(_) => return Err(not_in_chat(chat, "it was removed")),
    };
    Ok(format!(
        "telegram: token ok (@{}); TEAM_CHAT_ID {chat} is \"{}\", where the bot is {standing} and may post",
        me.username(),
        info.title().unwrap_or_default()
    ))
}

/// One line naming what is wrong when getChat or getChatMember about the team chat fails.
fn chat_problem(chat: teloxide::types::ChatId, e: &teloxide::RequestError) -> String {
    use teloxide::{ApiError, RequestError};
    match e {
        RequestError::MigrateToChatId(new) => format!(
            "telegram: TEAM_CHAT_ID {chat} is a group that was upgraded to a supergroup: set \
             TEAM_CHAT_ID={new}"
        ),
        RequestError::Api(
            api @ (ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel
            | ApiError::ChatNotFound),
        ) => not_in_chat(chat, &api.to_string()),
        RequestError::Api(ApiError::Unknown(text))
            if text.starts_with("Forbidden") || text.contains("not a member") =>
        {
            not_in_chat(chat, text)
        }
        other => format!("telegram: could not read TEAM_CHAT_ID {chat}: {other}"),
    }
}

fn not_in_chat(chat: teloxide::types::ChatId, why: &str) -> String {
    format!(
        "telegram: the bot is not a member of TEAM_CHAT_ID {chat} ({why}): add it to the team \
         chat, or correct TEAM_CHAT_ID (/chatid in the chat shows it)"
    )
}

async fn healthcheck(addr: Option<String>) -> anyhow::Result<()> {
    let Some(addr) = addr.as_deref().map(str::trim).filter(|a| !a.is_empty()) else {
        anyhow::bail!("METRICS_ADDR is not set: the bot serves /healthz only when it is");
    };
    let Ok(mut addr) = addr.parse::<SocketAddr>() else {
        anyhow::bail!(
            "METRICS_ADDR: '{addr}' is not an address to listen on (such as 127.0.0.1:9100)"
        );
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(4))
        .build()?
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("no answer from http://{addr}/healthz: {e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        println!("healthy: {body}");
        Ok(())
    } else {
        anyhow::bail!("unhealthy ({status}): {body}")
    }
}

async fn sandbox(addr: SocketAddr, config: SandboxConfig, plugins: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    println!("WeChat sandbox on http://{bound}");
    if plugins > 1 {
        // Each plugin's table for PLUGINS_FILE, its secret in the variable the table names.
        println!("  serving {plugins} plugins; a PLUGINS_FILE for them:");
        let mut sandboxes = Vec::with_capacity(plugins);
        for k in 1..=plugins {
            let plugin = Sandbox::plugin_config(&config, k);
            let base = if k == 1 {
                format!("http://{bound}")
            } else {
                format!("http://{bound}/plugin/{k}")
            };
            println!(
                "\n[[plugin]]\nname = \"P{k}\"\nappid = \"{}\"\nsecret_env = \"P{k}_SECRET\"  # {}\napi_base = \"{base}\"",
                plugin.appid, plugin.secret
            );
            sandboxes.push(Sandbox::new(plugin));
        }
        println!("\n  control API under /__sandbox/ (plugin k: /plugin/k/__sandbox/)");
        let shutdown = shutdown_on_signal();
        Sandbox::serve_several(
            sandboxes,
            listener,
            async move { shutdown.cancelled().await },
        )
        .await?;
        return Ok(());
    }
    println!("  appid {}  secret {}", config.appid, config.secret);
    println!(
        "  point the bot at it with WECHAT_API_BASE=http://{bound}; control API under /__sandbox/"
    );
    let shutdown = shutdown_on_signal();
    Sandbox::new(config)
        .serve(listener, async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
