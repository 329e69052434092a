//! The running bot's shared context: a [`Poller`] per plugin (its WeChat client and what it
//! remembers between polls) and the team chat's [`Desk`] (its cards and messages), with what
//! all answer to — the settings, the store, the approvers, the lease, and the decisions in
//! flight. What passes between them goes through their methods.

use std::sync::Arc;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::domain::applicant::AppId;
use crate::domain::now_secs;
use crate::i18n::{Lang, Texts};
use crate::lifecycle::desk::{Desk, DeskParts};
use crate::lifecycle::leader::Leadership;
use crate::lifecycle::plugin::Poller;
use crate::store::Store;
use crate::telegram::approver::{ApproverSets, Approvers};
use crate::telegram::conflicts::TelegramConflicts;
use crate::wechat::WeChatClient;

/// The cards this process holds in `deciding`, counted per card. A decision takes its hold
/// before it claims the card and drops it after its last write, so a `deciding` card nobody here
/// holds was abandoned (a restart, a failed store write) and may be settled by re-reading WeChat.
#[derive(Debug, Default)]
pub struct Holds(DashMap<i64, usize>);

impl Holds {
    /// Holds `card_id` until the returned guard is dropped.
    pub fn hold(self: &Arc<Self>, card_id: i64) -> Hold {
        *self.0.entry(card_id).or_default() += 1;
        Hold {
            holds: Arc::clone(self),
            card_id,
        }
    }

    /// Whether a decision of this process holds `card_id`.
    pub fn is_held(&self, card_id: i64) -> bool {
        self.0.contains_key(&card_id)
    }
}

