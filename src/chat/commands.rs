//! Slash commands. Decisions by command follow the same rules as buttons (approvers only, the
//! same atomic claim) and update the same card. Everything but `/chatid` works only in the team
//! chat.

use std::sync::Arc;

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::*;
use teloxide::types::{BotCommand, Me, ParseMode, ReplyParameters};
use teloxide::utils::command::BotCommands;

use crate::chat::HandlerResult;
use crate::domain::action::{Action, Via};
use crate::domain::applicant::{AppId, ApplyStatus};
use crate::domain::audit::AuditOutcome;
use crate::domain::card::Actor;
use crate::i18n::{Texts, fill};
use crate::lifecycle::app::App;
use crate::lifecycle::decision::{self, Outcome};
use crate::lifecycle::desk::no_preview;
use crate::lifecycle::quorum::{self, Ballot};
use crate::telegram::html::{TEXT_MAX_UTF16, clean, escape, nickname_html, telegram_len};
use crate::telegram::limiter::Lane;
use crate::telegram::view::{CardView, errcode_text, format_time, status_name};

/// The commands. Descriptions come from the chat texts ([`bot_commands`]), not doc comments, so
/// they exist in both languages.
#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    /// Help.
    Help,
    /// Start (Telegram sends it when a chat opens the bot).
    Start,
    /// Pending applicants.
    Pending,
    /// Applicants by status.
    List(String),
    /// Approve one.
    Approve(String),
    /// Reject one with a reason.
    Reject(String),
    /// Delete a refused or timed-out one.
    Delete(String),
    /// Poll now.
    Refresh,
    /// Audit log.
    History(String),
    /// Bot status.
    Status,
    /// This chat's id.
    Chatid,
    /// Direct messages for new cards and escalations (in a private chat).
    Subscribe,
    /// No more direct messages.
    Unsubscribe,
}

/// The command list registered with `setMyCommands`.
pub fn bot_commands(t: &Texts) -> Vec<BotCommand> {
    [
        ("help", t.cmd_help),
        ("pending", t.cmd_pending),
        ("list", t.cmd_list),
        ("approve", t.cmd_approve),
        ("reject", t.cmd_reject),
        ("delete", t.cmd_delete),
        ("refresh", t.cmd_refresh),
        ("history", t.cmd_history),
        ("status", t.cmd_status),
        ("chatid", t.cmd_chatid),
        ("subscribe", t.cmd_subscribe),
        ("unsubscribe", t.cmd_unsubscribe),
    ]
    .into_iter()
    .map(|(c, d)| BotCommand::new(c, d))
    .collect()
}

/// Most lines a listing shows before "…".
const LIST_MAX_LINES: usize = 30;

