//! Who may decide: the users in `APPROVER_IDS`, or, when that is unset, the team chat's
//! administrators as Telegram reports them (cached briefly); who may delete: the users in
//! `DELETE_IDS`, or, when that is unset, the approvers. When in doubt, nobody.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::UserId;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long the administrator list is trusted before asking Telegram again.
const ADMIN_CACHE_TTL: Duration = Duration::from_secs(300);

/// The approver check.
pub struct Approvers {
    fixed: Option<HashSet<UserId>>,
    deleters: Option<HashSet<UserId>>,
    admins: Mutex<Option<(Instant, HashSet<UserId>)>>,
}

impl Approvers {
    /// Whether `user` is known, without asking Telegram, not to be an approver now: not in
    /// `APPROVER_IDS`, or not among the chat's administrators as last read (while that answer is
    /// fresh and not being refreshed). `false` when it cannot be told that way.
    pub fn known_not_approver(&self, user: UserId) -> bool {
        if let Some(fixed) = &self.fixed {
            return !fixed.contains(&user);
        }
        match self.admins.try_lock() {
            Ok(cache) => cache.as_ref().is_some_and(|(at, admins)| {
                at.elapsed() < ADMIN_CACHE_TTL && !admins.contains(&user)
            }),
            Err(_) => false,
        }
    }

    /// Fixed approvers, or `None` for "the chat's administrators"; fixed deleters, or `None`
    /// for "the approvers".
    pub fn new(fixed: Option<Vec<UserId>>, deleters: Option<Vec<UserId>>) -> Self {
        Self {
            fixed: fixed.map(|ids| ids.into_iter().collect()),
            deleters: deleters.map(|ids| ids.into_iter().collect()),
            admins: Mutex::new(None),
        }
    }

    /// Whether `user` may decide in `chat`. A failure to ask Telegram denies.
    pub async fn is_approver<R: Requester>(&self, bot: &R, chat: ChatId, user: UserId) -> bool {
        if let Some(fixed) = &self.fixed {
            return fixed.contains(&user);
        }
        let mut cache = self.admins.lock().await;
        if let Some((at, admins)) = cache.as_ref()
            && at.elapsed() < ADMIN_CACHE_TTL
        {
            return admins.contains(&user);
        }
        match bot.get_chat_administrators(chat).await {
            Ok(members) => {
                let admins: HashSet<UserId> = members
                    .iter()
                    .filter(|m| !m.user.is_bot)
                    .map(|m| m.user.id)
                    .collect();
                let allowed = admins.contains(&user);
                *cache = Some((Instant::now(), admins));
                allowed
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the team chat's administrators; denying");
                false
            }
        }
    }

    /// Whether `user` may delete an application in `chat`: listed in `DELETE_IDS`, or an
    /// approver when that is unset.
    pub async fn may_delete<R: Requester>(&self, bot: &R, chat: ChatId, user: UserId) -> bool {
        match &self.deleters {
            Some(deleters) => deleters.contains(&user),
            None => self.is_approver(bot, chat, user).await,
        }
    }

    /// Every approver with a name to mention them by (`APPROVER_IDS` named by Telegram as members
    /// of `chat`, or the chat's administrators), for an escalation. Someone Telegram will not
    /// name is still listed, by id; when the administrators cannot be read, nobody.
    pub async fn list<R: Requester>(&self, bot: &R, chat: ChatId) -> Vec<(UserId, String)> {
        let named = |user: &teloxide::types::User| {
            let name = user.full_name();
            if name.trim().is_empty() {
                user.id.0.to_string()
            } else {
                name
            }
        };
        match &self.fixed {
            Some(ids) => {
                let mut ids: Vec<UserId> = ids.iter().copied().collect();
                ids.sort_unstable_by_key(|id| id.0);
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let name = match bot.get_chat_member(chat, id).await {
                        Ok(member) => named(&member.user),
                        Err(_) => id.0.to_string(),
                    };
                    out.push((id, name));
                }
                out
            }
            None => match bot.get_chat_administrators(chat).await {
                Ok(members) => members
                    .iter()
                    .filter(|m| !m.user.is_bot)
                    .map(|m| (m.user.id, named(&m.user)))
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the team chat's administrators to name them");
                    Vec::new()
                }
            },
        }
    }

    /// A description for `/status` and logs.
    pub fn describe(&self) -> String {
        let approvers = match &self.fixed {
            Some(ids) => format!("{} listed in APPROVER_IDS", ids.len()),
            None => "the team chat's administrators".to_owned(),
        };
        match &self.deleters {
            Some(ids) => format!("{approvers}; {} may delete (DELETE_IDS)", ids.len()),
            None => approvers,
        }
    }
}

/// Who decides for each plugin: the default approvers (`APPROVER_IDS`, else the chat's
/// administrators) and, for a plugin of `PLUGINS_FILE` with `approver_ids` of its own, those.
pub struct ApproverSets {
    default: Arc<Approvers>,
    /// Plugins (by AppID) with approvers of their own.
    own: Vec<(String, Arc<Approvers>)>,
}

impl ApproverSets {
    /// The default set, and `own` sets for the plugins (by AppID) that have them.
    pub fn new(default: Approvers, own: Vec<(String, Approvers)>) -> Self {
        Self {
            default: Arc::new(default),
            own: own.into_iter().map(|(p, a)| (p, Arc::new(a))).collect(),
        }
    }

    /// Who decides for `plugin` (its AppID).
    pub fn of(&self, plugin: &str) -> &Approvers {
        self.own
            .iter()
            .find(|(p, _)| p == plugin)
            .map_or(&self.default, |(_, a)| a)
    }

    /// Every set, the default first: each asked once.
    fn all(&self) -> impl Iterator<Item = &Approvers> {
        std::iter::once(&*self.default).chain(self.own.iter().map(|(_, a)| &**a))
    }

    /// Whether `user` decides for any plugin in `chat`: the gate before a command names one.
    pub async fn is_approver_of_any<R: Requester>(
        &self,
        bot: &R,
        chat: ChatId,
        user: UserId,
    ) -> bool {
        for set in self.all() {
            if set.is_approver(bot, chat, user).await {
                return true;
            }
        }
        false
    }

    /// Whether `user` may delete for any plugin in `chat`.
    pub async fn may_delete_any<R: Requester>(&self, bot: &R, chat: ChatId, user: UserId) -> bool {
        for set in self.all() {
            if set.may_delete(bot, chat, user).await {
                return true;
            }
        }
        false
    }

    /// A description for `/status` and logs: the default set, and how many plugins have their
    /// own.
    pub fn describe(&self) -> String {
        match self.own.len() {
            0 => self.default.describe(),
            n => format!(
                "{}; {n} plugins with approver_ids of their own",
                self.default.describe()
            ),
        }
    }
}
