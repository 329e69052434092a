//! Sends as fast as Telegram allows and no faster: a message goes out at once while it fits
//! Telegram's flood budgets (per chat, per group, overall) and waits exactly as long as the
//! budgets say when it does not, so the bot never adds a delay of its own and never earns a 429.
//!
//! Each budget is a GCRA (the "virtual scheduling" form of a token bucket) kept by `governor`:
//! one theoretical arrival time per key (a chat, a group, or the whole bot), stored in a
//! [`StateStore`] of ours so that two `governor` limiters can read and advance the same state.
//! They differ only in their burst: the decision lane's limiter has the budget's full burst `B`,
//! the card lane's `B - 1`. So a card needs two free slots and a decision one: a burst of cards
//! always leaves one slot of every budget to a decision, which therefore never queues behind
//! cards, and because both lanes advance the one state, a decision that takes the reserve
//! pushes the cards one slot later until the reserve is back; decisions cannot eat it for good.
//! A call may go only when every budget it counts against agrees, so all are asked first (a
//! limiter over a read-only view of the same state) and spent only together, under one lock.
//!
//! Time is tokio's (`tokio::time::Instant`, `tokio::time::sleep`), so tests pace with paused time.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};

/// One of Telegram's flood budgets: `messages` every `per` on average, of which up to `burst` may
/// go at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Messages per `per`, sustained.
    pub messages: u32,
    /// The period `messages` are counted over.
    pub per: Duration,
    /// How many may go back to back when the budget is untouched (at least 1; with 1 there is no
    /// reserve for decisions).
    pub burst: u32,
}

impl Rate {
    /// The steady gap between two messages.
    pub fn interval(&self) -> Duration {
        (self.per / self.messages.max(1)).max(Duration::from_nanos(1))
    }
}

/// Telegram's flood budgets, as its Bot FAQ documents them ("My bot is hitting limits, how do I
/// avoid this?", core.telegram.org/bots/faq): about one
/// message a second in a chat with short bursts tolerated, at most 20 messages a minute in a
/// group, about 30 messages a second overall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Every chat, private or group.
    pub per_chat: Rate,
    /// Group chats (chat id < 0), on top of `per_chat`.
    pub per_group: Rate,
    /// Everything the bot sends, all chats together.
    pub overall: Rate,
}

/// One message a second in a chat. The burst of 3 is the smallest that leaves the card lane a
/// burst of its own (2) beside the decision's reserved slot, and small enough to stay a "short
/// burst": a card and the edit and reply that follow a decision go without waiting.
pub const TELEGRAM_PER_CHAT: Rate = Rate {
    messages: 1,
    per: Duration::from_secs(1),
    burst: 3,
};

/// Twenty messages a minute in a group, all twenty at once if the minute was quiet.
pub const TELEGRAM_PER_GROUP: Rate = Rate {
    messages: 20,
    per: Duration::from_secs(60),
    burst: 20,
};

/// Thirty messages a second overall, all thirty at once if the second was quiet.
pub const TELEGRAM_OVERALL: Rate = Rate {
    messages: 30,
    per: Duration::from_secs(1),
    burst: 30,
};

impl Limits {
    /// Telegram's documented limits.
    pub const TELEGRAM: Limits = Limits {
        per_chat: TELEGRAM_PER_CHAT,
        per_group: TELEGRAM_PER_GROUP,
        overall: TELEGRAM_OVERALL,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::TELEGRAM
    }
}

/// Which queue a call waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// What a person is waiting for: a card's edit after a press, a callback answer, a reply.
    /// Always has one slot of every budget that cards may not use.
    Decision,
    /// What nobody is waiting for this instant: new cards, announcements, reminders.
    Card,
}

/// Paces the bot's message-changing calls to Telegram's flood limits. Cheap to clone; clones
/// share the budgets.
#[derive(Clone)]
pub struct SendLimiter {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for SendLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(inner) => f.debug_tuple("SendLimiter").field(&inner.limits).finish(),
            None => f.write_str("SendLimiter(off)"),
        }
    }
}

