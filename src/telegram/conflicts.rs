//! Another instance long-polling this bot's token: Telegram answers its getUpdates and ours
//! with 409 Conflict in turn. The bot records the episode so the log says it once and `/status`
//! can show it.

/// Another instance long-polling the same bot token, as the 409s show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelegramConflict {
    /// Unix time of the first 409 of this episode.
    pub since: i64,
    /// Unix time of the latest 409.
    pub last_at: i64,
    /// 409s in this episode.
    pub count: u64,
}

/// 409s further apart than this are separate episodes (each logged once).
pub const CONFLICT_EPISODE_SECS: i64 = 600;

/// The bot's record of 409 Conflicts, for the log (once per episode) and `/status`.
#[derive(Debug, Default)]
pub struct TelegramConflicts {
    state: std::sync::Mutex<Option<TelegramConflict>>,
}

impl TelegramConflicts {
    /// Records a 409 at `now`; whether it starts a new episode (then it deserves a log line).
    pub fn record(&self, now: i64) -> bool {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match state.as_mut() {
            Some(c) if now - c.last_at <= CONFLICT_EPISODE_SECS => {
                c.last_at = now;
                c.count += 1;
                false
            }
            _ => {
                *state = Some(TelegramConflict {
                    since: now,
                    last_at: now,
                    count: 1,
                });
                true
            }
        }
    }

    /// The conflict going on at `now`: a 409 within the last [`CONFLICT_EPISODE_SECS`].
    pub fn current(&self, now: i64) -> Option<TelegramConflict> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.filter(|c| now - c.last_at <= CONFLICT_EPISODE_SECS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_logged_once_per_episode() {
        let conflicts = TelegramConflicts::default();
        assert_eq!(conflicts.current(1_000), None);
        assert!(conflicts.record(1_000));
        assert!(!conflicts.record(1_002));
        assert!(!conflicts.record(1_500));
        let now = conflicts.current(1_500).unwrap();
        assert_eq!((now.since, now.last_at, now.count), (1_000, 1_500, 3));
        assert_eq!(conflicts.current(1_500 + CONFLICT_EPISODE_SECS + 1), None);
        assert!(conflicts.record(1_500 + CONFLICT_EPISODE_SECS + 1));
    }
}