/// A decision's hold on a card; released on drop, whatever ended the decision.
#[derive(Debug)]
pub struct Hold {
    holds: Arc<Holds>,
    card_id: i64,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.holds.0.remove_if_mut(&self.card_id, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

/// Everything handlers, the poller and decisions share.
pub struct App {
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Persistent state.
    pub store: Store,
    /// Each plugin's WeChat side, in the order configured: its client, poll health and what its
    /// poller remembers.
    pub plugins: Vec<Poller>,
    /// The team chat's cards and messages.
    pub desk: Desk,
    /// Who may decide, for each plugin.
    pub approvers: Arc<ApproverSets>,
    /// Cards held by decisions in flight.
    pub holds: Arc<Holds>,
    /// Fired when the bot is asked to stop (the desk's waits end with it: [`App::stop_waiting`]).
    pub stopping: CancellationToken,
    /// When this run started (unix seconds), for health before the first poll.
    pub started_at: i64,
    /// Another instance long-polling this bot token (409 Conflict), for the log and `/status`.
    pub telegram_conflicts: TelegramConflicts,
    /// Whether this replica leads (polls WeChat), among those sharing the database.
    pub leadership: Arc<Leadership>,
    /// The tasks waiting out decisions' undo windows; a graceful stop waits for them.
    pub windows: tokio_util::task::TaskTracker,
    /// The undo windows (card, deadline) a task of this process waits on.
    pub window_cards: DashMap<(i64, i64), ()>,
    /// When reminders were last looked for (by whichever plugin's poll came first).
    reminders_checked: std::sync::Mutex<Option<std::time::Instant>>,
}

impl App {
    /// Wires the context together, a poller for each client (one per plugin, named as the
    /// settings name the plugin of its AppID); nothing is sent yet.
    pub fn new(
        settings: Settings,
        clients: Vec<WeChatClient>,
        store: Store,
        bot: teloxide::Bot,
    ) -> Arc<Self> {
        let settings = Arc::new(settings);
        // A plugin of PLUGINS_FILE with approver_ids of its own has its own set.
        let approvers = Arc::new(ApproverSets::new(
            Approvers::new(settings.approvers.clone(), settings.delete_ids.clone()),
            settings
                .plugins
                .iter()
                .filter(|p| p.approvers != settings.approvers)
                .map(|p| {
                    (
                        p.wechat.appid.clone(),
                        Approvers::new(p.approvers.clone(), settings.delete_ids.clone()),
                    )
                })
                .collect(),
        ));
        let leadership = Arc::new(Leadership::new(settings.replica.clone(), settings.lease));
        if !store.is_postgres() {
            leadership.lead_when_unreachable();
        }
        let stopping = CancellationToken::new();
        let plugins: Vec<Poller> = clients
            .into_iter()
            .map(|wechat| {
                let name = settings
                    .plugins
                    .iter()
                    .find(|p| p.wechat.appid == wechat.plugin().as_str())
                    .map_or_else(|| wechat.plugin().to_string(), |p| p.name.clone());
                Poller::new(name, wechat)
            })
            .collect();
        // A deleted card message tells its own plugin's poller.
        let hooks: Vec<(AppId, crate::lifecycle::desk::MessageGone)> = plugins
            .iter()
            .map(|p| (p.plugin().clone(), p.on_message_gone()))
            .collect();
        let on_message_gone: crate::lifecycle::desk::MessageGone =
            Box::new(move |plugin, appid| {
                for (_, hook) in hooks.iter().filter(|(p, _)| p == plugin) {
                    hook(plugin, appid);
                }
            });
        let desk = Desk::new(DeskParts {
            settings: Arc::clone(&settings),
            store: store.clone(),
            bot,
            limiter: Desk::limiter_for(&settings),
            leadership: Arc::clone(&leadership),
            approvers: Arc::clone(&approvers),
            stopping: stopping.clone(),
            on_message_gone,
        });
        Arc::new(Self {
            settings,
            store,
            plugins,
            desk,
            approvers,
            holds: Arc::default(),
            stopping,
            started_at: now_secs(),
            telegram_conflicts: TelegramConflicts::default(),
            leadership,
            windows: tokio_util::task::TaskTracker::new(),
            window_cards: DashMap::new(),
            reminders_checked: std::sync::Mutex::new(None),
        })
    }

    /// The chat language.
    pub fn lang(&self) -> Lang {
        self.settings.lang
    }

    /// The chat texts.
    pub fn texts(&self) -> &'static Texts {
        self.settings.lang.texts()
    }

    /// Loads the poller's memory from the store and the desk's cards, so the first poll after a
    /// restart only acts on what changed while the bot was down — and on every card that does
    /// not agree with its record (a crash between recording a listing and settling a card).
    pub async fn warm_up(&self) -> Result<(), crate::store::StoreError> {
        for poller in &self.plugins {
            poller
                .warm_up(
                    &self.store,
                    self.desk.chat.0,
                    self.settings.absence_proof_after,
                )
                .await?;
        }
        Ok(())
    }

    /// Closes the team chat's cards of plugins the bot no longer serves (taken out of its
    /// configuration): nothing would be sent for them, so no card may offer it. A card waiting
    /// out its undo window is closed before its write goes out; one being decided is left to
    /// the decision. Each is a compare-and-swap from the version read; returns how many closed.
    pub async fn close_unserved_cards(&self) -> Result<usize, crate::store::StoreError> {
        use crate::domain::card::{CardState, Note};
        let mut closed = 0;
        for card in self.store.cards(self.desk.chat.0).await? {
            let open = matches!(
                card.state,
                CardState::Open
                    | CardState::ChoosingReason
                    | CardState::AwaitingReason
                    | CardState::Scheduled
            );
            if !open || self.poller(&card.plugin).is_some() {
                continue;
            }
            let note = Note::Unserved {
                plugin: card.plugin.to_string(),
                at: now_secs(),
            };
            if self
                .store
                .settle_card(card.id, card.version, CardState::Closed, Some(&note))
                .await?
            {
                tracing::info!(card = card.id, plugin = %card.plugin, appid = %card.appid, "closed the card of a plugin this bot no longer serves");
                closed += 1;
                if let Err(e) = self.desk.refresh_card(card.id).await {
                    tracing::warn!(card = card.id, error = %e, "could not show that a card's plugin is no longer served");
                }
            }
        }
        Ok(closed)
    }

    /// The poller of `plugin` (its AppID), if the bot serves it.
    pub fn poller(&self, plugin: &AppId) -> Option<&Poller> {
        self.plugins.iter().find(|p| p.plugin() == plugin)
    }

    /// Whether reminders are due to be looked for; if so, marks them looked for now, so one
    /// plugin's poll takes them and the others' do not.
    pub fn reminders_due(&self) -> bool {
        let mut checked = self
            .reminders_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !crate::lifecycle::reminder::check_due(*checked) {
            return false;
        }
        *checked = Some(std::time::Instant::now());
        true
    }

    /// Looks for reminders at the next successful poll (a term begins).
    pub fn reminders_afresh(&self) {
        *self
            .reminders_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether the bot serves more than one plugin: then cards and messages name the plugin.
    pub fn several_plugins(&self) -> bool {
        self.plugins.len() > 1
    }

    /// Asks every wait for Telegram to end: new cards at once, the rest within
    /// [`crate::lifecycle::desk::STOP_GRACE`] from now.
    pub fn stop_waiting(&self) {
        self.desk.stop_waiting();
    }
}