impl SendLimiter {
    /// A limiter that keeps to `limits`.
    pub fn new(limits: Limits) -> Self {
        let tats = Tats::default();
        let origin = tokio::time::Instant::now();
        let budget = |rate: &Rate| Budget::new(rate, &tats, origin);
        Self {
            inner: Some(Arc::new(Inner {
                chat: budget(&limits.per_chat),
                group: budget(&limits.per_group),
                overall: budget(&limits.overall),
                limits,
                origin,
                turn: Mutex::new(()),
                tats,
            })),
        }
    }

    /// No limit at all: every call returns at once and nothing is counted (a local Bot API
    /// server, benchmarks).
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// Returns when one message-changing call to `chat` (sendMessage, editMessageText,
    /// editMessageReplyMarkup, deleteMessage) may go out now, and counts it.
    pub async fn ready(&self, chat: i64, lane: Lane) {
        if let Some(inner) = &self.inner {
            inner.ready(Some(chat), lane).await;
        }
    }

    /// Returns when a call bound to no chat (answerCallbackQuery) may go out now, and counts it
    /// against the overall budget only.
    pub async fn ready_global(&self, lane: Lane) {
        if let Some(inner) = &self.inner {
            inner.ready(None, lane).await;
        }
    }

    /// About how long `n` more card-lane messages to `chat` take to go out at these budgets, from
    /// where the budgets stand now (zero when the limiter is off). For the digest's estimate: it
    /// counts only the bot's own pace, not 429s Telegram may add.
    pub fn estimate(&self, chat: i64, n: u32) -> Duration {
        let Some(inner) = &self.inner else {
            return Duration::ZERO;
        };
        let now = inner.now();
        let tats = inner.tats.lock();
        inner
            .budgets(Some(chat))
            .into_iter()
            .map(|(_, rate, key)| {
                // GCRA: the k-th message may go once the state is within the card lane's burst
                // tolerance of now; each message moves the state on by one interval.
                let interval = rate.interval();
                let burst = rate.burst.max(1).saturating_sub(1).max(1);
                let tat = tats.get(&key).map_or(now, |t| Duration::from(*t).max(now));
                let last = tat + interval * n.saturating_sub(1);
                let tolerance = interval * (burst - 1);
                last.saturating_sub(tolerance).saturating_sub(now)
            })
            .max()
            .unwrap_or_default()
    }

    /// Telegram answered 429 for `chat`: nothing more goes to that chat for `wait`, and then at
    /// the steady pace (its budget counts as spent); other chats go on.
    pub fn retry_after(&self, chat: i64, wait: Duration) {
        if let Some(inner) = &self.inner {
            inner.pause(Key::Chat(chat), &inner.chat, wait);
        }
    }

    /// Telegram answered 429 to a call bound to no chat: nothing goes anywhere for `wait`.
    pub fn retry_after_global(&self, wait: Duration) {
        if let Some(inner) = &self.inner {
            inner.pause(Key::Overall, &inner.overall, wait);
        }
    }
}

/// Whose budget a state belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Chat(i64),
    Group(i64),
    Overall,
}

/// Theoretical arrival times, in nanoseconds since the limiter's origin, shared by every
/// `governor` limiter of one [`SendLimiter`].
#[derive(Clone, Default)]
struct Tats(Arc<Mutex<HashMap<Key, Nanos>>>);

