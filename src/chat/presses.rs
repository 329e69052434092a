//! Button presses and typed replies: each press is checked against the stored card (right chat,
//! right message, an approver) before it may start anything, and is answered at once.

use std::sync::Arc;

use teloxide::payloads::{AnswerCallbackQuerySetters, SendMessageSetters};
use teloxide::prelude::*;
use teloxide::types::{ForceReply, MaybeInaccessibleMessage, Me, ParseMode, ReplyParameters};

use crate::chat::{HandlerResult, REASON_MAX_CHARS, mention, posted_anonymously};
use crate::domain::action::{Action, Via};
use crate::domain::card::{Actor, Card, CardState, Note};
use crate::i18n::fill;
use crate::lifecycle::app::App;
use crate::lifecycle::decision::{self, Begin};
use crate::lifecycle::quorum::{self, Ballot, Withdrawal};
use crate::telegram::callback::{Press, reason_by_key};
use crate::telegram::html::{clean, escape, nickname_html};
use crate::telegram::limiter::Lane;

/// Where a press came from, once checked against the stored card.
struct Pressed {
    card: Card,
    actor: Actor,
}

/// Answers a press with an alert the presser must dismiss. Answers count against the bot's
/// overall flood budget, in the decision lane: a person is waiting.
async fn alert(app: &App, q: &CallbackQuery, text: String) -> HandlerResult {
    let text = callback_text(&text);
    app.desk
        .paced_global(Lane::Decision, || {
            app.desk
                .bot
                .answer_callback_query(q.id.clone())
                .text(text.clone())
                .show_alert(true)
                .send()
        })
        .await?;
    Ok(())
}

/// Answers a press with a short toast.
async fn toast(app: &App, q: &CallbackQuery, text: &str) -> HandlerResult {
    let text = callback_text(text);
    app.desk
        .paced_global(Lane::Decision, || {
            app.desk
                .bot
                .answer_callback_query(q.id.clone())
                .text(text.clone())
                .send()
        })
        .await?;
    Ok(())
}

/// Longest answer to a press Telegram takes (longer is refused, and the press spins on).
const CALLBACK_TEXT_MAX_CHARS: usize = 200;

/// `text` cut to what Telegram takes in a callback answer (names can be long), counted in
/// UTF-16 units as Telegram counts.
fn callback_text(text: &str) -> String {
    crate::telegram::html::cut_utf16(text, CALLBACK_TEXT_MAX_CHARS)
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
        Some(p) => app.desk.settled_card(p.card_id()).await?,
        None => None,
    };
    let genuine = match (&press, &card, message) {
        (Some(_), Some(card), Some((chat, message_id))) => {
            chat == app.desk.chat && card.chat_id == chat.0 && card.message_id == Some(message_id.0)
        }
        _ => false,
    };
    if let (Some(card), Some((chat, message_id)), false) = (&card, message, genuine)
        && chat == app.desk.chat
        && card.chat_id == chat.0
        && !app.store.knows_message(chat.0, message_id.0).await?
    {
        // A card message no card records: a copy Telegram took just before a kill, sent again
        // since. Its buttons can never work; take them away and point to the card that does.
        // Only the keyboard is touched, so even forged data cannot change what it says.
        tracing::info!(
            card = card.id,
            message = message_id.0,
            "a press on a stray copy of a card; removing its buttons"
        );
        let removed = app
            .desk
            .paced(chat, Lane::Decision, || {
                app.desk
                    .bot
                    .edit_message_reply_markup(chat, message_id)
                    .reply_markup(teloxide::types::InlineKeyboardMarkup::default())
                    .send()
            })
            .await;
        if let Err(e) = removed {
            tracing::warn!(card = card.id, error = %e, "could not remove a stray copy's buttons");
        }
        alert(app, q, t.alert_stray.to_owned()).await?;
        return Ok(None);
    }
    let (Some(press), Some(card), true) = (press, card, genuine) else {
        tracing::warn!(user = q.from.id.0, data = ?q.data, "rejected a press that matches no card");
        alert(app, q, t.alert_invalid.to_owned()).await?;
        return Ok(None);
    };
    let (allowed, refused) = match press {
        Press::Delete(_) => (
            app.approvers
                .of(card.plugin.as_str())
                .may_delete(&app.desk.bot, app.desk.chat, q.from.id)
                .await,
            t.alert_not_deleter,
        ),
        _ => (
            app.approvers
                .of(card.plugin.as_str())
                .is_approver(&app.desk.bot, app.desk.chat, q.from.id)
                .await,
            t.alert_not_approver,
        ),
    };
    if !allowed {
        tracing::info!(
            user = q.from.id.0,
            card = card.id,
            "a press by someone who may not do that"
        );
        alert(app, q, refused.to_owned()).await?;
        return Ok(None);
    }
    Ok(Some((
        press,
        Pressed {
            card,
            actor: crate::telegram::actor(&q.from),
        },
    )))
}