/// Handles a message that starts with `/`.
pub async fn on_command(app: Arc<App>, message: Message, me: Me) -> HandlerResult {
    let Some(text) = message.text() else {
        return Ok(());
    };
    let Ok(command) = Command::parse(text, me.username()) else {
        // Not ours (another bot's command, or /cmd@otherbot): stay quiet.
        return Ok(());
    };
    let t = app.texts();
    if command == Command::Chatid {
        let id = message.chat.id.0.to_string();
        return reply(&app, &message, fill(t.chat_id_is, &[("id", &id)])).await;
    }
    if matches!(command, Command::Subscribe | Command::Unsubscribe) {
        return reply(
            &app,
            &message,
            subscription(&app, &message, &command).await?,
        )
        .await;
    }
    if message.chat.id != app.desk.chat {
        if let Some(new) = team_chat_upgraded_to(&app).await
            && new == message.chat.id
        {
            let id = new.0.to_string();
            return reply(&app, &message, fill(t.team_chat_upgraded, &[("id", &id)])).await;
        }
        return reply(&app, &message, escape(t.not_team_chat)).await;
    }
    let Some(user) = message.from.as_ref() else {
        return Ok(());
    };
    let actor = crate::telegram::actor(user);
    let decides = matches!(
        command,
        Command::Approve(_) | Command::Reject(_) | Command::Delete(_)
    );
    // An anonymous admin posts as GroupAnonymousBot: nobody can tell who decided. Their button
    // presses carry their own id and are judged as usual.
    if decides && crate::chat::posted_anonymously(&message) {
        return reply(&app, &message, escape(t.anonymous_cannot_decide)).await;
    }
    if matches!(command, Command::Delete(_)) {
        if !app
            .approvers
            .may_delete_any(&app.desk.bot, app.desk.chat, user.id)
            .await
        {
            return reply(&app, &message, escape(t.not_deleter_command)).await;
        }
    } else if decides
        && !app
            .approvers
            .is_approver_of_any(&app.desk.bot, app.desk.chat, user.id)
            .await
    {
        return reply(&app, &message, escape(t.not_approver_command)).await;
    }
    let answer = match command {
        Command::Help | Command::Start => help(t),
        // Answered before the team-chat check: they belong in a private chat.
        Command::Subscribe | Command::Unsubscribe => subscription(&app, &message, &command).await?,
        Command::Pending => listing(&app, Some(ApplyStatus::Pending)).await?,
        Command::List(arg) => {
            let arg = arg.trim();
            if arg.is_empty() {
                listing(&app, None).await?
            } else {
                match ApplyStatus::parse_name(arg) {
                    Some(status) => listing(&app, Some(status)).await?,
                    None => escape(t.list_usage),
                }
            }
        }
        Command::Approve(arg) => {
            decide_on_one(&app, &arg, &actor, Action::Approve, t.approve_usage).await?
        }
        Command::Delete(arg) => {
            decide_on_one(&app, &arg, &actor, Action::Delete, t.delete_usage).await?
        }
        Command::Reject(arg) => {
            let (plugin, arg) = named_plugin(&app, &arg);
            let arg = arg.trim();
            let (first, rest) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
            let reason = clean(rest, usize::MAX, false);
            if first.is_empty() || reason.is_empty() {
                escape(t.reject_usage)
            } else if reason.chars().count() > crate::chat::REASON_MAX_CHARS {
                // Nothing to reply to: say to send the command again, and how long it may be.
                fill(
                    t.reject_reason_too_long,
                    &[
                        ("len", &reason.chars().count().to_string()),
                        ("max", &crate::chat::REASON_MAX_CHARS.to_string()),
                    ],
                )
            } else {
                match one_appid(first, t, t.reject_usage) {
                    Ok(appid) => match which_plugin(&app, plugin, &appid, "reject").await? {
                        Ok(plugin) => {
                            decide(&app, &plugin, &appid, &actor, Action::Reject, Some(reason))
                                .await?
                        }
                        Err(answer) => answer,
                    },
                    Err(usage) => usage,
                }
            }
        }
        Command::Refresh => refresh(&app).await,
        Command::History(arg) => history(&app, arg.trim()).await?,
        Command::Status => status(&app).await?,
        Command::Chatid => fill(t.chat_id_is, &[("id", &app.desk.chat.0.to_string())]),
    };
    reply(&app, &message, answer).await
}

/// `/refresh`: every plugin's WeChat read at once. One plugin says what it found or why it
/// could not; several say it each on a line under its name.
async fn refresh(app: &App) -> String {
    let t = app.texts();
    let polls = futures::future::join_all(app.plugins.iter().map(|poller| async move {
        (
            poller,
            crate::lifecycle::poller::poll_once(app, poller).await,
        )
    }))
    .await;
    let lines: Vec<String> = polls
        .into_iter()
        .map(|(poller, polled)| {
            let line = match polled {
                Ok(report) => fill(
                    t.refresh_done,
                    &[
                        ("n", &report.listed.to_string()),
                        ("new", &report.new_cards.to_string()),
                        ("updated", &report.updated_cards.to_string()),
                    ],
                ),
                Err(e) => fill(
                    t.refresh_failed,
                    &[("error", &escape(&describe_error(app, &e)))],
                ),
            };
            if app.several_plugins() {
                format!(
                    "{}\n{line}",
                    fill(t.plugin_line, &[("name", &escape(&poller.name))])
                )
            } else {
                line
            }
        })
        .collect();
    lines.join("\n")
}

/// The supergroup the team chat became, when Telegram says so. Only a basic group (an id without
/// the `-100` prefix of supergroups and channels) can be upgraded, so only then is Telegram asked
/// (getChat on the configured id answers `migrate_to_chat_id`). Logged and counted like every
/// other call refused for it.
async fn team_chat_upgraded_to(app: &App) -> Option<ChatId> {
    if app.desk.chat.0 >= 0 || app.desk.chat.0 <= -1_000_000_000_000 {
        return None;
    }
    match app.desk.bot.get_chat(app.desk.chat).await {
        Err(e @ teloxide::RequestError::MigrateToChatId(new)) => {
            crate::telegram::record_error(&e);
            Some(new)
        }
        _ => None,
    }
}