impl Tats {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Nanos>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Above this many keys, states already back to "untouched" are dropped (an absent key and a
/// key whose arrival time has passed mean the same to GCRA).
const PRUNE_ABOVE: usize = 1024;

/// A view of [`Tats`] for one `governor` limiter: `spend` views store what `governor` decides,
/// the others only ask (so several budgets can be asked before any is spent).
struct View {
    tats: Tats,
    spend: bool,
}

impl StateStore for View {
    type Key = Key;

    fn measure_and_replace<T, F, E>(&self, key: &Key, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut tats = self.tats.lock();
        let (decided, tat) = f(tats.get(key).copied())?;
        if self.spend {
            tats.insert(*key, tat);
        }
        Ok(decided)
    }
}

/// tokio's clock as `governor` reads it: time since the limiter's origin.
///
/// `governor` measures states from the clock reading it takes when a limiter is built; the first
/// reading is pinned to the origin so that every limiter of one [`SendLimiter`] measures the
/// shared states from the same instant.
struct TokioClock {
    origin: tokio::time::Instant,
    started: AtomicBool,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        if !self.started.swap(true, Ordering::Relaxed) {
            return Duration::ZERO;
        }
        self.origin.elapsed()
    }
}

type Governor = RateLimiter<Key, View, TokioClock, NoOpMiddleware<Duration>>;

/// One lane of one budget: a limiter that asks and one that spends, over the same states.
struct Gate {
    ask: Governor,
    spend: Governor,
}

impl Gate {
    fn new(quota: Quota, tats: &Tats, origin: tokio::time::Instant) -> Self {
        let limiter = |spend| {
            let view = View {
                tats: tats.clone(),
                spend,
            };
            let clock = TokioClock {
                origin,
                started: AtomicBool::new(false),
            };
            RateLimiter::new(quota, view, clock)
        };
        Self {
            ask: limiter(false),
            spend: limiter(true),
        }
    }
}

/// One budget (per chat, per group, overall) with its two lanes.
struct Budget {
    decision: Gate,
    card: Gate,
    /// The decision lane's tolerance: how far ahead of now a state may run and still let one
    /// decision through. A 429 sets the state this far past the pause.
    tolerance: Duration,
}

impl Budget {
    fn new(rate: &Rate, tats: &Tats, origin: tokio::time::Instant) -> Self {
        let interval = rate.interval();
        let quota = |burst: u32| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            Quota::with_period(interval)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(burst)
        };
        let burst = rate.burst.max(1);
        Self {
            decision: Gate::new(quota(burst), tats, origin),
            card: Gate::new(quota(burst.saturating_sub(1).max(1)), tats, origin),
            tolerance: interval * (burst - 1),
        }
    }

    fn lane(&self, lane: Lane) -> &Gate {
        match lane {
            Lane::Decision => &self.decision,
            Lane::Card => &self.card,
        }
    }
}

struct Inner {
    limits: Limits,
    origin: tokio::time::Instant,
    /// Held while budgets are asked and spent, so that a call spends all of its budgets or none.
    turn: Mutex<()>,
    tats: Tats,
    chat: Budget,
    group: Budget,
    overall: Budget,
}

impl Inner {
    async fn ready(&self, chat: Option<i64>, lane: Lane) {
        while let Err(wait) = self.try_pass(chat, lane) {
            tokio::time::sleep(wait).await;
        }
    }

    /// The budgets a call to `chat` counts against (none bound to a chat: the overall one
    /// only), each with its rate and key.
    fn budgets(&self, chat: Option<i64>) -> Vec<(&Budget, Rate, Key)> {
        let mut budgets = Vec::with_capacity(3);
        if let Some(chat) = chat {
            budgets.push((&self.chat, self.limits.per_chat, Key::Chat(chat)));
            if chat < 0 {
                budgets.push((&self.group, self.limits.per_group, Key::Group(chat)));
            }
        }
        budgets.push((&self.overall, self.limits.overall, Key::Overall));
        budgets
    }

    /// Counts one call if every budget it belongs to has room for it now, or says how long
    /// until they all may.
    fn try_pass(&self, chat: Option<i64>, lane: Lane) -> Result<(), Duration> {
        let budgets = self.budgets(chat);

        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.now();
        let wait = budgets
            .iter()
            .filter_map(|(budget, _, key)| budget.lane(lane).ask.check_key(key).err())
            .map(|not_until| not_until.wait_time_from(now))
            .max();
        if let Some(wait) = wait {
            return Err(wait.max(Duration::from_nanos(1)));
        }
        // Time only moves forward and nobody else spends while we hold the turn, so what was
        // just allowed is still allowed.
        for (budget, _, key) in &budgets {
            let _ = budget.lane(lane).spend.check_key(key);
        }
        self.prune(now);
        Ok(())
    }

