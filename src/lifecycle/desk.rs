//! A team chat's card desk: the two Telegram operations everything else builds on — posting an
//! applicant's card (never losing one, never posting two) and re-rendering a card from stored
//! state (one edit at a time per card, tolerant of Telegram's rate limits and of people deleting
//! messages) — and every other call to that chat, paced under Telegram's flood limits and ended
//! by a stop. It knows the store and Telegram, not WeChat: what a poller must hear of (a card's
//! message deleted) it is told through the hook it was given.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use teloxide::payloads::{EditMessageTextSetters, SendMessageSetters};
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardMarkup, LinkPreviewOptions, MessageId, ParseMode};
use teloxide::{ApiError, RequestError};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::domain::applicant::AppId;
use crate::domain::card::{Card, CardState, Note};
use crate::domain::now_secs;
use crate::i18n::{Lang, Texts, fill};
use crate::lifecycle::leader::Leadership;
use crate::store::{Store, StoredApplicant};
use crate::telegram::approver::ApproverSets;
use crate::telegram::html::{escape, nickname_html};
use crate::telegram::limiter::{Lane, Limits, SendLimiter};
use crate::telegram::view::CardView;

/// One lock per card in use; an entry lives only while someone holds or waits for it, so the map
/// does not grow with every card ever made.
type CardLocks = DashMap<i64, Arc<Mutex<()>>>;

/// A card's lock, held; the last holder removes the card's entry on release.
pub struct CardGuard {
    guard: Option<OwnedMutexGuard<()>>,
    locks: Arc<CardLocks>,
    card_id: i64,
}

impl Drop for CardGuard {
    fn drop(&mut self) {
        self.guard.take();
        // Waiters hold a clone of the mutex (taken under the map's shard lock, as this check
        // is): only the map's own reference left means nobody holds or waits for it.
        self.locks
            .remove_if(&self.card_id, |_, lock| Arc::strong_count(lock) == 1);
    }
}

/// What a desk calls when it finds a card's message deleted (with the plugin and the
/// applicant): the applicant's poller must post the card again rather than take it for shown.
pub type MessageGone = Box<dyn Fn(&AppId, &AppId) + Send + Sync>;

/// One team chat's cards and messages.
pub struct Desk {
    /// The chat's settings: its language, time zone, reject reasons and quorum, as cards show
    /// them.
    settings: Arc<Settings>,
    /// Where cards are recorded.
    store: Store,
    /// The Telegram side.
    pub bot: Bot,
    /// Paces every message-changing call under Telegram's flood limits (or not at all, with
    /// `TELEGRAM_THROTTLE=off`); every send, edit, delete and callback answer goes through it.
    /// One per bot token, shared by its desks: the overall budget is the token's.
    pub limiter: Arc<SendLimiter>,
    /// The team chat.
    pub chat: ChatId,
    /// Whether this replica leads: only a leader sends new cards or (on PostgreSQL, long
    /// polling) edits them.
    leadership: Arc<Leadership>,
    /// Who may decide: a vote of someone no longer among them is shown apart, uncounted.
    approvers: Arc<ApproverSets>,
    card_locks: Arc<CardLocks>,
    /// One new card's message in flight at a time, from its send until its id is recorded: a
    /// command's card and the poller's are never on the wire together, so a kill leaves at most
    /// one message the store does not know (the documented duplicate window).
    card_sends: Mutex<()>,
    /// Fired when the bot is asked to stop: every wait for Telegram's budgets (a paced burst, a
    /// 429 pause, a backoff) ends at once, so a stop never waits on pacing. A call already on the
    /// wire finishes and is recorded.
    stopping: CancellationToken,
    /// When a wait first saw the stop: the grace of every wait is counted from it.
    stopped_at: std::sync::OnceLock<tokio::time::Instant>,
    on_message_gone: MessageGone,
}

/// A failure talking to Telegram about a card.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Telegram refused or was unreachable.
    #[error("telegram: {0}")]
    Telegram(#[from] RequestError),
}

/// How an edit of a card's message ended.
enum Edited {
    /// The message shows what was sent.
    Shown,
    /// A person deleted it (or it can no longer be edited).
    MessageGone,
}

/// Most times an edit waits out `RetryAfter` before giving up until the next change.
const EDIT_RETRIES: usize = 5;