/// Why a `/refresh` failed, in plain text: WeChat's errcode in the chat's language when it sent one.
fn describe_error(app: &App, e: &crate::lifecycle::poller::PollError) -> String {
    match e {
        crate::lifecycle::poller::PollError::QuotaPaused { until } => fill(
            app.texts().quota_paused,
            &[("until", &format_time(*until, &app.settings.time_zone))],
        ),
        crate::lifecycle::poller::PollError::Standby { leader } => fill(
            app.texts().refresh_standby,
            &[(
                "leader",
                &escape(leader.as_deref().unwrap_or(app.texts().replica_none)),
            )],
        ),
        other => crate::lifecycle::poller::poll_error_text(other, app.lang()),
    }
}

async fn reply(app: &App, message: &Message, html: String) -> HandlerResult {
    if html.is_empty() {
        return Ok(());
    }
    // A person is waiting for this answer: it goes before new cards.
    app.desk
        .paced(message.chat.id, Lane::Decision, || {
            app.desk
                .bot
                .send_message(message.chat.id, html.clone())
                .parse_mode(ParseMode::Html)
                .link_preview_options(no_preview())
                .reply_parameters(ReplyParameters::new(message.id).allow_sending_without_reply())
                .send()
        })
        .await?;
    Ok(())
}

fn help(t: &Texts) -> String {
    let mut out = escape(t.help_header);
    for command in bot_commands(t) {
        out.push_str(&format!(
            "\n/{} — {}",
            command.command,
            escape(&command.description)
        ));
    }
    out
}

/// `/subscribe` and `/unsubscribe`: only in a private chat with the bot (the messages go there),
/// and subscribing only for approvers of the team chat.
async fn subscription(app: &App, message: &Message, command: &Command) -> anyhow::Result<String> {
    let t = app.texts();
    let Some(user) = message.from.as_ref().filter(|_| message.chat.is_private()) else {
        return Ok(escape(t.subscribe_private_only));
    };
    if *command == Command::Unsubscribe {
        let was = app.store.unsubscribe(user.id.0 as i64).await?;
        tracing::info!(user = user.id.0, was, "unsubscribed from direct messages");
        return Ok(escape(if was {
            t.unsubscribed
        } else {
            t.not_subscribed
        }));
    }
    if !app
        .approvers
        .is_approver_of_any(&app.desk.bot, app.desk.chat, user.id)
        .await
    {
        return Ok(escape(t.subscribe_not_approver));
    }
    let name = crate::telegram::actor(user).name;
    app.store.subscribe(user.id.0 as i64, &name).await?;
    tracing::info!(user = user.id.0, "subscribed to direct messages");
    Ok(escape(t.subscribed))
}

/// Parses the single appid argument, or says how to use the command.
fn one_appid(arg: &str, t: &Texts, usage: &str) -> Result<AppId, String> {
    let arg = arg.trim();
    if arg.is_empty() || arg.split_whitespace().count() > 1 {
        return Err(escape(usage));
    }
    AppId::parse(arg).map_err(|e| {
        fill(
            t.bad_appid,
            &[
                ("input", &escape(&clean(arg, 40, false))),
                ("why", &escape(&appid_error_text(&e, t))),
            ],
        )
    })
}

/// A command's leading plugin name, if its first word names a plugin the bot serves (by name,
/// in any case, or by AppID), and the rest of the argument. A plugin's name never reads as an
/// appid (the configuration refuses one that does), so `/approve <appid>` is never taken for a
/// name; a first word that names no plugin is left for the appid.
fn named_plugin<'a>(app: &'a App, arg: &'a str) -> (Option<Result<AppId, String>>, &'a str) {
    let arg = arg.trim();
    let Some((first, rest)) = arg.split_once(char::is_whitespace) else {
        return (None, arg);
    };
    if let Some(poller) = app
        .plugins
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(first) || p.plugin().as_str() == first)
    {
        return (Some(Ok(poller.plugin().clone())), rest.trim_start());
    }
    // Two words where one is wanted: a name the bot does not know, when several plugins are
    // served and the second word is the appid (`/approve Mpas wx…`).
    let second = rest.split_whitespace().next().unwrap_or_default();
    let looks_like_appid = |word: &str| word.starts_with("wx") && AppId::parse(word).is_ok();
    if app.several_plugins() && !looks_like_appid(first) && looks_like_appid(second) {
        let t = app.texts();
        let names: Vec<String> = app
            .plugins
            .iter()
            .map(|p| format!("<code>{}</code>", escape(&p.name)))
            .collect();
        return (
            Some(Err(fill(
                t.unknown_plugin,
                &[
                    ("name", &escape(&clean(first, 40, false))),
                    ("names", &names.join(", ")),
                ],
            ))),
            rest.trim_start(),
        );
    }
    (None, arg)
}