    /// Makes the state of `key` refuse everything for `wait` and then allow one decision: the
    /// budget counts as spent, as Telegram has just said it is.
    fn pause(&self, key: Key, budget: &Budget, wait: Duration) {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = wait.min(Duration::from_secs(u64::from(u32::MAX)));
        let until = Nanos::from(self.now() + wait + budget.tolerance);
        let mut tats = self.tats.lock();
        let tat = tats.entry(key).or_insert(until);
        *tat = (*tat).max(until);
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn prune(&self, now: Duration) {
        let mut tats = self.tats.lock();
        if tats.len() > PRUNE_ABOVE {
            let now = Nanos::from(now);
            tats.retain(|_, tat| *tat > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    const GROUP: i64 = -100_555;
    const PERSON: i64 = 42;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Sends `n` calls to `chat` one after another; returns when each went, from the start.
    async fn send_times(limiter: &SendLimiter, chat: i64, lane: Lane, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            limiter.ready(chat, lane).await;
            times.push(start.elapsed());
        }
        times
    }

    #[tokio::test(start_paused = true)]
    async fn the_estimate_is_what_sending_then_takes() {
        for (n, spent) in [(1, 0), (3, 0), (21, 0), (45, 0), (30, 15)] {
            let limiter = SendLimiter::new(Limits::TELEGRAM);
            send_times(&limiter, GROUP, Lane::Card, spent).await;
            let estimate = limiter.estimate(GROUP, n);
            let times = send_times(&limiter, GROUP, Lane::Card, n as usize).await;
            let took = *times.last().expect("n > 0");
            assert!(
                estimate.abs_diff(took) <= secs(1),
                "{n} after {spent}: estimated {estimate:?}, took {took:?}"
            );
        }
        assert_eq!(SendLimiter::off().estimate(GROUP, 100), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn off_never_waits() {
        let limiter = SendLimiter::off();
        let start = Instant::now();

        for i in 0..10_000 {
            limiter.ready(GROUP, Lane::Card).await;
            limiter.ready(PERSON + i, Lane::Decision).await;
            limiter.ready_global(Lane::Card).await;
        }
        limiter.retry_after(GROUP, secs(60));
        limiter.ready(GROUP, Lane::Card).await;

        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn within_budget_nothing_waits() {
        let limiter = SendLimiter::new(Limits::TELEGRAM);
        let start = Instant::now();

        // A card to each of 29 chats (the card lane's overall burst), two to one group.
        for chat in 1..=27 {
            limiter.ready(chat, Lane::Card).await;
        }
        limiter.ready(GROUP, Lane::Card).await;
        limiter.ready(GROUP, Lane::Card).await;

        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_chat_gets_its_burst_then_one_message_a_second() {
        let limiter = SendLimiter::new(Limits::TELEGRAM);

        let cards = send_times(&limiter, PERSON, Lane::Card, 6).await;
        let other = SendLimiter::new(Limits::TELEGRAM);
        let decisions = send_times(&other, PERSON, Lane::Decision, 6).await;

        // Cards: a burst of 2 (3 less the decision's slot), then one a second.
        assert_eq!(cards, [0, 0, 1, 2, 3, 4].map(secs));
        // Decisions: the full burst of 3, then one a second.
        assert_eq!(decisions, [0, 0, 0, 1, 2, 3].map(secs));
    }

    #[tokio::test(start_paused = true)]
    async fn sixty_cards_to_a_group_finish_when_the_model_allows() {
        let limiter = SendLimiter::new(Limits::TELEGRAM);

        let cards = send_times(&limiter, GROUP, Lane::Card, 60).await;

        // Card k (from 0) needs the chat's state (1 s apart, burst 2) and the group's (3 s
        // apart, burst 19) both to have room: k - 1 s and 3k - 54 s.
        let expected: Vec<Duration> = (0..60i64)
            .map(|k| secs((k - 1).max(3 * k - 54).max(0) as u64))
            .collect();
        assert_eq!(cards, expected);
        // The full group burst would have allowed the 60th at 120 s: the reserve costs 2.5 %.
        assert_eq!(cards[59], secs(123));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_that_chat_only() {
        let limiter = SendLimiter::new(Limits::TELEGRAM);
        let start = Instant::now();

        limiter.retry_after(GROUP, secs(10));
        limiter.ready(PERSON, Lane::Card).await;
        limiter.ready(-7, Lane::Card).await;
        let others = start.elapsed();
        limiter.ready(GROUP, Lane::Decision).await;
        let paused = start.elapsed();
        limiter.ready(GROUP, Lane::Card).await;
        let card_after = start.elapsed();

        assert_eq!(others, Duration::ZERO);
        assert_eq!(paused, secs(10));
        // The chat's budget counts as spent: from then on the steady pace, not a burst.
        assert_eq!(card_after, secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn a_decision_goes_at_once_while_cards_are_paced() {
        let limiter = SendLimiter::new(Limits::TELEGRAM);
        let cards = tokio::spawn({
            let limiter = limiter.clone();
            async move { send_times(&limiter, GROUP, Lane::Card, 60).await }
        });
        // At 50 s cards 0..=34 went (the last at 48 s); card 35 is due at 51 s.
        tokio::time::sleep(secs(50)).await;

        let start = Instant::now();
        limiter.ready(GROUP, Lane::Decision).await;
        let first = start.elapsed();
        limiter.ready(GROUP, Lane::Decision).await;
        let second = start.elapsed();
        let cards = cards.await.expect("the card task");

        assert_eq!(first, Duration::ZERO);
        // The reserve is gone: the second decision waits until 51 s, the slot card 35 was due
        // in, and takes it; card 35 goes two slots (6 s) later, and so do the cards after it.
        assert_eq!(second, secs(1));
        let expected: Vec<Duration> = (0..60i64)
            .map(|k| {
                let paced = (k - 1).max(3 * k - 54).max(0);
                secs((paced + if k >= 35 { 6 } else { 0 }) as u64)
            })
            .collect();
        assert_eq!(cards, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn the_reserve_comes_back_after_a_decision() {
        let limiter = SendLimiter::new(Limits::TELEGRAM);
        let cards = tokio::spawn({
            let limiter = limiter.clone();
            async move { send_times(&limiter, GROUP, Lane::Card, 40).await }
        });
        tokio::time::sleep(secs(50)).await;

        // At 50 s the decision takes the reserve: card 35 goes at 54 s, not 51 s.
        limiter.ready(GROUP, Lane::Decision).await;
        // After card 35 the reserve is back.
        tokio::time::sleep(secs(5)).await;
        let start = Instant::now();
        limiter.ready(GROUP, Lane::Decision).await;
        let again = start.elapsed();
        let cards = cards.await.expect("the card task");

        assert_eq!(again, Duration::ZERO);
        // Without decisions card k went at 3k - 54 s (k ≥ 27); each decision moved the later
        // ones one slot (3 s) on.
        let expected: Vec<Duration> = (0..40i64)
            .map(|k| {
                let paced = (k - 1).max(3 * k - 54).max(0);
                let pushed = match k {
                    ..35 => 0,
                    35 => 3,
                    _ => 6,
                };
                secs((paced + pushed) as u64)
            })
            .collect();
        assert_eq!(cards, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn callback_answers_count_against_the_overall_budget_only() {
        let limiter = SendLimiter::new(Limits::TELEGRAM);
        let start = Instant::now();

        for _ in 0..29 {
            limiter.ready_global(Lane::Card).await;
        }
        let burst = start.elapsed();
        limiter.ready_global(Lane::Decision).await;
        let reserve = start.elapsed();
        limiter.ready_global(Lane::Decision).await;
        let paced = start.elapsed();

        assert_eq!(burst, Duration::ZERO);
        assert_eq!(reserve, Duration::ZERO);
        // One thirtieth of a second, rounded up to tokio's millisecond timer.
        assert!(
            paced >= Duration::from_secs(1) / 30 && paced <= Duration::from_millis(35),
            "{paced:?}"
        );
    }
}