/// How long, once the bot is stopping, a decision's edit or an answer to a person may still wait
/// for Telegram's budget: the edit of a decision in flight goes out (its budget is reserved, so
/// it rarely waits at all), and a stop still ends well within the unit's 30 s before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Most times a send waits out `RetryAfter` before giving up (a card stays `sending`, and the
/// next poll sends it).
const SEND_RETRIES: usize = 3;

/// What a desk is made of: its chat's settings and what it shares with the rest of the process.
pub struct DeskParts {
    /// The settings; the desk serves `team_chat_id`.
    pub settings: Arc<Settings>,
    /// The store.
    pub store: Store,
    /// The bot.
    pub bot: Bot,
    /// The bot token's limiter (see [`Desk::limiter_for`]).
    pub limiter: Arc<SendLimiter>,
    /// The lease.
    pub leadership: Arc<Leadership>,
    /// Who may decide.
    pub approvers: Arc<ApproverSets>,
    /// The process's stop.
    pub stopping: CancellationToken,
    /// What the poller must hear of a deleted card message.
    pub on_message_gone: MessageGone,
}

impl Desk {
    /// A desk for `parts.settings.team_chat_id`; nothing is sent yet.
    pub fn new(parts: DeskParts) -> Self {
        let DeskParts {
            settings,
            store,
            bot,
            limiter,
            leadership,
            approvers,
            stopping,
            on_message_gone,
        } = parts;
        Self {
            chat: settings.team_chat_id,
            settings,
            store,
            bot,
            limiter,
            leadership,
            approvers,
            card_locks: Arc::default(),
            card_sends: Mutex::new(()),
            stopping,
            stopped_at: std::sync::OnceLock::new(),
            on_message_gone,
        }
    }

    /// The limiter for a bot token's desks: Telegram's limits, or none with
    /// `TELEGRAM_THROTTLE=off`.
    pub fn limiter_for(settings: &Settings) -> Arc<SendLimiter> {
        Arc::new(if settings.telegram_throttle {
            SendLimiter::new(Limits::TELEGRAM)
        } else {
            SendLimiter::off()
        })
    }

    /// The chat's language.
    pub fn lang(&self) -> Lang {
        self.settings.lang
    }