/// The plugin a decision by command is about: the one it names, else the only one the bot
/// serves, else the one plugin `appid` is listed in. Several: the answer lists one command per
/// plugin (`command` without its slash).
async fn which_plugin(
    app: &App,
    named: Option<Result<AppId, String>>,
    appid: &AppId,
    command: &str,
) -> anyhow::Result<Result<AppId, String>> {
    match named {
        Some(named) => return Ok(named),
        None if !app.several_plugins() => {
            if let Some(only) = app.plugins.first() {
                return Ok(Ok(only.plugin().clone()));
            }
        }
        None => {}
    }
    let mut listed = Vec::new();
    for poller in &app.plugins {
        if app
            .store
            .applicant(poller.plugin(), appid)
            .await?
            .is_some_and(|s| !s.gone)
        {
            listed.push(poller);
        }
    }
    Ok(match listed.as_slice() {
        [one] => Ok(one.plugin().clone()),
        [] => Err(fill(
            app.texts().unknown_applicant,
            &[("appid", &escape(appid.as_str()))],
        )),
        several => {
            let choices: Vec<String> = several
                .iter()
                .map(|p| {
                    format!(
                        "\n<code>/{command} {} {}</code>",
                        escape(&p.name),
                        escape(appid.as_str())
                    )
                })
                .collect();
            Err(fill(
                app.texts().ambiguous_plugin,
                &[
                    ("appid", &format!("<code>{}</code>", escape(appid.as_str()))),
                    ("choices", &choices.concat()),
                ],
            ))
        }
    })
}

/// `/approve` and `/delete`: `[plugin] <appid>`, then the decision (or how to use the command).
async fn decide_on_one(
    app: &Arc<App>,
    arg: &str,
    actor: &Actor,
    action: Action,
    usage: &str,
) -> anyhow::Result<String> {
    let (plugin, arg) = named_plugin(app, arg);
    let appid = match one_appid(arg, app.texts(), usage) {
        Ok(appid) => appid,
        Err(usage) => return Ok(usage),
    };
    match which_plugin(app, plugin, &appid, action.as_str()).await? {
        Ok(plugin) => decide(app, &plugin, &appid, actor, action, None).await,
        Err(answer) => Ok(answer),
    }
}

