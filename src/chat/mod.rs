//! The chat: what team members do in the team chat — press a card's buttons, type a refusal
//! reason, send a command — and the replies they get. Built on the lifecycle; nothing below
//! this layer knows a handler.

pub mod commands;
pub mod presses;

use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;

use crate::domain::card::Actor;
use crate::telegram::html::{clean, escape};

/// Handler errors are logged by the dispatcher; users already got their answer.
pub type HandlerResult = anyhow::Result<()>;

/// Longest typed refusal reason.
pub const REASON_MAX_CHARS: usize = 200;

/// The handler tree.
pub fn schema() -> UpdateHandler<anyhow::Error> {
    dptree::entry()
        .branch(Update::filter_callback_query().endpoint(presses::on_press))
        .branch(
            Update::filter_message()
                .branch(
                    dptree::filter(|m: Message| m.text().is_some_and(|t| t.starts_with('/')))
                        .endpoint(commands::on_command),
                )
                .branch(
                    dptree::filter(|m: Message| m.reply_to_message().is_some())
                        .endpoint(presses::on_reply),
                ),
        )
}

/// A mention of `actor` that Telegram shows as a link to them and that makes a selective
/// ForceReply show its reply box to them, with or without a username.
pub(crate) fn mention(actor: &Actor) -> String {
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