    /// The chat's texts.
    pub fn texts(&self) -> &'static Texts {
        self.settings.lang.texts()
    }

    /// Re-renders every card whose message lags behind the store (after a crash or a failed
    /// edit), and tells each re-applicant's old message, if that edit failed before, that a newer
    /// card replaced it. Returns how many it edited.
    pub async fn refresh_stale_cards(&self) -> Result<usize, CardError> {
        let stale = self.store.stale_cards().await?;
        for card_id in &stale {
            if let Err(e) = self.refresh_card(*card_id).await {
                tracing::warn!(card = card_id, error = %e, "could not bring a card up to date");
            }
        }
        // Old messages of re-applicants whose "replaced" edit failed for a reason that may pass.
        let replaced = self.store.cards_to_supersede().await?;
        for card in &replaced {
            if let Err(e) = self.supersede(card.id).await {
                tracing::warn!(card = card.id, error = %e, "could not mark a replaced card");
            }
        }
        Ok(stale.len() + replaced.len())
    }

    /// Holds a card while its message is sent and recorded, so nobody judges it half-recorded.
    pub async fn lock_card(&self, card_id: i64) -> CardGuard {
        let lock = Arc::clone(&self.card_locks.entry(card_id).or_default());
        CardGuard {
            guard: Some(lock.lock_owned().await),
            locks: Arc::clone(&self.card_locks),
            card_id,
        }
    }

    /// The card once no send or edit of it is under way: a press that arrives between Telegram
    /// accepting a message and the bot recording it is judged against the recorded card.
    pub async fn settled_card(
        &self,
        card_id: i64,
    ) -> Result<Option<Card>, crate::store::StoreError> {
        let _settled = self.lock_card(card_id).await;
        self.store.card(card_id).await
    }

    /// How `card` of `stored` looks now, in the chat's language and time zone.
    pub(crate) fn view<'a>(&'a self, stored: &'a StoredApplicant, card: &'a Card) -> CardView<'a> {
        CardView {
            applicant: &stored.applicant,
            gone: stored.gone,
            card,
            reasons: &self.settings.reject_reasons,
            lang: self.settings.lang,
            tz: &self.settings.time_zone,
            before: stored.before.as_ref(),
            approvals_required: self.settings.approvals_required,
            uncounted: card
                .votes
                .iter()
                .filter(|v| {
                    self.approvers
                        .of(card.plugin.as_str())
                        .known_not_approver(teloxide::types::UserId(v.id))
                })
                .map(|v| v.id)
                .collect(),
            plugin: self.settings.plugin_name(card.plugin.as_str()),
        }
    }

    /// Makes sure a pending applicant has a card: writes the card first, then sends it without
    /// buttons, records the message, adds the buttons with an edit, and only then tells the
    /// message it replaces (a re-application) that a newer card stands for the applicant. Returns whether a message was sent. A failed send
    /// leaves the card in `sending`, and the next poll sends it again.
    pub async fn ensure_card(&self, plugin: &AppId, appid: &AppId) -> Result<bool, CardError> {
        if self
            .store
            .unsettled_elsewhere(self.chat.0, plugin, appid)
            .await?
        {
            // Its card in a former team chat may still write through (a decision in flight, an
            // unknown outcome): no buttons here until that is settled; the next poll looks again.
            return Ok(false);
        }
        let card = match self.store.card_for(self.chat.0, plugin, appid).await? {
            Some(card) if card.state == CardState::Sending => card,
            Some(card) if card.state == CardState::Deciding => return Ok(false),
            Some(card) if card.state != CardState::Closed && !card.message_gone => {
                return Ok(false);
            }
            Some(old) => match self.reuse_card(&old).await? {
                Some(card) => card,
                None => return Ok(false),
            },
            None => match self
                .store
                .begin_card(self.chat.0, plugin, appid, None)
                .await?
            {
                Some(card) => card,
                None => return Ok(false),
            },
        };
        let guard = self.lock_card(card.id).await;
        // Someone may have sent it while we waited for the lock.
        let Some(card) = self.store.card(card.id).await? else {
            return Ok(false);
        };
        if card.state != CardState::Sending {
            return Ok(false);
        }
        let Some(stored) = self.store.applicant(plugin, appid).await? else {
            return Ok(false);
        };
        if stored.gone || !stored.applicant.status.is_decidable() {
            // Decided or gone since the caller looked: a card with buttons would lie. A reused
            // row takes its old message back, which still tells the last outcome.
            self.store.abandon_card(card.id).await?;
            return Ok(false);
        }
        // Rendered as it will stand once recorded, open, but sent without its buttons: a kill
        // between Telegram taking the message and the store recording its id leaves a message
        // the bot can never find again, and such a message must not offer ✅/❌ for an applicant
        // someone decides later. The buttons come with an edit once the id is recorded.
        let card = Card {
            state: CardState::Open,
            ..card
        };
        let text = self.view(&stored, &card).text();
        let one_send = self.card_sends.lock().await;
        // A card is the leader's to send: a replica whose lease may have ended (it was paused,
        // or could not renew) leaves the row to the next leader, who sends it.
        if !self.leadership.leads() {
            return Ok(false);
        }
        let sent = self.send_html(self.chat, &text).await?;
        let recorded = match self.store.card_sent(card.id, sent.id.0).await {
            Ok(recorded) => recorded,
            Err(e) if e.is_fenced() => {
                // Paused past the lease between the check and the send: the new leader sends
                // this card itself, so this message would be a second one.
                tracing::warn!(appid = %appid, card = card.id, "another replica took the lease while this card was sent; taking the message back");
                drop(one_send);
                drop(guard);
                let _ = self
                    .paced(self.chat, Lane::Decision, || {
                        self.bot.delete_message(self.chat, sent.id).send()
                    })
                    .await;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        drop(one_send);
        if !recorded {
            // Cannot happen while the lock is held; if it ever does, the message stands for
            // nothing and must not offer buttons.
            tracing::error!(appid = %appid, card = card.id, "a card was sent but its row had moved on; taking the message back");
            drop(guard);
            let _ = self
                .paced(self.chat, Lane::Decision, || {
                    self.bot.delete_message(self.chat, sent.id).send()
                })
                .await;
            return Ok(false);
        }
        drop(guard);
        crate::telemetry::card_posted(self.settings.plugin_label(plugin.as_str()));
        tracing::info!(appid = %appid, card = card.id, message_id = sent.id.0, "posted a card");
        // The row now says its message shows an older state than it holds: if this edit fails
        // or the bot stops first, the sweep after the next poll (or the next start) adds them.
        if let Err(e) = self.show_card(card.id, Lane::Card).await {
            tracing::warn!(card = card.id, error = %e, "could not add a card's buttons yet; will try again after the next poll");
        }
        if card.previous_message_id.is_some()
            && let Err(e) = self.supersede(card.id).await
        {
            tracing::warn!(card = card.id, error = %e, "could not mark the replaced card; will try again after the next poll");
        }
        self.notify_new_card(plugin, appid, sent.id.0).await;
        Ok(true)
    }

    /// Reuses a closed card's row for a new message (the applicant is pending again), or a live
    /// one whose message a person deleted — judged under the card's lock against the record as
    /// it is now, not as the caller saw it: a decision made while a poll was busy elsewhere is
    /// no re-application. Returns the card now being sent, or `None`.
    async fn reuse_card(&self, old: &Card) -> Result<Option<Card>, CardError> {
        let _judging = self.lock_card(old.id).await;
        let Some(stored) = self.store.applicant(&old.plugin, &old.appid).await? else {
            return Ok(None);
        };
        if stored.gone || !stored.applicant.status.is_decidable() {
            return Ok(None);
        }
        // Compare-and-swap from the version judged: a card that moved since is not reused.
        Ok(self
            .store
            .begin_card(old.chat_id, &old.plugin, &old.appid, Some(old.version))
            .await?)
    }

    /// Tells a card's old message (kept in `previous_message_id` when its row was reused for a
    /// re-application) that a newer card stands for the applicant, and removes its buttons. A
    /// message that is gone or that Telegram refuses to edit is given up on; a failure that may
    /// pass is tried again after the next poll. The new card never waits for this.
    pub async fn supersede(&self, card_id: i64) -> Result<(), CardError> {
        let edited = self
            .edit_card(card_id, Lane::Decision, |card, stored| {
                if card.state == CardState::Sending {
                    return None;
                }
                let old = card.previous_message_id?;
                let shown = Card {
                    state: CardState::Closed,
                    note: Some(Note::Superseded { at: now_secs() }),
                    ..card.clone()
                };
                let text = self.view(stored, &shown).text();
                Some((old, text, InlineKeyboardMarkup::default()))
            })
            .await;
        let card = match edited {
            Ok(Some((_, card))) => card,
            Ok(None) => return Ok(()),
            Err(CardError::Telegram(RequestError::Api(e))) => {
                tracing::warn!(card = card_id, error = %e, "Telegram refuses to edit a replaced card; leaving it as it is");
                match self.store.card(card_id).await? {
                    Some(card) => card,
                    None => return Ok(()),
                }
            }
            Err(e) => return Err(e),
        };
        if let Some(old) = card.previous_message_id {
            self.store.superseded(card_id, old).await?;
        }
        Ok(())
    }

    /// Re-renders a card from stored state and edits its message. Edits of one card never
    /// overlap, and each renders the state as it is when it runs, so the last edit shows the
    /// final truth. "Not modified" is success; a message a person deleted is recorded and left.
    pub async fn refresh_card(&self, card_id: i64) -> Result<(), CardError> {
        self.show_card(card_id, Lane::Decision).await
    }

    /// Whether this process may change what a card shows: always on SQLite (one process) and in
    /// webhook mode (every replica serves presses, and edits what it decided); in long-polling
    /// mode on PostgreSQL only while it leads.
    fn may_show(&self) -> bool {
        !self.store.is_postgres() || self.settings.webhook.is_some() || self.leadership.leads()
    }

    /// [`Desk::refresh_card`] with the edit waiting in `lane`: a new card's buttons go in the card
    /// lane, so the slot kept for decisions stays free for a press made meanwhile.
    async fn show_card(&self, card_id: i64, lane: Lane) -> Result<(), CardError> {
        let edited = self
            .edit_card(card_id, lane, |card, stored| {
                let (Some(message_id), false) = (card.message_id, card.message_gone) else {
                    return None;
                };
                let view = self.view(stored, card);
                Some((message_id, view.text(), view.keyboard()))
            })
            .await?;
        match edited {
            None => {}
            Some((Edited::Shown, card)) => self.store.card_shown(card_id, card.version).await?,
            Some((Edited::MessageGone, card)) => {
                tracing::info!(
                    card = card_id,
                    "the card's message was deleted; not editing it again"
                );
                self.store.mark_message_gone(card_id).await?;
                // A pending applicant must not be left without buttons: its poller posts the
                // card again at its next poll.
                (self.on_message_gone)(&card.plugin, &card.appid);
            }
        }
        Ok(())
    }

    /// Edits a message of a card with what `render` makes of the card and its applicant as they
    /// are when the edit goes out (`None`: nothing to edit). Each attempt waits for Telegram's
    /// budget in `lane` first and only then takes the card's lock for the one call, so a 429 pause or a
    /// network backoff never holds presses and polls on this card. Waits out 429s and retries
    /// network errors a few times; "not modified" counts as shown. Returns how the edit ended
    /// and the card as rendered.
    async fn edit_card<R>(
        &self,
        card_id: i64,
        lane: Lane,
        render: R,
    ) -> Result<Option<(Edited, Card)>, CardError>
    where
        R: Fn(&Card, &StoredApplicant) -> Option<(i32, String, InlineKeyboardMarkup)>,
    {
        // A card never changes chat: its chat can be read before the lock.
        let Some(card) = self.store.card(card_id).await? else {
            return Ok(None);
        };
        let chat = ChatId(card.chat_id);
        let mut attempt = 0;
        loop {
            // A card's edit shows a decision or a change of status: it goes before new cards
            // (a new card's buttons go with the new cards).
            self.ready(Some(chat.0), lane).await?;
            let guard = self.lock_card(card_id).await;
            let Some(card) = self.store.card(card_id).await? else {
                return Ok(None);
            };
            let Some(stored) = self.store.applicant(&card.plugin, &card.appid).await? else {
                return Ok(None);
            };
            let Some((message_id, text, keyboard)) = render(&card, &stored) else {
                return Ok(None);
            };
            // Rendered from the row as it is now, but this replica may have been paused since
            // it read it: a leader whose lease ended leaves the card to the next leader, whose
            // edit this one would otherwise overwrite with an older state. Unrecorded, the edit
            // is redone by whoever leads (the sweep after a poll).
            if !self.may_show() {
                return Ok(None);
            }
            let result = self
                .bot
                .edit_message_text(chat, MessageId(message_id), text)
                .parse_mode(ParseMode::Html)
                .reply_markup(keyboard)
                .link_preview_options(no_preview())
                .await;
            drop(guard);
            if let Err(e) = &result
                && !matches!(e, RequestError::Api(ApiError::MessageNotModified))
            {
                crate::telegram::record_error(e);
            }
            match result {
                Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => {
                    return Ok(Some((Edited::Shown, card)));
                }
                Err(RequestError::Api(e)) if out_of_reach(&e) => {
                    return Ok(Some((Edited::MessageGone, card)));
                }
                Err(RequestError::RetryAfter(wait)) if attempt < EDIT_RETRIES => {
                    tracing::warn!(
                        card = card_id,
                        ?wait,
                        "Telegram asked to slow down; retrying the edit"
                    );
                    // That chat waits as long as Telegram asked; the next `ready` sees to it.
                    self.limiter.retry_after(chat.0, wait.duration());
                }
                Err(RequestError::Network(_) | RequestError::Io(_)) if attempt < EDIT_RETRIES => {
                    self.pause(Duration::from_millis(200 << attempt.min(4)))
                        .await?;
                }
                Err(other) => return Err(other.into()),
            }
            attempt += 1;
        }
    }

    /// Waits for Telegram's flood budgets (`chat`'s and the overall one; `None`: only the
    /// overall one) in `lane`. Once the bot is stopping, a new card or an announcement is not
    /// sent at all, and what shows a decision or answers a person waits at most [`STOP_GRACE`].
    async fn ready(&self, chat: Option<i64>, lane: Lane) -> Result<(), RequestError> {
        let budget = async {
            match chat {
                Some(chat) => self.limiter.ready(chat, lane).await,
                None => self.limiter.ready_global(lane).await,
            }
        };
        if lane == Lane::Card && self.stopping.is_cancelled() {
            return Err(stopping());
        }
        // The stop first: once its grace is over, a budget that happens to be free too must not
        // win the pick (seed 206801: an edit sent after the grace met a 5xx, which teloxide
        // holds 10 s, and the stop took 20.8 s).
        tokio::select! {
            biased;
            () = self.stopped_for(lane) => Err(stopping()),
            () = budget => Ok(()),
        }
    }

    /// Sleeps for `wait` (a backoff before an edit is tried again), or until a stop's grace is
    /// over.
    async fn pause(&self, wait: Duration) -> Result<(), RequestError> {
        tokio::select! {
            biased;
            () = self.stopped_for(Lane::Decision) => Err(stopping()),
            () = tokio::time::sleep(wait) => Ok(()),
        }
    }

    /// Asks every wait for Telegram to end: new cards at once, the rest within [`STOP_GRACE`]
    /// from now.
    pub fn stop_waiting(&self) {
        self.stopped_at.get_or_init(tokio::time::Instant::now);
        self.stopping.cancel();
    }

    /// Resolves once a wait in `lane` must end because the bot is stopping: at once for new
    /// cards, for the rest once [`STOP_GRACE`] has passed since the stop — one deadline for every
    /// wait, however many come one after another (a poll closing card after card through 429s
    /// would otherwise get a fresh grace for each: the simulation's seed 93423).
    async fn stopped_for(&self, lane: Lane) {
        self.stopping.cancelled().await;
        if lane != Lane::Card {
            let stopped_at = *self.stopped_at.get_or_init(tokio::time::Instant::now);
            tokio::time::sleep_until(stopped_at + STOP_GRACE).await;
        }
    }

    /// Sends a new HTML message (no link previews) to `chat`, paced in the card lane: a card, an
    /// announcement, a direct message.
    async fn send_html(&self, chat: ChatId, html: &str) -> Result<Message, RequestError> {
        self.paced(chat, Lane::Card, || {
            self.bot
                .send_message(chat, html.to_owned())
                .parse_mode(ParseMode::Html)
                .link_preview_options(no_preview())
                .send()
        })
        .await
    }

    /// Sends a plain HTML message to the team chat (announcements), logging failure; whether it
    /// went out.
    pub async fn announce(&self, html: String) -> bool {
        let sent = self.send_html(self.chat, &html).await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not post an announcement to the team chat");
            return false;
        }
        true
    }

    /// Makes one message-changing call to `chat` once its flood budgets allow, in `lane`. A 429
    /// pauses that chat (only that chat) for as long as Telegram asked, and the call is made
    /// again, a few times at most; any other failure is recorded and returned.
    pub async fn paced<T, F, Fut>(
        &self,
        chat: ChatId,
        lane: Lane,
        call: F,
    ) -> Result<T, RequestError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, RequestError>>,
    {
        self.paced_in(Some(chat), lane, call).await
    }

    /// [`Desk::paced`] for calls that belong to no chat's budget (answers to button presses):
    /// only the overall budget counts.
    pub async fn paced_global<T, F, Fut>(&self, lane: Lane, call: F) -> Result<T, RequestError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, RequestError>>,
    {
        self.paced_in(None, lane, call).await
    }

    async fn paced_in<T, F, Fut>(
        &self,
        chat: Option<ChatId>,
        lane: Lane,
        call: F,
    ) -> Result<T, RequestError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, RequestError>>,
    {
        let mut attempt = 0;
        loop {
            self.ready(chat.map(|c| c.0), lane).await?;
            let result = call().await;
            match &result {
                Err(e @ RequestError::RetryAfter(wait)) if attempt < SEND_RETRIES => {
                    crate::telegram::record_error(e);
                    tracing::warn!(
                        chat = chat.map(|c| c.0),
                        ?wait,
                        "Telegram asked to slow down; sending again after the wait"
                    );
                    match chat {
                        Some(chat) => self.limiter.retry_after(chat.0, wait.duration()),
                        None => self.limiter.retry_after_global(wait.duration()),
                    }
                    attempt += 1;
                }
                Err(e) => {
                    crate::telegram::record_error(e);
                    return result;
                }
                Ok(_) => return result,
            }
        }
    }

    /// Where a card is, for a message outside the team chat: a link to it in a supergroup, else
    /// the team chat's name (a basic group's messages cannot be linked to).
    pub async fn card_pointer(&self, message_id: Option<i32>) -> String {
        let t = self.texts();
        if let Some(link) = message_id.and_then(|m| self.message_link(m)) {
            return fill(t.dm_card_link, &[("link", &escape(&link))]);
        }
        let title = match self.bot.get_chat(self.chat).await {
            Ok(chat) => chat.title().map(str::to_owned),
            Err(_) => None,
        }
        .unwrap_or_else(|| self.chat.0.to_string());
        fill(
            t.card_in_chat,
            &[(
                "chat",
                &escape(&crate::telegram::html::clean(&title, 128, false)),
            )],
        )
    }

    /// Tells every subscriber (`/subscribe`) of a new card.
    async fn notify_new_card(&self, plugin: &AppId, appid: &AppId, message_id: i32) {
        let subscribers = match self.store.subscribers().await {
            Ok(s) if s.is_empty() => return,
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "could not read who subscribed to direct messages");
                return;
            }
        };
        let t = self.texts();
        let nickname = match self.store.applicant(plugin, appid).await {
            Ok(Some(stored)) => stored.applicant.nickname,
            _ => None,
        };
        let html = fill(
            t.dm_new_card,
            &[
                ("name", &nickname_html(nickname.as_deref(), t)),
                ("appid", &escape(appid.as_str())),
                ("card", &self.card_pointer(Some(message_id)).await),
            ],
        );
        self.message_subscribers(&subscribers, &html).await;
    }

    /// Sends `html` to each of `subscribers` in their private chat, paced as any message. One
    /// who blocked the bot (403) is recorded once and not messaged again; any other failure is
    /// logged and the rest still get theirs.
    pub async fn message_subscribers(&self, subscribers: &[crate::store::Subscriber], html: &str) {
        for subscriber in subscribers {
            let chat = ChatId(subscriber.user_id);
            let sent = self.send_html(chat, html).await;
            match sent {
                Ok(_) => {}
                Err(RequestError::Api(ApiError::BotBlocked)) => {
                    match self.store.mark_blocked(subscriber.user_id).await {
                        Ok(true) => tracing::info!(
                            user = subscriber.user_id,
                            "a subscriber blocked the bot; no more direct messages to them"
                        ),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "could not record a subscriber who blocked the bot");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(user = subscriber.user_id, error = %e, "could not send a direct message");
                }
            }
        }
    }

    /// A `t.me` link to a message of the team chat, where Telegram offers one (supergroups).
    pub fn message_link(&self, message_id: i32) -> Option<String> {
        let id = self.chat.0;
        // Supergroup ids are -100 followed by the channel id.
        let channel = (-id).checked_sub(1_000_000_000_000).filter(|c| *c > 0)?;
        Some(format!("https://t.me/c/{channel}/{message_id}"))
    }
}

/// Whether an edit failed because the message can never be edited again: deleted, too old, or
/// in a chat the bot is no longer in (a former team chat it was removed from).
fn out_of_reach(error: &ApiError) -> bool {
    match error {
        ApiError::MessageToEditNotFound
        | ApiError::MessageCantBeEdited
        | ApiError::MessageIdInvalid
        | ApiError::ChatNotFound
        | ApiError::BotKicked
        | ApiError::BotKickedFromSupergroup => true,
        ApiError::Unknown(description) => {
            description.contains("bot was kicked") || description.contains("not a member")
        }
        _ => false,
    }
}

/// What a paced call returns when the bot stopped before it could go out: nothing was sent.
fn stopping() -> RequestError {
    RequestError::Io(Arc::new(std::io::Error::new(
        std::io::ErrorKind::Interrupted,
        "not sent: the bot is stopping",
    )))
}

/// Whether `error` is [`Desk::paced`]'s "not sent: the bot is stopping".
pub fn is_stopping(error: &RequestError) -> bool {
    matches!(error, RequestError::Io(e) if e.kind() == std::io::ErrorKind::Interrupted)
}

/// Cards link to images; previews would bury the buttons.
pub fn no_preview() -> LinkPreviewOptions {
    LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}