/// A decision by command: the same claim and card as a button press.
async fn decide(
    app: &Arc<App>,
    plugin: &AppId,
    appid: &AppId,
    actor: &Actor,
    action: Action,
    reason: Option<String>,
) -> anyhow::Result<String> {
    let t = app.texts();
    // The gate let anyone through who decides for some plugin: this one's approvers decide.
    let approvers = app.approvers.of(plugin.as_str());
    let user = teloxide::types::UserId(actor.id);
    if action == Action::Delete {
        if !approvers
            .may_delete(&app.desk.bot, app.desk.chat, user)
            .await
        {
            return Ok(escape(t.not_deleter_command));
        }
    } else if !approvers
        .is_approver(&app.desk.bot, app.desk.chat, user)
        .await
    {
        return Ok(escape(t.not_approver_command));
    }
    let Some(stored) = app
        .store
        .applicant(plugin, appid)
        .await?
        .filter(|s| !s.gone)
    else {
        return Ok(fill(
            t.unknown_applicant,
            &[("appid", &escape(appid.as_str()))],
        ));
    };
    if action.applies_to(stored.applicant.status) && action != Action::Delete {
        // A pending applicant always gets its card before a decision, so the decision shows on it.
        if let Err(e) = app.desk.ensure_card(plugin, appid).await {
            tracing::warn!(appid = %appid, error = %e, "could not post the card before a command decision");
        }
    }
    // An applicant refused or timed out before the bot first saw it pending never had a card:
    // the decision goes by WeChat's state all the same, on a card that is only a record.
    let card = if action.applies_to(stored.applicant.status) {
        app.store
            .card_or_record(app.desk.chat.0, plugin, appid)
            .await?
    } else {
        app.store.card_for(app.desk.chat.0, plugin, appid).await?
    };
    let Some(card) = card else {
        return Ok(not_applicable(
            app,
            appid,
            Some(stored.applicant.status),
            action,
            None,
        ));
    };
    let outcome = if action == Action::Approve {
        let appid_html = format!("<code>{}</code>", escape(appid.as_str()));
        let filled = |template: &str, count: usize, needed: u32| {
            fill(
                template,
                &[
                    ("appid", &appid_html),
                    ("n", &count.to_string()),
                    ("needed", &needed.to_string()),
                    ("left", &(needed as usize).saturating_sub(count).to_string()),
                ],
            )
        };
        match quorum::approve(app, &card, actor, Via::Command).await? {
            Ballot::Decide(begun) => decision::finish(app, begun).await?,
            Ballot::Counted { count, needed } => {
                if let Err(e) = app.desk.refresh_card(card.id).await {
                    tracing::warn!(card = card.id, error = %e, "could not show a vote on the card");
                }
                return Ok(filled(t.cmd_voted, count, needed));
            }
            Ballot::AlreadyVoted { count, needed } => {
                return Ok(filled(t.cmd_already_voted, count, needed));
            }
        }
    } else {
        decision::decide(app, &card, actor, action, reason, Via::Command).await?
    };
    let line = match outcome {
        Outcome::Busy(_) => {
            escape(&crate::chat::presses::refusal(app, card.id, Some(action)).await?)
        }
        Outcome::Unsettled => escape(t.alert_unsettled),
        Outcome::NotApplicable => {
            // What the card knows of how it got there (who decided, when), if it knows.
            let now = app.store.applicant(plugin, appid).await?;
            // Deleted meanwhile (by this very bot, as the card tells): its last status is no
            // longer what it is.
            let status = match &now {
                Some(n) if n.gone => None,
                Some(n) => Some(n.applicant.status),
                None => Some(stored.applicant.status),
            };
            let known = match (app.store.card(card.id).await?, now) {
                (Some(card), Some(now)) if card.note.is_some() => {
                    Some(app.desk.view(&now, &card).outcome_line())
                }
                _ => None,
            };
            return Ok(not_applicable(app, appid, status, action, known));
        }
        Outcome::Done | Outcome::Failed(_) | Outcome::Unknown | Outcome::Scheduled(_) => {
            let (Some(card), Some(stored)) = (
                app.store.card(card.id).await?,
                app.store.applicant(plugin, appid).await?,
            ) else {
                return Ok(String::new());
            };
            let view = CardView {
                applicant: &stored.applicant,
                gone: stored.gone,
                card: &card,
                reasons: &app.settings.reject_reasons,
                lang: app.lang(),
                tz: &app.settings.time_zone,
                before: stored.before.as_ref(),
                approvals_required: app.settings.approvals_required,
                uncounted: Vec::new(),
                plugin: app.settings.plugin_name(plugin.as_str()),
            };
            view.outcome_line()
        }
    };
    let link = card.message_id.and_then(|m| app.desk.message_link(m));
    let appid_html = match link {
        Some(link) => format!("<a href=\"{link}\">{}</a>", escape(appid.as_str())),
        None => format!("<code>{}</code>", escape(appid.as_str())),
    };
    Ok(fill(
        t.decided_reply,
        &[("appid", &appid_html), ("line", &line)],
    ))
}

/// The answer to a command's decision that cannot be made: the appid, its status in WeChat as
/// last read (`None`: no longer listed), the action, and what the card records of how it got
/// there (`known`).
fn not_applicable(
    app: &App,
    appid: &AppId,
    status: Option<ApplyStatus>,
    action: Action,
    known: Option<String>,
) -> String {
    let t = app.texts();
    let status = status.map_or_else(|| t.status_gone.to_owned(), |s| status_name(s, t));
    let mut out = fill(
        t.cmd_not_applicable,
        &[
            ("appid", &format!("<code>{}</code>", escape(appid.as_str()))),
            ("status", &escape(&status)),
            ("action", crate::telegram::view::action_name(action, t)),
        ],
    );
    if let Some(line) = known {
        out.push('\n');
        out.push_str(&line);
    }
    out
}

