//! One plugin's side of the bot: its [`Poller`] — the WeChat client, what the poller remembers of
//! the last listing ([`Seen`]), its health and poll lock — what makes a card agree with a listing,
//! and where a third-party platform's refresh token is kept. It knows neither the app nor the
//! chat: decisions and the desk tell it what they changed through its methods and hook.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Mutex;

use crate::domain::action::Action;
use crate::domain::applicant::{AppId, Applicant, ApplyStatus};
use crate::domain::card::{Card, CardState, Note};
use crate::lifecycle::desk::MessageGone;
use crate::store::Store;
use crate::wechat::WeChatClient;

/// Keeps a third-party platform's refresh token in the store, so a restart (or another replica)
/// uses the one WeChat returned last.
pub struct KeptInStore(pub Store);

impl crate::wechat::RefreshTokenKeeper for KeptInStore {
    fn current<'a>(
        &'a self,
        authorizer_appid: &'a str,
        configured: &'a str,
    ) -> crate::wechat::Kept<'a, String> {
        Box::pin(async move {
            self.0
                .authorizer_refresh_token(authorizer_appid, configured)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn keep<'a>(
        &'a self,
        authorizer_appid: &'a str,
        token: &'a str,
    ) -> crate::wechat::Kept<'a, ()> {
        Box::pin(async move {
            self.0
                .keep_refresh_token(authorizer_appid, token)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Poll health, for `/status` and for announcing an outage once.
#[derive(Clone, Debug, Default)]
pub struct PollHealth {
    /// When the last poll ran (unix seconds).
    pub last_poll_at: Option<i64>,
    /// When the last poll succeeded.
    pub last_ok_at: Option<i64>,
    /// The last poll error as the log and `/healthz` show it (English, for operators).
    pub last_error: Option<String>,
    /// The same error in the chat's language, for `/status`.
    pub last_error_text: Option<String>,
    /// Failed polls in a row.
    pub failures_in_row: u32,
    /// When the current run of failures began.
    pub failing_since: Option<i64>,
    /// Whether the chat was told about the current outage.
    pub outage_announced: bool,
    /// Whether the chat was told, in this outage, that the platform's refresh token is refused
    /// (61023), which it is told even after another alert.
    pub reauthorize_announced: bool,
    /// No polls before this (unix seconds): WeChat's daily quota is used up.
    pub quota_paused_until: Option<i64>,
}

/// One plugin's poller: its WeChat client, what it remembers of the last listing, its health,
/// and the lock that keeps its polls one at a time. Decisions and the desk tell it what they
/// changed through its methods.
pub struct Poller {
    /// The plugin's name: on cards, in commands, metrics and the log.
    pub name: String,
    /// The plugin's WeChat side.
    pub wechat: WeChatClient,
    /// What the last listings said, per applicant: the poll's own to read and write (shared
    /// with the desk's hook); decisions go through the methods below.
    pub(super) seen: Arc<DashMap<AppId, Seen>>,
    /// Poll health for `/status` and outage announcements.
    pub health: std::sync::Mutex<PollHealth>,
    /// One poll at a time (the loop and `/refresh`).
    pub poll_lock: Mutex<()>,
}

impl Poller {
    /// A poller that has listed nothing yet.
    pub fn new(name: String, wechat: WeChatClient) -> Self {
        Self {
            name,
            wechat,
            seen: Arc::default(),
            health: std::sync::Mutex::new(PollHealth::default()),
            poll_lock: Mutex::new(()),
        }
    }

    /// The plugin it polls (its AppID): the key its applicants are stored under.
    pub fn plugin(&self) -> &AppId {
        self.wechat.plugin()
    }

    /// What a desk calls when a card's message turns out deleted: the next poll posts the
    /// applicant's card again.
    pub fn on_message_gone(&self) -> MessageGone {
        let seen = Arc::clone(&self.seen);
        Box::new(move |_plugin, appid| {
            if let Some(mut seen) = seen.get_mut(appid) {
                seen.carded = false;
            }
        })
    }

    /// Forgets `appid`: the next listing that has it is news.
    pub fn forget(&self, appid: &AppId) {
        self.seen.remove(appid);
    }

    /// Takes `applicant` as listed (a decision re-read it), so the next poll does not take the
    /// change for news.
    pub fn remember(&self, applicant: &Applicant) {
        if let Some(mut seen) = self.seen.get_mut(&applicant.appid) {
            seen.remember(applicant);
        }
    }

    /// Takes `status` as `appid`'s listed status.
    pub fn remember_status(&self, appid: &AppId, status: ApplyStatus) {
        if let Some(mut seen) = self.seen.get_mut(appid) {
            seen.status = status;
        }
    }

    /// Makes the next poll look at `appid`'s card again, even if its listing is unchanged.
    pub fn look_again(&self, appid: &AppId) {
        if let Some(mut seen) = self.seen.get_mut(appid) {
            seen.carded = false;
        }
    }

    /// Loads what the poller remembers from the store and from the cards of `chat`, so the first
    /// poll after a restart only acts on what changed while the bot was down — and on every card
    /// that does not agree with its record (a crash between recording a listing and settling a
    /// card). An absence proven before the restart counts as `absence_proof_after` old.
    pub async fn warm_up(
        &self,
        store: &Store,
        chat: i64,
        absence_proof_after: Duration,
    ) -> Result<(), crate::store::StoreError> {
        // A replica taking the lease again forgets what it saw in its last term.
        self.seen.clear();
        let cards: HashMap<AppId, Card> = store
            .cards(chat)
            .await?
            .into_iter()
            .filter(|c| c.plugin == *self.plugin())
            .map(|c| (c.appid.clone(), c))
            .collect();
        for stored in store.applicants(self.plugin()).await? {
            let card = cards.get(&stored.applicant.appid);
            let status = stored.applicant.status;
            let carded = match card {
                Some(c) => card_agrees(c, status, stored.gone),
                None => !status.is_decidable() || stored.gone,
            };
            if stored.gone && carded {
                continue;
            }
            // A gone applicant whose card still offers something: one more listing without it
            // settles the card.
            let missed = if stored.gone { MISSING_PROOF - 1 } else { 0 };
            let mut seen = Seen::new(&stored.applicant, carded, missed);
            if stored.gone {
                // Its absence was proven before the restart.
                seen.missing_since = std::time::Instant::now().checked_sub(absence_proof_after);
            }
            self.seen.insert(stored.applicant.appid.clone(), seen);
        }
        Ok(())
    }
}

/// What the poller remembers of an applicant between polls, so an idle poll touches neither the
/// database nor Telegram. Its status and a fingerprint of the rest, not the whole applicant: with
/// 10,000 applicants known, their texts and links were most of the bot's memory.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The status as last listed.
    pub status: ApplyStatus,
    /// [`fingerprint`] of the rest as last listed.
    pub rest: u64,
    /// Whether its card agrees with it (sent, recorded, telling its status), or it needs none.
    pub carded: bool,
    /// Listings in a row that did not include it: one missing listing is no proof it is gone.
    pub missed: u8,
    /// When the first of those listings began: the proof needs listings far enough apart that
    /// one glitch of WeChat's cannot be all of them.
    pub missing_since: Option<std::time::Instant>,
    /// Listings in a row that showed it pending again after a decision, with no newer
    /// application time: a stale answer looks exactly like this, so it needs the same proof as
    /// an absence before its card is re-opened.
    pub relisted: u8,
    /// When the first of those listings began.
    pub relisted_since: Option<std::time::Instant>,
}

impl Seen {
    /// Remembers `applicant` as listed.
    pub fn new(applicant: &Applicant, carded: bool, missed: u8) -> Self {
        Self {
            status: applicant.status,
            rest: fingerprint(applicant),
            carded,
            missed,
            missing_since: None,
            relisted: 0,
            relisted_since: None,
        }
    }

    /// Whether `applicant` is what was last listed (a 64-bit hash stands for everything but the
    /// status: a change goes unnoticed only if two listings collide, about 1 in 2^64).
    pub fn lists(&self, applicant: &Applicant) -> bool {
        self.status == applicant.status && self.rest == fingerprint(applicant)
    }

    /// Takes `applicant` as the last listing.
    pub fn remember(&mut self, applicant: &Applicant) {
        self.status = applicant.status;
        self.rest = fingerprint(applicant);
    }
}

/// A hash of everything an applicant's listing says besides its appid and status. foldhash with
/// a fixed seed: a poll hashes every applicant it lists (10,000 applicants' texts in a few
/// milliseconds, where SipHash took over ten), and nothing here needs resistance to chosen
/// collisions — the status, the one thing a decision depends on, is compared as it is.
pub fn fingerprint(a: &Applicant) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0).build_hasher();
    (&a.nickname, &a.avatar_url, &a.reason, &a.apply_url).hash(&mut h);
    a.applied_at.hash(&mut h);
    a.categories.len().hash(&mut h);
    for c in &a.categories {
        (&c.first, &c.second).hash(&mut h);
    }
    h.finish()
}