pub(crate) async fn on_press(app: Arc<App>, q: CallbackQuery) -> HandlerResult {
    let Some((press, Pressed { card, actor })) = check_press(&app, &q).await? else {
        return Ok(());
    };
    let t = app.texts();
    match press {
        Press::Approve(_) => match quorum::approve(&app, &card, &actor, Via::Button).await? {
            Ballot::Decide(begun) => answer_begun(&app, &q, &card, Action::Approve, begun).await,
            Ballot::Counted { count, needed } => {
                let text = fill_votes(t.toast_voted, count, needed);
                courtesy(toast(&app, &q, &text).await);
                app.desk.refresh_card(card.id).await?;
                Ok(())
            }
            Ballot::AlreadyVoted { count, needed } => {
                let text = fill_votes(t.alert_already_voted, count, needed);
                courtesy(alert(&app, &q, text).await);
                Ok(())
            }
        },
        Press::Withdraw(_) => match quorum::withdraw(&app, &card, &actor, Via::Button).await? {
            Withdrawal::Withdrawn { count, needed } => {
                let text = fill_votes(t.toast_withdrawn, count, needed);
                courtesy(toast(&app, &q, &text).await);
                app.desk.refresh_card(card.id).await?;
                Ok(())
            }
            Withdrawal::NotVoted => {
                courtesy(alert(&app, &q, t.alert_not_voted.to_owned()).await);
                Ok(())
            }
            Withdrawal::Closed => refuse(&app, &q, &card, Some(Action::Approve)).await,
        },
        Press::Delete(_) => decide_answering(&app, &q, &card, &actor, Action::Delete, None).await,
        Press::Reason(_, key) => {
            let Some(reason) = reason_by_key(&app.settings.reject_reasons, key).cloned() else {
                // The reasons changed since the button was drawn: show the current ones.
                courtesy(alert(&app, &q, t.alert_reason_gone.to_owned()).await);
                app.desk.refresh_card(card.id).await?;
                return Ok(());
            };
            if card.state != CardState::ChoosingReason {
                return refuse(&app, &q, &card, Some(Action::Reject)).await;
            }
            decide_answering(&app, &q, &card, &actor, Action::Reject, Some(reason)).await
        }
        Press::Retry(_) => {
            let action = match &card.note {
                Some(Note::Failed { action, .. }) => *action,
                // The last write may have happened: re-read instead of writing again.
                Some(Note::Unknown { .. }) => {
                    courtesy(toast(&app, &q, t.toast_refreshed).await);
                    return refresh_one(&app, &card).await;
                }
                _ => return refuse(&app, &q, &card, card.action).await,
            };
            decide_answering(&app, &q, &card, &actor, action, card.reason.clone()).await
        }
        Press::Reject(_) => {
            let from = [CardState::Open];
            if reason_step(&app, &q, &card, &actor, &from, CardState::ChoosingReason).await? {
                app.desk.refresh_card(card.id).await?;
            }
            Ok(())
        }
        Press::OtherReason(_) => {
            let from = [CardState::ChoosingReason];
            if reason_step(&app, &q, &card, &actor, &from, CardState::AwaitingReason).await? {
                ask_for_reason(&app, &card, &actor).await?;
            }
            Ok(())
        }
        Press::Cancel(_) => {
            let from = [CardState::ChoosingReason, CardState::AwaitingReason];
            if !app.store.cancel_reason(card.id, &from).await? {
                return refuse(&app, &q, &card, None).await;
            }
            courtesy(toast(&app, &q, t.toast_cancelled).await);
            if let Some(prompt) = card.prompt_message_id {
                let _ = app
                    .desk
                    .paced(app.desk.chat, Lane::Decision, || {
                        app.desk
                            .bot
                            .delete_message(app.desk.chat, teloxide::types::MessageId(prompt))
                            .send()
                    })
                    .await;
            }
            app.desk.refresh_card(card.id).await?;
            Ok(())
        }
        Press::Refresh(_) => {
            courtesy(toast(&app, &q, t.toast_refreshed).await);
            refresh_one(&app, &card).await
        }
        Press::Undo(_) => {
            if app.store.undo_scheduled(&card, &actor, Via::Button).await? {
                tracing::info!(appid = %card.appid, by = %actor.name, "a scheduled decision undone");
                courtesy(toast(&app, &q, t.toast_undone).await);
                app.desk.refresh_card(card.id).await?;
                return Ok(());
            }
            // The window ended (the decision is being made or made), or a poll settled it.
            match app.store.card(card.id).await? {
                Some(now) if now.state == CardState::Open => {
                    courtesy(alert(&app, &q, t.alert_nothing_to_undo.to_owned()).await);
                    Ok(())
                }
                Some(now) => refuse(&app, &q, &now, now.action).await,
                None => Ok(()),
            }
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

/// Takes a card one step into the reject flow and answers the press; whether it moved (when it
/// did not, the presser was told why).
async fn reason_step(
    app: &App,
    q: &CallbackQuery,
    card: &Card,
    actor: &Actor,
    from: &[CardState],
    to: CardState,
) -> anyhow::Result<bool> {
    if !claim(app, card, from, to, actor).await? {
        refuse(app, q, card, Some(Action::Reject)).await?;
        return Ok(false);
    }
    courtesy(toast(app, q, app.texts().toast_working).await);
    Ok(true)
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

/// Answers a press that did nothing with why, from the card as it is now: who holds it and
/// since when, or what already happened ([`crate::telegram::view::CardView::refusal`]).
/// `action` is what the press asked for (`None`: ↩ Cancel).
async fn refuse(
    app: &App,
    q: &CallbackQuery,
    card: &Card,
    action: Option<Action>,
) -> HandlerResult {
    courtesy(alert(app, q, refusal(app, card.id, action).await?).await);
    Ok(())
}

/// Why `action` on card `card_id` does nothing now, in the chat's language (plain text).
pub(crate) async fn refusal(
    app: &App,
    card_id: i64,
    action: Option<Action>,
) -> anyhow::Result<String> {
    let Some(card) = app.store.card(card_id).await? else {
        return Ok(app.texts().alert_invalid.to_owned());
    };
    let Some(stored) = app.store.applicant(&card.plugin, &card.appid).await? else {
        return Ok(app.texts().alert_invalid.to_owned());
    };
    Ok(app.desk.view(&stored, &card).refusal(action))
}

/// Answers the press at once, then makes the decision. The answer's fate does not decide
/// whether the decision is made.
async fn decide_answering(
    app: &Arc<App>,
    q: &CallbackQuery,
    card: &Card,
    actor: &Actor,
    action: Action,
    reason: Option<String>,
) -> HandlerResult {
    let begun = decision::begin(app, card, actor, action, reason, Via::Button).await?;
    answer_begun(app, q, card, action, begun).await
}

/// A quorum text with `{n}` votes of `{needed}` filled in, and the `{left}` still wanted.
pub(crate) fn fill_votes(template: &str, count: usize, needed: u32) -> String {
    let left = (needed as usize).saturating_sub(count);
    fill(
        template,
        &[
            ("n", &count.to_string()),
            ("needed", &needed.to_string()),
            ("left", &left.to_string()),
        ],
    )
}

/// Answers a press by what its claim came to: the decision goes ahead (the press answered
/// beside it), or the presser is told why not.
async fn answer_begun(
    app: &Arc<App>,
    q: &CallbackQuery,
    card: &Card,
    action: Action,
    begun: Begin,
) -> HandlerResult {
    let t = app.texts();
    match begun {
        Begin::Claimed(claim) => {
            // The answer and the WeChat call go together: a paced answer (the overall budget
            // spent, a 429 pause) must not hold up the decision itself.
            let (answered, decided) = tokio::join!(
                toast(app, q, t.toast_working),
                decision::execute(app, claim)
            );
            courtesy(answered);
            decided?;
            Ok(())
        }
        Begin::Scheduled(window) => {
            let text = fill(
                t.toast_scheduled,
                &[
                    ("action", crate::telegram::view::action_name(action, t)),
                    (
                        "in",
                        &crate::telegram::view::format_duration(window.remaining(), t),
                    ),
                ],
            );
            decision::open_window(app, window);
            courtesy(toast(app, q, &text).await);
            app.desk.refresh_card(card.id).await?;
            Ok(())
        }
        Begin::Busy(_) => refuse(app, q, card, Some(action)).await,
        Begin::Unsettled => {
            courtesy(alert(app, q, t.alert_unsettled.to_owned()).await);
            app.desk.refresh_card(card.id).await?;
            Ok(())
        }
        Begin::NotApplicable => {
            refuse(app, q, card, Some(action)).await?;
            app.desk.refresh_card(card.id).await?;
            Ok(())
        }
    }
}

/// Sends the ForceReply prompt that asks the approver for a reason.
async fn ask_for_reason(app: &App, card: &Card, actor: &Actor) -> HandlerResult {
    let t = app.texts();
    let stored = app.store.applicant(&card.plugin, &card.appid).await?;
    let nickname = nickname_html(stored.and_then(|s| s.applicant.nickname).as_deref(), t);
    let text = fill(
        t.prompt_reason,
        &[
            ("name", &mention(actor)),
            ("nickname", &nickname),
            ("appid", &escape(card.appid.as_str())),
        ],
    );
    let guard = app.desk.lock_card(card.id).await;
    let prompt = app
        .desk
        .paced(app.desk.chat, Lane::Decision, || {
            let mut request = app
                .desk
                .bot
                .send_message(app.desk.chat, text.clone())
                .parse_mode(ParseMode::Html)
                .reply_markup(ForceReply::new().selective());
            if let Some(message_id) = card.message_id {
                request = request.reply_parameters(
                    ReplyParameters::new(teloxide::types::MessageId(message_id))
                        .allow_sending_without_reply(),
                );
            }
            request.send()
        })
        .await?;
    app.store.set_prompt(card.id, prompt.id.0).await?;
    drop(guard);
    app.desk.refresh_card(card.id).await?;
    Ok(())
}

/// A reply to a reason prompt, from the approver who asked for it, becomes the refusal reason.
pub(crate) async fn on_reply(app: Arc<App>, message: Message, me: Me) -> HandlerResult {
    let (Some(replied), Some(from), Some(text)) = (
        message.reply_to_message(),
        message.from.as_ref(),
        message.text(),
    ) else {
        return Ok(());
    };
    if message.chat.id != app.desk.chat || replied.from.as_ref().is_none_or(|u| u.id != me.id) {
        return Ok(());
    }
    let mut card = app
        .store
        .card_by_prompt(app.desk.chat.0, replied.id.0)
        .await?;
    if card.is_none() {
        // The prompt may be out but not yet recorded: wait for the cards awaiting a reason.
        for waiting in app.store.awaiting_reason_cards(app.desk.chat.0).await? {
            drop(app.desk.lock_card(waiting).await);
        }
        card = app
            .store
            .card_by_prompt(app.desk.chat.0, replied.id.0)
            .await?;
    }
    let Some(card) = card else {
        return Ok(());
    };
    let t = app.texts();
    if posted_anonymously(&message) {
        app.desk
            .paced(app.desk.chat, Lane::Decision, || {
                app.desk
                    .bot
                    .send_message(app.desk.chat, escape(t.anonymous_cannot_decide))
                    .parse_mode(ParseMode::Html)
                    .reply_parameters(
                        ReplyParameters::new(message.id).allow_sending_without_reply(),
                    )
                    .send()
            })
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
        let guard = app.desk.lock_card(card.id).await;
        let text = fill(
            t.reason_too_long_prompt,
            &[
                ("name", &mention(actor)),
                ("max", &REASON_MAX_CHARS.to_string()),
            ],
        );
        let prompt = app
            .desk
            .paced(app.desk.chat, Lane::Decision, || {
                app.desk
                    .bot
                    .send_message(app.desk.chat, text.clone())
                    .parse_mode(ParseMode::Html)
                    .reply_parameters(
                        ReplyParameters::new(message.id).allow_sending_without_reply(),
                    )
                    .reply_markup(ForceReply::new().selective())
                    .send()
            })
            .await?;
        app.store.set_prompt(card.id, prompt.id.0).await?;
        drop(guard);
        return Ok(());
    }
    if !app
        .approvers
        .of(card.plugin.as_str())
        .is_approver(&app.desk.bot, app.desk.chat, from.id)
        .await
    {
        return Ok(());
    }
    let actor = crate::telegram::actor(from);
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
    let Some(poller) = app.poller(&card.plugin) else {
        return Ok(());
    };
    if crate::lifecycle::poller::poll_once(app, poller)
        .await
        .is_err()
    {
        // The poll logged its failure, once.
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
    app.desk.refresh_card(card.id).await?;
    Ok(())
}