/// Why a string is not an appid, in the chat's language.
fn appid_error_text(e: &crate::domain::applicant::AppIdError, t: &Texts) -> String {
    use crate::domain::applicant::{APPID_MAX_LEN, AppIdError};
    match e {
        AppIdError::Empty => t.appid_empty.to_owned(),
        AppIdError::TooLong(len) => fill(
            t.appid_too_long,
            &[
                ("len", &len.to_string()),
                ("max", &APPID_MAX_LEN.to_string()),
            ],
        ),
        AppIdError::TooShort => t.appid_too_short.to_owned(),
        AppIdError::BadCharacter => t.appid_bad_character.to_owned(),
    }
}

/// `/pending` and `/list`: one line per applicant with a link to its card, oldest application
/// first (the first WeChat times out).
async fn listing(app: &App, status: Option<ApplyStatus>) -> anyhow::Result<String> {
    let t = app.texts();
    // The plugins the bot serves: one taken out of its configuration is decided elsewhere.
    let rows: Vec<_> = app
        .store
        .applicants_with_cards(app.desk.chat.0, status)
        .await?
        .into_iter()
        .filter(|row| app.poller(&row.applicant.plugin).is_some())
        .collect();
    let status_label = status.map(|s| status_name(s, t)).unwrap_or_default();
    if rows.is_empty() {
        return Ok(match status {
            Some(ApplyStatus::Pending) => escape(t.pending_none),
            None => escape(t.list_all_none),
            Some(_) => fill(t.list_none, &[("status", &escape(&status_label))]),
        });
    }
    let mut out = match status {
        Some(ApplyStatus::Pending) => fill(t.pending_header, &[("n", &rows.len().to_string())]),
        // No status word to name: every status is listed, each line saying its own.
        None => fill(t.list_all_header, &[("n", &rows.len().to_string())]),
        Some(_) => fill(
            t.list_header,
            &[
                ("status", &escape(&status_label)),
                ("n", &rows.len().to_string()),
            ],
        ),
    };
    // Room for the "left out" line at its longest.
    let more = |n: usize| fill(t.list_more, &[("n", &n.to_string())]);
    let mut used = telegram_len(&out) + telegram_len(&format!("\n{}", more(rows.len())));
    let mut shown = 0;
    // Grouped by plugin (the rows come in plugin order), each group under its name.
    let mut group: Option<&AppId> = None;
    for row in rows.iter().take(LIST_MAX_LINES) {
        let (a, card) = (&row.applicant.applicant, &row.card);
        let header = match app.settings.plugin_name(row.applicant.plugin.as_str()) {
            Some(name) if group != Some(&row.applicant.plugin) => {
                format!("\n{}", fill(t.plugin_line, &[("name", &escape(name))]))
            }
            _ => String::new(),
        };
        group = Some(&row.applicant.plugin);
        let name = nickname_html(a.nickname.as_deref(), t);
        let link = match card
            .as_ref()
            .and_then(|c| c.message_id)
            .and_then(|m| app.desk.message_link(m))
        {
            Some(url) => format!("<a href=\"{url}\">{}</a>", t.card_link),
            None if card.as_ref().is_some_and(|c| c.message_id.is_some()) => String::new(),
            None => t.no_card_link.to_owned(),
        };
        let status_part = if status.is_none() {
            format!(" · {}", status_name(a.status, t))
        } else {
            String::new()
        };
        let line = format!(
            "{header}\n• <b>{name}</b> <code>{}</code>{status_part} {link}",
            escape(a.appid.as_str())
        );
        let len = telegram_len(&line);
        if used + len > TEXT_MAX_UTF16 {
            break;
        }
        used += len;
        out.push_str(&line);
        shown += 1;
    }
    if rows.len() > shown {
        out.push('\n');
        out.push_str(&more(rows.len() - shown));
    }
    Ok(out)
}

/// Most entries `/history` shows; Telegram's length limit may cut it shorter.
const HISTORY_MAX_LINES: usize = 30;

/// Most entries `/history` reads to count what it leaves out ("N+" beyond).
const HISTORY_SCAN: usize = 1000;