/// Listings in a row an applicant must be missing from before the bot believes it is gone (the
/// first and the last at least `absence_proof_after` apart). One listing is no proof: WeChat can
/// answer errcode 0 with an empty or partial list.
pub const MISSING_PROOF: u8 = 2;

/// Whether `card` tells the truth about an applicant with `status` (`gone`: no longer listed),
/// so a poll has nothing to change on it. A card being decided on is its decision's to settle,
/// one whose outcome is unknown is settled from a later listing; one still being sent is not yet
/// the truth.
pub fn card_agrees(card: &Card, status: ApplyStatus, gone: bool) -> bool {
    // A decision waiting out its undo window stands for a pending applicant like an open card:
    // a status changed elsewhere meanwhile closes it, and its window then sends nothing.
    let offers_decision = matches!(
        card.state,
        CardState::Open
            | CardState::ChoosingReason
            | CardState::AwaitingReason
            | CardState::Scheduled
    );
    match card.state {
        CardState::Deciding => true,
        CardState::Sending => false,
        // Settled by the first listing that began after the outcome was recorded.
        _ if !gone && matches!(card.note, Some(Note::Unknown { .. })) => true,
        _ if gone => matches!(
            card.note,
            Some(Note::Gone { .. })
                | Some(Note::Interrupted {
                    action: Action::Delete,
                    ..
                })
                | Some(Note::Decided {
                    action: Action::Delete,
                    ..
                })
        ),
        // A live card whose message a person deleted needs a new message.
        _ if offers_decision => status.is_decidable() && !card.message_gone,
        _ if status.is_decidable() => false,
        _ => match &card.note {
            Some(Note::Decided { action, .. } | Note::Interrupted { action, .. }) => {
                action.target_status() == Some(status)
            }
            Some(Note::Elsewhere { status: code, .. }) => *code == status.code(),
            Some(Note::Failed { .. } | Note::Unknown { .. }) => status.is_deletable(),
            Some(Note::Gone { .. } | Note::Superseded { .. } | Note::Unserved { .. }) => false,
            None => true,
        },
    }
}