/// `/history [appid]`: the latest decisions, newest first, as many as fit in one message, then a
/// line saying how many were left out. Never longer than Telegram takes, so it always arrives.
async fn history(app: &App, arg: &str) -> anyhow::Result<String> {
    let t = app.texts();
    // A plugin's name, alone or before an appid, keeps to that plugin.
    let arg = arg.trim();
    let (first, rest) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
    let (plugin, arg) = match app.plugins.iter().find(|p| {
        !first.is_empty() && (p.name.eq_ignore_ascii_case(first) || p.plugin().as_str() == first)
    }) {
        Some(poller) => (Some(poller.plugin().clone()), rest.trim()),
        None => (None, arg),
    };
    let appid = if arg.is_empty() {
        None
    } else {
        match AppId::parse(arg) {
            Ok(id) => Some(id),
            Err(e) => {
                return Ok(fill(
                    t.bad_appid,
                    &[
                        ("input", &escape(&clean(arg, 40, false))),
                        ("why", &escape(&appid_error_text(&e, t))),
                    ],
                ));
            }
        }
    };
    let entries = app
        .store
        .history(plugin.as_ref(), appid.as_ref(), HISTORY_SCAN as i64)
        .await?;
    if entries.is_empty() {
        return Ok(escape(t.history_none));
    }
    let total = |shown: usize| {
        let left = entries.len() - shown;
        if entries.len() == HISTORY_SCAN {
            format!("{left}+")
        } else {
            left.to_string()
        }
    };
    let more = |left: &str| match appid {
        Some(_) => fill(t.history_more_of_one, &[("n", left)]),
        None => fill(t.history_more, &[("n", left)]),
    };
    // Room for the header and the "left out" line at their longest.
    let reserve = telegram_len(&fill(
        t.history_header,
        &[("n", &entries.len().to_string())],
    )) + 1
        + telegram_len(&more(&total(0)));
    let mut used = reserve;
    let mut lines = String::new();
    let mut shown = 0;
    for e in entries.iter().take(HISTORY_MAX_LINES) {
        let line = history_line(app, e);
        let len = telegram_len(&line);
        if used + len > TEXT_MAX_UTF16 {
            break;
        }
        used += len;
        lines.push_str(&line);
        shown += 1;
    }
    let mut out = fill(t.history_header, &[("n", &shown.to_string())]);
    out.push_str(&lines);
    if shown < entries.len() {
        out.push('\n');
        out.push_str(&more(&total(shown)));
    }
    Ok(out)
}

/// One `/history` entry, starting with its line break.
fn history_line(app: &App, e: &crate::domain::audit::HistoryEntry) -> String {
    let t = app.texts();
    let when = format_time(e.at, &app.settings.time_zone);
    // Named, not mentioned: an @username in a message notifies its owner each time someone
    // reads the history.
    let who = escape(&clean(
        e.actor_name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('@'),
        64,
        false,
    ));
    let action = crate::telegram::view::action_name(e.action, t);
    let result = match e.result {
        AuditOutcome::Ok => t.history_ok,
        AuditOutcome::Error => t.history_error,
        AuditOutcome::Unknown => t.history_unknown,
        AuditOutcome::InFlight => t.history_in_flight,
        AuditOutcome::Vote => t.history_vote,
        AuditOutcome::Withdrawn => t.history_withdrawn,
        AuditOutcome::Scheduled => t.history_scheduled,
        AuditOutcome::Undone => t.history_undone,
    };
    let of_plugin = if app.several_plugins() {
        let name = app
            .plugins
            .iter()
            .find(|p| p.plugin().as_str() == e.plugin)
            .map_or(e.plugin.as_str(), |p| p.name.as_str());
        format!(" · {}", escape(name))
    } else {
        String::new()
    };
    let mut line = format!(
        "\n• {when} {who} {action} <code>{}</code>{of_plugin} → {result}",
        escape(&e.appid),
    );
    if let Some(code) = e.errcode {
        line.push_str(&fill(
            t.aside,
            &[("text", &escape(&errcode_text(code, app.lang())))],
        ));
    }
    if let Some(reason) = &e.reason {
        line.push_str(&format!(
            " — {}",
            escape(&clean(reason, crate::chat::REASON_MAX_CHARS, false))
        ));
    }
    line
}

/// `/status`: each plugin's polls, token and applicants (under its name when there are
/// several), then Telegram's conflicts and the replicas, once.
async fn status(app: &App) -> anyhow::Result<String> {
    let t = app.texts();
    let when = |at: Option<i64>| {
        at.map_or_else(
            || t.status_never.to_owned(),
            |s| format_time(s, &app.settings.time_zone),
        )
    };
    let mut blocks = Vec::with_capacity(app.plugins.len());
    for poller in &app.plugins {
        let block = plugin_status(app, poller, &when).await?;
        blocks.push(if app.several_plugins() {
            format!(
                "{}\n{block}",
                fill(t.plugin_line, &[("name", &escape(&poller.name))])
            )
        } else {
            block
        });
    }
    let mut text = blocks.join("\n\n");
    if let Some(conflict) = app.telegram_conflicts.current(crate::domain::now_secs()) {
        text.push('\n');
        text.push_str(&fill(
            t.status_telegram_conflict,
            &[
                ("n", &conflict.count.to_string()),
                ("since", &when(Some(conflict.since))),
            ],
        ));
    }
    text.push('\n');
    text.push_str(&replica_line(app, &when));
    Ok(text)
}

/// One plugin's part of `/status`.
async fn plugin_status(
    app: &App,
    poller: &crate::lifecycle::plugin::Poller,
    when: &(dyn Fn(Option<i64>) -> String + Sync),
) -> anyhow::Result<String> {
    let t = app.texts();
    let health = poller.health.lock().map(|h| h.clone()).unwrap_or_default();
    let counts = app.store.counts(poller.plugin(), app.desk.chat.0).await?;
    let token = poller.wechat.tokens().state().await;
    let mut token_text = format!(
        "{} · {}",
        token.mode,
        if token.cached {
            t.status_token_cached
        } else {
            t.status_token_none
        },
    );
    if let Some(s) = token.refresh_in_secs {
        token_text.push_str(" · ");
        token_text.push_str(&fill(
            t.status_token_refresh,
            &[(
                "in",
                &crate::telegram::view::format_duration(std::time::Duration::from_secs(s), t),
            )],
        ));
    }
    let mut text = fill(
        t.status_text,
        &[
            ("last_ok", &when(health.last_ok_at)),
            ("last_poll", &when(health.last_poll_at)),
            (
                "last_error",
                &escape(
                    health
                        .last_error_text
                        .as_deref()
                        .unwrap_or(t.status_no_error),
                ),
            ),
            ("failures", &health.failures_in_row.to_string()),
            ("token", &escape(&token_text)),
            ("pending", &counts.pending.to_string()),
            ("approved", &counts.approved.to_string()),
            ("refused", &counts.refused.to_string()),
            ("expired", &counts.expired.to_string()),
            ("cards", &counts.cards.to_string()),
        ],
    );
    if let Some(oldest) = &counts.oldest {
        let waited = (crate::domain::now_secs() - oldest.since).max(0) as u64;
        text.push('\n');
        text.push_str(&fill(
            t.status_oldest,
            &[
                ("name", &nickname_html(oldest.nickname.as_deref(), t)),
                ("appid", &escape(&oldest.appid)),
                (
                    "waited",
                    &crate::telegram::view::format_duration(
                        std::time::Duration::from_secs(waited),
                        t,
                    ),
                ),
                ("since", &when(Some(oldest.since))),
            ],
        ));
    }
    if let Some(until) = health.quota_paused_until
        && crate::domain::now_secs() < until
    {
        text.push('\n');
        text.push_str(&fill(
            t.status_quota_rests,
            &[("until", &when(Some(until)))],
        ));
    }
    if poller.wechat.paging_broken() {
        text.push('\n');
        text.push_str(t.status_paging_broken);
    }
    Ok(text)
}

/// `/status`'s line on the replicas: whether this one leads, else which does and since when.
fn replica_line(app: &App, when: &dyn Fn(Option<i64>) -> String) -> String {
    let t = app.texts();
    let view = app.leadership.view();
    let me = escape(&app.leadership.me);
    match (&view.term, &view.leader) {
        (Some(term), _) if app.leadership.leads() => fill(
            t.status_replica_leads,
            &[("me", &me), ("since", &when(Some(term.since)))],
        ),
        (_, Some((leader, since))) if *leader != app.leadership.me => fill(
            t.status_replica_standby,
            &[
                ("me", &me),
                ("leader", &escape(leader)),
                ("since", &when(Some(*since))),
            ],
        ),
        _ => fill(t.status_replica_none, &[("me", &me)]),
    }
}
