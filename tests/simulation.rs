//! The proof of the bot's core promise (issue 10): a randomized simulation of the whole bot. The
//! real bot runs in-process against the WeChat sandbox and the fake Bot API, driven by a schedule
//! that one seed determines: polls, presses by several approvers, typed reasons, slash commands,
//! changes in the WeChat console, new applicants, faults on both sides and restarts (graceful,
//! and SIGKILL-equivalent: each life of the bot runs in its own tokio runtime, dropped with
//! `shutdown_background`, so every task dies wherever it is while the SQLite file stays). After
//! each schedule the world quiesces and the invariants are checked against what Telegram shows,
//! every version of every message it ever showed, what WeChat holds, every WeChat call and the
//! bot's own database (its cards and its audit log).
//!
//! The world (issue 16, "Widen the net"; issue 22's hostile answers), beside the presses,
//! commands, console changes, faults and restarts above, each drawn from the seed:
//! - WeChat: nonsense or huge `expires_in` on a fetched token, a token endpoint that redirects
//!   (302/307/308) to the sandbox's own devplugin endpoint, which records every body, so a
//!   followed redirect shows as the AppSecret received there; a 4 KB errmsg; an answer over the
//!   client's 8 MiB cap; 45009 (polling rests, 1 s here); every token revoked; spells of at least
//!   5.5 s (longer than the absence proof; people go on acting, quiescence waits) in which every
//!   listing's `apply_list` is not a list, or WeChat ignores `page`;
//! - re-applications (a decided applicant pending again with a newer `create_time`), listing
//!   changes the card does not show (the avatar link), bursts of 5-25 applicants, and 1 to 3
//!   applicants refused or timed out before the first poll (never carded) that commands target;
//! - the bot: approvers taken from the chat's administrators, reminders after 1-3 s, store
//!   writes failing for 0.1-2 s (a trigger, as `tests/lifecycle.rs` stages it), one schedule in
//!   12 moving the team chat (a restart with another `TEAM_CHAT_ID`, killed ones with an approval
//!   in flight), one in 40 paced at Telegram's real flood limits (a first burst of 21-28 cards
//!   and its digest, a stop in the middle of another burst), one in 75 with 150-250 applicants;
//! - on PostgreSQL (`WXBOT_TEST_DB=postgres`, issue 18), about one schedule in three of those
//!   that neither paces nor moves the chat runs two lives at once on one database, a leader and
//!   a standby with a 3 s lease: restarts kill or stop the leader (a restarted life comes back
//!   as a new replica, so the standby takes over), and the leader is paused once or twice
//!   (every thread of its runtime held, as SIGSTOP would) for 0.3-1.5 s or past its lease,
//!   3.5-6 s, waking stale. Drawn from a generator of their own, so every other schedule is
//!   what it was.
//!
//! - the approval policy (issue 19), from a generator of its own: about one schedule in four
//!   needs two approvers' ✅ (`APPROVALS_REQUIRED=2`), with pairs of votes on one applicant, a
//!   voter pressing ✅ twice, a non-approver's ✅ and ↩ Withdraw; about one in four waits out an
//!   undo window of 0.3-2.5 s before each approval or refusal, with ↩ Undo pressed by the
//!   decider, the other approver or a non-approver, within the window or just past it.
//!
//! Checked besides issue 10's and 16's invariants: a graceful stop ends within [`STOP_BOUND`];
//! the AppSecret never reaches the recorder; no text is refused as too long; `/delete` of a
//! never-carded applicant is not answered "cannot be done"; cards are judged per chat, and the
//! chat the team left shows only closed cards (the moved line, no ✅/❌), and the new chat offered
//! no ✅/❌ while the old chat's card showed a decision in progress or unknown; flood-paced lives
//! earn at most [`FLOOD_REFUSALS_TOLERATED`] refusals and a burst over 20 has its digest; and
//! the policy's promises ([`World::check_policy`]): no approval attempt (so no `dev_agree`)
//! without two distinct approvers' standing votes, no vote stored for a non-approver, no write
//! for a decision that was undone, one write per decision, every press answered as a vote, a
//! withdrawal, a scheduled or undone decision backed by its audit row. Each was
//! seen to fail with its guard in `src/` broken (see the commit messages).
//!
//! `SIM_SCHEDULES=<n>` runs n schedules (seeds `SIM_BASE_SEED`.., default 1..), `SIM_SEED=<n>`
//! replays one (printing its schedule and run log), `SIM_SEEDS=<a,b,…>` runs those,
//! `SIM_PLANS=1` only prints the schedules (to find the seeds that draw a knob), `SIM_JOBS=<n>`
//! runs n schedules at a time, `SIM_SHOW=1` prints every schedule's report, `SIM_LOG=<filter>` the
//! bot's log (threads named `sim-<seed>-life-<n>`). A failing schedule prints its seed, schedule,
//! run log and evidence.
//! Ten thousand: `SIM_SCHEDULES=10000 SIM_JOBS=16 cargo test --release --test simulation -- --nocapture`.
//!
//! Timing decides which interleavings a seed meets, so a replay may pass where the batch failed:
//! replay it a few times, or with `SIM_JOBS` and neighbours as in the batch. Measured with a
//! guard broken (a listing whose `apply_list` is not a list taken as empty): seed 99 failed on
//! 10 of 10 replays (`SIM_SEED=99 cargo test --test simulation randomized -- --nocapture`, a
//! debug build on two shared cores); in the batch, 5 of the 8 seeds with such a spell failed.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::{ALICE, BOB, EVE, OTHER_CHAT, TEAM, TestApp, tg_fault, wx_fault};
use futures::StreamExt as _;
use serde_json::json;
use sqlx::Row as _;
use tokio_util::sync::CancellationToken;
use wxplugin_bot::config::Settings;
use wxplugin_bot::i18n::{Lang, Texts, fill};
use wxplugin_bot::testbed::fake_telegram::{FakeButton, FakeMessage, TgFault};
use wxplugin_bot::testbed::sandbox::{Fault, NewApplicant, Paging};

/// Schedules the test command runs by default. With the widened world (spells, flood-paced and
/// crowded schedules, chat moves), 300 took 4 min 33 s (273 s of the test, 331 s of CPU) of a
/// debug build on two cores shared with another engineer's CI, 16 at a time; eight at a time,
/// 100 of them took 3 min 41 s, since every schedule waits at least two absence proofs (8.5 s)
/// in its quiescent run.
const DEFAULT_SCHEDULES: u64 = 300;
/// Schedules run at once by default: each mostly waits on its own servers and on its quiescent
/// run's fixed spans (300 schedules used 331 s of CPU in 273 s on two cores).
const DEFAULT_JOBS: usize = 16;
/// Violations the bot cannot yet avoid, counted and printed but not failing the run, each with
/// why. None today: keep the list for the day one has to be reported before it is fixed.
const KNOWN: &[(&str, &str)] = &[];

/// The simulated bot's `absence_proof_after`.
const ABSENCE_PROOF: Duration = Duration::from_secs(4);
/// The longest an injected WeChat fault lasts, however few of its calls came: shorter than
/// [`ABSENCE_PROOF`], as the bot's design asks of a glitch.
const GLITCH_FOR: Duration = Duration::from_secs(3);

/// How long a start, a stop or an answer may take before the simulation calls it a failure
/// (teloxide holds a request 10 s after a Telegram 5xx, and a graceful stop waits for it).
const PATIENCE: Duration = Duration::from_secs(25);
/// The most a graceful stop may take (issue 16: a stop ends within seconds, whatever is being
/// paced, well within the unit's 30 s before SIGKILL). What it may wait for, one after another: a
/// decision in flight finishes its WeChat call (a 1 s timeout here, resent at most twice after
/// "busy": about 3 s), its edit waits for Telegram's budget at most the bot's `STOP_GRACE` (5 s),
/// and teloxide holds a request 10 s after a Telegram 5xx before it reports it; 2 s more for eight
/// schedules on two shared cores. New cards are not waited for at all.
const STOP_BOUND: Duration = Duration::from_secs(20);

/// The lease of schedules with two lives at once (`LEASE_SECS`' lowest value, as in
/// `tests/replicas.rs`): a killed or paused leader is replaced within about this long.
const TWO_LIVES_LEASE: Duration = Duration::from_secs(3);
/// How long the first poll may take to card the seeded applicants (it takes well under a second
/// alone; eight schedules share two cores).
const FIRST_CARDS: Duration = Duration::from_secs(10);
/// How far from a kill the fake may have taken a card the killed life never recorded, for it to
/// count as the documented duplicate window: before the kill, the answer's way back and one
/// SQLite write on two shared cores; after it, a request already on the wire (the fake may hold
/// a call up to 300 ms before acting on it).
/// Seen: from 3 ms after the kill to 22 ms before it.
const WINDOW_BEFORE_KILL: Duration = Duration::from_millis(1_000);
const WINDOW_AFTER_KILL: Duration = Duration::from_millis(500);
/// Where a redirecting token endpoint points: the sandbox's own devplugin endpoint, which records
/// every body it is sent, so a followed redirect shows as a recorded call carrying the AppSecret
/// (no extra listener needed). `{sandbox}` is the sandbox's base URL.
const REDIRECT_TO: &str = "{sandbox}/wxa/devplugin";
/// Calls the fake may refuse over Telegram's flood limits in a schedule that enforces them. The
/// bot's limiter keeps the same budgets, but it spends a slot when it sends and the fake counts
/// one when the request arrives: two requests sent exactly one interval apart can arrive closer
/// together on two loaded cores (seen once in 40 schedules: one refusal, which the bot waited
/// out). Without the limiter a first poll of 21 cards earns a refusal for nearly every card past
/// the burst.
const FLOOD_REFUSALS_TOLERATED: u64 = 2;
/// How long a spell of a broken WeChat lasts at least: longer than the absence proof, so that
/// a bot taking the spell's listings for the truth would close cards as gone.
const SPELL: Duration = Duration::from_millis(ABSENCE_PROOF.as_millis() as u64 + 1_500);
/// The refusal reason `/reject` gives.
const COMMAND_REASON: &str = "sim command reason";

fn texts() -> &'static Texts {
    Lang::En.texts()
}

// ---------------------------------------------------------------- the schedule

/// A button a person presses on a card.
#[derive(Clone, Copy, Debug)]
enum Button {
    Approve,
    Reject,
    /// The n-th preset reason (modulo how many the card shows).
    Preset(u8),
    Other,
    Cancel,
    Delete,
    Retry,
    Refresh,
    /// ↩ Withdraw my vote (quorum schedules).
    Withdraw,
    /// ↩ Undo on a card waiting out its undo window (undo schedules).
    Undo,
}

/// A slash command about an applicant.
#[derive(Clone, Copy, Debug)]
enum Cmd {
    Approve,
    Reject,
    Delete,
    Pending,
}

/// What the WeChat console does to an applicant.
#[derive(Clone, Copy, Debug)]
enum Console {
    Approve,
    Refuse,
    TimeOut,
    Remove,
    /// A decided applicant (approved, refused or timed out) applies again: pending, with a newer
    /// `create_time` (issue 16: the bot must take it for a re-application and card it anew).
    Reapply,
    /// A pending applicant's listing changes a field the card does not show (the avatar link).
    Touch,
}

/// One thing that happens. `target` picks an applicant among every appid seen so far (modulo).
#[derive(Clone, Debug)]
enum Step {
    Refresh {
        who: i64,
    },
    Press {
        who: i64,
        target: u8,
        button: Button,
        /// Press an older card of the applicant, if it has several.
        older: bool,
    },
    TypeReason {
        /// The approver the prompt asks, or someone else.
        addressee: bool,
        target: u8,
        too_long: bool,
    },
    Command {
        who: i64,
        target: u8,
        command: Cmd,
    },
    Console {
        target: u8,
        change: Console,
    },
    NewApplicant,
    WeChatFault {
        target: &'static str,
        fault: Fault,
        times: u32,
        skip: u32,
    },
    TelegramFault {
        method: &'static str,
        fault: TgFault,
        times: u32,
    },
    DeleteCardMessage {
        target: u8,
    },
    Restart {
        kill: bool,
    },
    /// Every token WeChat issued now answers 40001.
    RevokeTokens,
    /// WeChat answers page 1 whatever `page` asks, for longer than the absence proof (people
    /// go on acting; quiescence waits for the spell to end): a listing that pages like this
    /// hides everyone past the first page, so it proves no absence.
    IgnorePageSpell,
    /// Many applicants at once (a paced burst where flood limits are enforced).
    Burst(usize),
    /// The bot's disk fails some writes for a while (a SQLite trigger raising "disk I/O error",
    /// as `tests/lifecycle.rs` stages it): closing a card (`true`) or recording an audit result
    /// (`false`).
    StoreFault {
        closing: bool,
        ms: u64,
    },
    /// The bot restarts (killed or stopped) with another `TEAM_CHAT_ID`: the old chat's cards
    /// must close with the moved line and no ✅/❌, the new chat gets the cards.
    MoveChat {
        kill: bool,
    },
    /// WeChat answers every listing with an `apply_list` that is not a list, for longer than
    /// the absence proof (people go on acting; quiescence waits for the spell to end): each is
    /// a failed poll, so no card may close as gone (taken for empty listings, two of them that
    /// far apart would close them all).
    WrongShapeSpell(&'static str),
    /// The leader's process stops being scheduled for this long (SIGSTOP and SIGCONT: every
    /// thread of its runtime held), in schedules with two lives at once. Longer than
    /// [`TWO_LIVES_LEASE`] it wakes a stale leader, whose writes the fence must refuse.
    PauseLeader {
        ms: u64,
    },
}

/// A step and the pause before it.
#[derive(Clone, Debug)]
struct Timed {
    gap_ms: u64,
    step: Step,
}

/// Everything one seed determines.
#[derive(Clone, Debug)]
struct Plan {
    seed: u64,
    applicants: usize,
    page_size: u32,
    /// WeChat's undocumented cap on `num`, if any.
    max_num: Option<u32>,
    poll_ms: u64,
    steps: Vec<Timed>,
    /// Whether the bot restarts before the quiescent run: `None` keeps it running, `Some(kill)`
    /// kills it or stops it through the shutdown path.
    restart_before_quiesce: Option<bool>,
    /// Applicants WeChat already had as refused (3) or timed out (4) before the bot's first
    /// poll: they never had a card, and commands on them must work from WeChat's state.
    decided_at_start: Vec<i64>,
    /// Telegram's flood limits enforced by the fake and the bot's own limiter on.
    flood: bool,
    /// Reminders of applicants pending longer than this (`None`: off).
    remind_after: Option<Duration>,
    /// Approvers are the team chat's administrators (`APPROVER_IDS` unset).
    approvers_from_admins: bool,
    /// Two lives of the bot at once on one database (PostgreSQL only): a leader and a standby
    /// with names of their own and a lease of [`TWO_LIVES_LEASE`]; restarts and pauses act on
    /// the leader, and a restarted life comes back as a new replica.
    two_lives: bool,
    /// `APPROVALS_REQUIRED` (issue 19): 1, or 2 in about one schedule in four, whose ✅ are
    /// votes until both approvers have voted.
    approvals_required: u32,
    /// `UNDO_SECS` (issue 19), in about one schedule in four: every decision but a delete waits
    /// this long with ↩ Undo before its write.
    undo: Option<Duration>,
}

fn pick<T: Copy>(rng: &mut fastrand::Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())]
}

impl Plan {
    fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let applicants = rng.usize(2..=8);
        let page_size = rng.u32(2..=4);
        let max_num = (rng.u8(..3) == 0).then(|| rng.u32(1..=page_size));
        let poll_ms = rng.u64(150..=600);
        let count = rng.usize(20..=45);
        let steps: Vec<Timed> = (0..count)
            .map(|_| Timed {
                gap_ms: rng.u64(0..=60),
                step: Self::step(&mut rng),
            })
            .collect();
        let mut steps = steps;
        // One schedule in 12 moves the team chat once, at a step of its own.
        if rng.u8(..12) == 0 {
            let at = rng.usize(..=steps.len());
            steps.insert(
                at,
                Timed {
                    gap_ms: rng.u64(0..=60),
                    step: Step::MoveChat { kill: rng.bool() },
                },
            );
        }
        let restart_before_quiesce = match rng.u8(..3) {
            0 => None,
            1 => Some(false),
            _ => Some(true),
        };
        // The knobs below are drawn after everything above, so that a seed's schedule is the one
        // it was before they existed, give or take the new step kinds.
        let decided_at_start = if rng.u8(..4) == 0 {
            (0..rng.usize(1..=3))
                .map(|_| pick(&mut rng, &[3, 4]))
                .collect()
        } else {
            Vec::new()
        };
        let remind_after = (rng.u8(..8) == 0).then(|| Duration::from_secs(rng.u64(1..=3)));
        let approvers_from_admins = rng.u8(..6) == 0;
        // About one in 40 schedules paces against Telegram's real limits (20 messages a minute
        // in a group): their first poll brings a burst of over 20 cards and its digest, and
        // they stay short, since every message costs seconds. About one in 100 of the others
        // has a couple of hundred applicants.
        let (flood, applicants, steps) = match rng.u32(..200) {
            0..5 => {
                // A stop in the middle of a paced burst, which takes many seconds at Telegram's
                // pace: it must still end within STOP_BOUND.
                let mut steps = steps[..steps.len().min(10)].to_vec();
                let at = rng.usize(..=steps.len());
                steps.insert(
                    at,
                    Timed {
                        gap_ms: rng.u64(0..=3_000),
                        step: Step::Restart { kill: false },
                    },
                );
                steps.insert(
                    at,
                    Timed {
                        gap_ms: 0,
                        // Enough that the cards left when the stop comes take longer than
                        // STOP_BOUND at 3 s each, if a stop waited for them.
                        step: Step::Burst(rng.usize(10..=16)),
                    },
                );
                (true, rng.usize(21..=28), steps)
            }
            5..7 => (false, rng.usize(150..=250), steps),
            _ => (false, applicants, steps),
        };
        // Two lives at once, from a generator of its own so that every schedule drawn before
        // they existed is the same: on PostgreSQL (SQLite has one process), about one schedule
        // in three that neither paces at Telegram's limits nor moves the chat (a move restarts
        // every replica with another TEAM_CHAT_ID; both are judged on one life).
        let mut knob = fastrand::Rng::with_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x18);
        let moves = steps
            .iter()
            .any(|t| matches!(t.step, Step::MoveChat { .. }));
        let two_lives =
            common::postgres::suites_on_postgres() && !flood && !moves && knob.u8(..3) == 0;
        let mut steps = steps;
        if two_lives {
            // One or two pauses of the leader: some shorter than the lease (it keeps leading),
            // most longer (it wakes stale).
            for _ in 0..knob.usize(1..=2) {
                let at = knob.usize(..=steps.len());
                let ms = if knob.u8(..4) == 0 {
                    knob.u64(300..=1_500)
                } else {
                    knob.u64(3_500..=6_000)
                };
                steps.insert(
                    at,
                    Timed {
                        gap_ms: knob.u64(0..=60),
                        step: Step::PauseLeader { ms },
                    },
                );
            }
        }
        // The approval policy (issue 19), from a generator of its own too: a quorum of two and
        // an undo window, each in about one schedule in four, with presses that exercise them
        // put between the steps drawn above.
        let mut policy = fastrand::Rng::with_seed(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0x19);
        let approvals_required = if policy.u8(..4) == 0 { 2 } else { 1 };
        let undo = (policy.u8(..4) == 0).then(|| Duration::from_millis(policy.u64(300..=2_500)));
        if approvals_required > 1 {
            Self::add_votes(&mut policy, &mut steps);
        }
        if let Some(window) = undo {
            Self::add_undos(&mut policy, &mut steps, window);
        }
        Self {
            seed,
            applicants,
            page_size,
            max_num,
            poll_ms,
            steps,
            restart_before_quiesce,
            decided_at_start,
            flood,
            remind_after,
            approvers_from_admins,
            two_lives,
            approvals_required,
            undo,
        }
    }

    /// Quorum schedules: pairs of ✅ by both approvers on one applicant (the second one decides),
    /// a withdrawal now and then between them or after, and ✅ pressed twice by one voter.
    fn add_votes(rng: &mut fastrand::Rng, steps: &mut Vec<Timed>) {
        for _ in 0..rng.usize(2..=6) {
            let target = rng.u8(..);
            let (first, second) = if rng.bool() {
                (ALICE, BOB)
            } else {
                (BOB, ALICE)
            };
            let press = |who, button| Step::Press {
                who,
                target,
                button,
                older: false,
            };
            let mut run = vec![press(first, Button::Approve)];
            match rng.u8(..6) {
                // The same voter again: an alert, not a second vote.
                0 => run.push(press(first, Button::Approve)),
                // Taken back before the second vote: it does not decide.
                1 => run.push(press(first, Button::Withdraw)),
                // Someone who is not an approver votes: refused.
                2 => run.push(press(EVE, Button::Approve)),
                _ => {}
            }
            run.push(press(second, Button::Approve));
            if rng.u8(..4) == 0 {
                run.push(press(pick(rng, &[first, second]), Button::Withdraw));
            }
            let at = rng.usize(..=steps.len());
            let run: Vec<Timed> = run
                .into_iter()
                .map(|step| Timed {
                    gap_ms: rng.u64(0..=250),
                    step,
                })
                .collect();
            steps.splice(at..at, run);
        }
        // And stray withdrawals anywhere.
        Self::add_stray_presses(rng, steps, &[ALICE, BOB, EVE], Button::Withdraw);
    }

    /// Undo schedules: ↩ Undo after some deciding presses (within the window or just past it,
    /// by the decider, the other approver or a non-approver), and now and then anywhere.
    fn add_undos(rng: &mut fastrand::Rng, steps: &mut Vec<Timed>, window: Duration) {
        let window_ms = window.as_millis() as u64;
        let mut i = 0;
        while i < steps.len() {
            let undo = match steps[i].step {
                Step::Press {
                    who,
                    target,
                    button: Button::Approve | Button::Preset(_),
                    ..
                } if rng.u8(..3) == 0 => Some((who, target)),
                Step::Command {
                    who,
                    target,
                    command: Cmd::Approve | Cmd::Reject,
                } if rng.u8(..4) == 0 => Some((who, target)),
                _ => None,
            };
            if let Some((decider, target)) = undo {
                let who = match rng.u8(..8) {
                    0 => EVE,
                    1..=2 if decider == ALICE => BOB,
                    1..=2 => ALICE,
                    _ => decider,
                };
                steps.insert(
                    i + 1,
                    Timed {
                        gap_ms: rng.u64(0..=window_ms + 300),
                        step: Step::Press {
                            who,
                            target,
                            button: Button::Undo,
                            older: false,
                        },
                    },
                );
                i += 1;
            }
            i += 1;
        }
        Self::add_stray_presses(rng, steps, &[ALICE, BOB], Button::Undo);
    }

    /// Up to two presses of `button` by one of `people` on any applicant, anywhere in the steps.
    fn add_stray_presses(
        rng: &mut fastrand::Rng,
        steps: &mut Vec<Timed>,
        people: &[i64],
        button: Button,
    ) {
        for _ in 0..rng.usize(0..=2) {
            let at = rng.usize(..=steps.len());
            steps.insert(
                at,
                Timed {
                    gap_ms: rng.u64(0..=60),
                    step: Step::Press {
                        who: pick(rng, people),
                        target: rng.u8(..),
                        button,
                        older: false,
                    },
                },
            );
        }
    }

    fn step(rng: &mut fastrand::Rng) -> Step {
        let target = rng.u8(..);
        let approver = pick(rng, &[ALICE, BOB]);
        // EVE (not an approver) now and then.
        let person = if rng.u8(..10) == 0 { EVE } else { approver };
        match rng.u32(..100) {
            0..30 => Step::Press {
                who: person,
                target,
                button: match rng.u32(..16) {
                    0..5 => Button::Approve,
                    5..8 => Button::Reject,
                    8..10 => Button::Preset(rng.u8(..8)),
                    10 => Button::Other,
                    11 => Button::Cancel,
                    12..14 => Button::Delete,
                    14 => Button::Retry,
                    _ => Button::Refresh,
                },
                older: rng.u8(..4) == 0,
            },
            30..36 => Step::TypeReason {
                addressee: rng.u8(..5) != 0,
                target,
                too_long: rng.u8(..5) == 0,
            },
            36..46 => Step::Command {
                who: person,
                target,
                command: pick(rng, &[Cmd::Approve, Cmd::Reject, Cmd::Delete, Cmd::Pending]),
            },
            46..52 => Step::Refresh { who: person },
            52..60 => Step::Console {
                target,
                change: pick(
                    rng,
                    &[
                        Console::Approve,
                        Console::Refuse,
                        Console::TimeOut,
                        Console::Remove,
                        Console::Reapply,
                        Console::Touch,
                    ],
                ),
            },
            60..64 => Step::NewApplicant,
            64..79 => {
                let target = match rng.u32(..11) {
                    0..5 => "dev_apply_list",
                    5..7 => "dev_agree",
                    7 => "dev_refuse",
                    8 => "dev_delete",
                    9 => "any",
                    _ => "token",
                };
                let fault = match rng.u32(..22) {
                    // Partial listings: the bot must not take them for the truth.
                    10 => Fault::EmptyList,
                    11 => Fault::EmptyListArray,
                    12 => Fault::Truncate(rng.usize(0..=2)),
                    // A write that took effect, answered with an error.
                    13 | 14 => Fault::AppliedThenErrcode(pick(rng, &[-1, 45011])),
                    0 => Fault::Errcode(-1),
                    1 => Fault::Errcode(45011),
                    2 => Fault::Errcode(89240),
                    3 => Fault::Http(502),
                    4 => Fault::NonJson,
                    // Slow, but answered within the client's timeout (1 s).
                    5..=7 => Fault::Delay(Duration::from_millis(rng.u64(30..=400))),
                    // Hostile and broken answers (issue 22). A token whose lifetime is nonsense
                    // or past any clock: a token error, never a panic.
                    15 => Fault::ExpiresIn(
                        pick(
                            rng,
                            &[
                                "9223372036854775808",
                                "18446744073709551615",
                                "-5",
                                "0",
                                "\"soon\"",
                                "1e300",
                            ],
                        )
                        .to_owned(),
                    ),
                    // A listing that is not a list: a failed poll, never an empty one.
                    16 => Fault::ApplyList(
                        pick(
                            rng,
                            &["\"none\"", "{}", "{\"appid\":\"wx0\"}", "42", "true"],
                        )
                        .to_owned(),
                    ),
                    // A 4 KB errmsg: every text quoting it must still fit a message.
                    17 => Fault::LongErrmsg(pick(rng, &[-1, 45009, 45011, 89240]), 4096),
                    // Over the client's 8 MiB cap: an error, read no further.
                    18 => Fault::Oversized(9 * 1024 * 1024),
                    // A token endpoint that redirects to where the sandbox records every body:
                    // followed, the AppSecret would land there.
                    19 => Fault::Redirect(pick(rng, &[302, 307, 308]), REDIRECT_TO.to_owned()),
                    // The daily quota: polling rests (the simulated bot's pause is short).
                    20 | 21 => Fault::Errcode(45009),
                    // Lost: the call is applied, the answer comes after the client gave up.
                    _ => Fault::Delay(Duration::from_millis(rng.u64(1_100..=1_500))),
                };
                // Faults that only act on one kind of call go where they act.
                let target = match fault {
                    Fault::EmptyList
                    | Fault::EmptyListArray
                    | Fault::Truncate(_)
                    | Fault::ApplyList(_) => "dev_apply_list",
                    Fault::ExpiresIn(_) | Fault::Redirect(..) => "token",
                    Fault::AppliedThenErrcode(_)
                        if !target.starts_with("dev_") || target == "dev_apply_list" =>
                    {
                        pick(rng, &["dev_agree", "dev_refuse", "dev_delete"])
                    }
                    _ => target,
                };
                let times = match fault {
                    Fault::Oversized(_) => 1,
                    _ => rng.u32(1..=4),
                };
                Step::WeChatFault {
                    target,
                    fault,
                    times,
                    skip: rng.u32(0..=2),
                }
            }
            79..85 => {
                let method = pick(
                    rng,
                    &[
                        "sendMessage",
                        "editMessageText",
                        "answerCallbackQuery",
                        "deleteMessage",
                    ],
                );
                // teloxide waits 10 s after any 5xx before it reports it: rare, or nothing else
                // gets to run.
                let fault = match rng.u32(..6) {
                    0 => TgFault::RetryAfter(1),
                    1 if rng.u8(..8) == 0 => TgFault::Http(502),
                    1 => TgFault::Delay(Duration::from_millis(rng.u64(20..=300))),
                    2 if method == "answerCallbackQuery" => TgFault::Api {
                        code: 400,
                        description: "Bad Request: query is too old and response timeout expired or query ID is invalid".to_owned(),
                    },
                    2 | 3 => TgFault::Delay(Duration::from_millis(rng.u64(20..=300))),
                    _ => TgFault::DelayAnswer(Duration::from_millis(rng.u64(20..=300))),
                };
                Step::TelegramFault {
                    method,
                    fault,
                    times: rng.u32(1..=2),
                }
            }
            85..88 => Step::DeleteCardMessage { target },
            88..92 => Step::Restart { kill: rng.bool() },
            92 => Step::RevokeTokens,
            93 if rng.bool() => Step::IgnorePageSpell,
            94 if rng.u8(..3) == 0 => Step::Burst(rng.usize(5..=25)),
            94 if rng.bool() => Step::StoreFault {
                closing: rng.bool(),
                ms: rng.u64(100..=2_000),
            },
            94 if rng.u8(..2) == 0 => Step::WrongShapeSpell(pick(
                rng,
                &["\"none\"", "{}", "{\"appid\":\"wx0\"}", "42", "true"],
            )),
            // Weighted again toward the heart of it: approvals and refusals racing polls.
            _ => Step::Press {
                who: approver,
                target,
                button: pick(rng, &[Button::Approve, Button::Reject, Button::Preset(0)]),
                older: false,
            },
        }
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "seed {}: {} applicants, page size {} (WeChat's cap {:?}), poll every {} ms, {} before the quiescent run\n",
            self.seed,
            self.applicants,
            self.page_size,
            self.max_num,
            self.poll_ms,
            match self.restart_before_quiesce {
                None => "no restart",
                Some(false) => "graceful restart",
                Some(true) => "kill and restart",
            }
        );
        let _ = writeln!(
            s,
            "  decided before the first poll {:?}, flood limits {}, reminders {:?}, approvers {}",
            self.decided_at_start,
            if self.flood { "enforced" } else { "off" },
            self.remind_after,
            if self.approvers_from_admins {
                "the chat's administrators"
            } else {
                "APPROVER_IDS"
            },
        );
        if self.two_lives {
            let _ = writeln!(
                s,
                "  two lives at once (a leader and a standby, lease {TWO_LIVES_LEASE:?})"
            );
        }
        if self.approvals_required > 1 || self.undo.is_some() {
            let _ = writeln!(
                s,
                "  APPROVALS_REQUIRED {}, undo window {:?}",
                self.approvals_required, self.undo
            );
        }
        for (i, t) in self.steps.iter().enumerate() {
            let _ = writeln!(s, "  {i:>2}. +{:>2} ms {:?}", t.gap_ms, t.step);
        }
        s
    }
}

// ---------------------------------------------------------------- one life of the bot

/// One run of the bot, in a runtime of its own so that ending it can drop every task it spawned
/// wherever it is (a SIGKILL), not just the serve task.
struct Life {
    /// Which life of the schedule this is, counted from 1 in the order they started.
    number: usize,
    /// Its `REPLICA_NAME`, as the lease names its holder.
    replica: String,
    /// Until when its threads are held ([`Life::pause`]).
    paused_until: Instant,
    runtime: tokio::runtime::Runtime,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// What [`Life::ended`] found, once it found the task finished.
    why_ended: Option<String>,
}

/// Worker threads of a life's runtime.
const LIFE_WORKERS: usize = 2;

impl Life {
    /// `name` names its threads, so that logs (`SIM_LOG`) tell schedules and lives apart.
    fn start(settings: Settings, name: String, number: usize) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(LIFE_WORKERS)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("a runtime for the bot");
        let stop = CancellationToken::new();
        let replica = settings.replica.clone();
        let handle = runtime.spawn(wxplugin_bot::bot::run(settings, stop.clone()));
        Self {
            number,
            replica,
            paused_until: Instant::now(),
            runtime,
            stop,
            handle,
            why_ended: None,
        }
    }

    /// SIGSTOP, then SIGCONT after `length`: every worker of its runtime is held in a task that
    /// sleeps, so no task of the bot runs, no timer fires and no answer is read meanwhile, while
    /// its sockets stay open. Each holding task waits until the other workers are held too (or
    /// the pause is over), so the whole runtime stops at once.
    fn pause(&mut self, length: Duration) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let held = Arc::new(AtomicUsize::new(0));
        let until = Instant::now() + length;
        self.paused_until = until;
        for _ in 0..LIFE_WORKERS {
            let held = held.clone();
            self.runtime.spawn(async move {
                held.fetch_add(1, Ordering::SeqCst);
                while held.load(Ordering::SeqCst) < LIFE_WORKERS && Instant::now() < until {
                    std::thread::yield_now();
                }
                std::thread::sleep(until.saturating_duration_since(Instant::now()));
            });
        }
    }

    /// SIGKILL-equivalent: no shutdown path runs.
    fn kill(self) {
        self.runtime.shutdown_background();
    }

    /// The shutdown path: how long it took, or why it did not end cleanly.
    async fn stop(mut self) -> Result<Duration, String> {
        if let Some(why) = self.ended().await {
            self.runtime.shutdown_background();
            return Err(why);
        }
        let asked = Instant::now();
        self.stop.cancel();
        let result = match tokio::time::timeout(PATIENCE, &mut self.handle).await {
            Ok(Ok(Ok(()))) => Ok(asked.elapsed()),
            Ok(Ok(Err(e))) => Err(format!("the bot ended with an error: {e:#}")),
            Ok(Err(e)) => Err(format!("the bot task failed: {e}")),
            Err(_) => Err(format!("the bot did not stop within {PATIENCE:?}")),
        };
        self.runtime.shutdown_background();
        result
    }

    /// Why the bot ended by itself, if it did (asked again, the same answer: a finished task's
    /// handle is awaited once).
    async fn ended(&mut self) -> Option<String> {
        if self.why_ended.is_none() && self.handle.is_finished() {
            self.why_ended = Some(match (&mut self.handle).await {
                Ok(Ok(())) => "the bot stopped by itself".to_owned(),
                Ok(Err(e)) => format!("the bot ended with an error: {e:#}"),
                Err(e) => format!("the bot task failed: {e}"),
            });
        }
        self.why_ended.clone()
    }
}

// ---------------------------------------------------------------- the world

/// A moment in the run: when, and the highest message id in the team chat then (an exact
/// order for messages, where instants are only as good as the clocks).
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: Instant,
    /// In the first team chat.
    last_message: i32,
    /// In the chat the team moved to.
    last_moved: i32,
}

impl Mark {
    /// The highest message id in `chat` then.
    fn last(&self, chat: i64) -> i32 {
        if chat == TEAM {
            self.last_message
        } else {
            self.last_moved
        }
    }
}

/// A kill: the life it ended, the moment of it, and the card messages the database held
/// right after it (a window card is one it did not hold then, whatever its row held later).
#[derive(Clone, Debug)]
struct Kill {
    life: usize,
    mark: Mark,
    /// Chat and message of every card row.
    recorded: HashSet<(i64, i64)>,
}

/// A press of a decision button: who pressed what on whose card, and the query's id.
#[derive(Clone, Debug)]
struct PressLog {
    query: String,
    who: i64,
    appid: String,
    /// `approve`, `reject` or `delete`; `withdraw` and `undo` for ↩ presses.
    action: &'static str,
    /// A preset's reason, as its label shows it.
    reason: Option<String>,
}

/// How much of the approval policy (issue 19) the schedules exercised, from their audit logs:
/// what a run of thousands reports beside its violations.
#[derive(Clone, Copy, Debug, Default)]
struct PolicyTally {
    quorum_schedules: usize,
    undo_schedules: usize,
    votes: usize,
    withdrawn: usize,
    /// Approvals WeChat took after a quorum of two.
    quorum_approvals: usize,
    scheduled: usize,
    undone: usize,
    /// Attempts made when an undo window ended.
    window_writes: usize,
}

impl std::ops::AddAssign for PolicyTally {
    fn add_assign(&mut self, o: Self) {
        self.quorum_schedules += o.quorum_schedules;
        self.undo_schedules += o.undo_schedules;
        self.votes += o.votes;
        self.withdrawn += o.withdrawn;
        self.quorum_approvals += o.quorum_approvals;
        self.scheduled += o.scheduled;
        self.undone += o.undone;
        self.window_writes += o.window_writes;
    }
}

impl std::fmt::Display for PolicyTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} schedules with a quorum of 2 ({} votes, {} withdrawn, {} approvals by quorum), {} with an undo window ({} decisions scheduled, {} undone, {} sent when their window ended)",
            self.quorum_schedules,
            self.votes,
            self.withdrawn,
            self.quorum_approvals,
            self.undo_schedules,
            self.scheduled,
            self.undone,
            self.window_writes
        )
    }
}

/// What the invariants are about.
#[derive(Clone, Debug)]
struct Violation {
    invariant: &'static str,
    appid: Option<String>,
    detail: String,
}

struct World {
    plan: Plan,
    app: TestApp,
    settings: Settings,
    /// Lives started so far.
    lives: usize,
    /// The lives running now, oldest first: one, or two in a schedule with two lives.
    running: Vec<Life>,
    started: Instant,
    /// Every appid seen, in the order first seen: targets index into it.
    known: Vec<String>,
    /// Card messages a person deleted, with their chat.
    deleted_by_people: HashSet<(i64, i32)>,
    /// When each life started, with the highest message id in the team chat then, in order.
    life_starts: Vec<Mark>,
    /// Every kill, in order.
    kills: Vec<Kill>,
    /// Card messages the bot never recorded, each tied to the kill just after its send: the
    /// documented duplicate window (a kill between Telegram taking a card and the bot recording
    /// it). At most one per kill; counted and reported, not violations.
    windows: usize,
    /// What WeChat's applicants were when the world began (all pending).
    initial: HashMap<String, i64>,
    /// What the console did and when: the appid and its new status (`None`: removed).
    console: Vec<(String, Instant, Option<i64>)>,
    /// Presses of decision buttons, to hold each one the bot accepted to its audit attempt.
    presses: Vec<PressLog>,
    /// Refusal reasons people chose, per appid: presets pressed, reasons typed and commanded.
    chosen: HashMap<String, Vec<String>>,
    /// Re-applications: the appid and how many sandbox calls had been made by then (writes
    /// after that mark are about the new application).
    reapplied: Vec<(String, usize)>,
    /// `/delete` commands: the chat and message, the appid, and when it was sent.
    deletes: Vec<(i64, i32, String, Instant)>,
    /// The slowest graceful stop.
    slowest_stop: Duration,
    /// Pauses of a leader (schedules with two lives).
    pauses: usize,
    /// The team chat now (it moves at most once, from TEAM to OTHER_CHAT).
    chat: i64,
    /// When the team chat moved.
    moved_at: Option<Instant>,
    /// When the last spell of a broken WeChat may end: quiescence waits for it.
    spells_until: Instant,
    /// When every listing that hides applicants (empty, truncated) ends: the first such fault
    /// opens one glitch window and later ones share it, as two glitches back to back are one
    /// longer glitch, which the absence proof does not claim to outlast (seed 73033: two
    /// empty answers 4 s apart, every listing between them refused by a quota pause).
    hiding_until: Option<Instant>,
    /// When the last store fault ends, if there was one.
    disk_failing_until: Option<Instant>,
    /// The fake's flood refusals when the first life ended.
    first_life_refusals: Option<u64>,
    /// What the approval policy's rows came to ([`World::check_policy`]).
    tally: PolicyTally,
    log: Vec<String>,
    violations: Vec<Violation>,
}

impl World {
    async fn new(plan: Plan) -> Self {
        let mut app = TestApp::new(plan.applicants).await;
        app.vars.insert("TELEGRAM_THROTTLE", "off".into());
        app.vars.insert("REMIND_AFTER_HOURS", "0".into());
        app.vars
            .insert("WECHAT_PAGE_SIZE", plan.page_size.to_string());
        app.wx.sandbox.set_paging(Paging {
            max_num: plan.max_num,
            ignore_page: false,
        });
        let mut settings = app.settings();
        settings.poll_interval = Duration::from_millis(plan.poll_ms);
        // Absence (and a decided applicant listed as pending again) needs listings this far
        // apart, as in production (30 s there): longer than any glitch a schedule injects (at
        // most four listing calls, at most a poll interval apart), so one glitch is never proof.
        settings.absence_proof_after = ABSENCE_PROOF;
        // The daily quota (45009) rests polling this long: short, so a schedule gets past it.
        settings.quota_pause = Duration::from_secs(1);
        settings.remind_after = plan.remind_after;
        settings.approvals_required = plan.approvals_required;
        settings.undo_window = plan.undo;
        if plan.approvers_from_admins {
            settings.approvers = None;
            app.tg.fake.set_admins(TEAM, &[ALICE, BOB]);
            app.tg.fake.set_admins(OTHER_CHAT, &[ALICE, BOB]);
        }
        if plan.flood {
            settings.telegram_throttle = true;
            app.tg.fake.enforce_telegram_limits();
        }
        // Refused or timed out before the bot ever looked: listed, never carded.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for (i, status) in plan.decided_at_start.iter().enumerate() {
            app.wx.sandbox.add_applicant(NewApplicant {
                status: Some(*status),
                create_time: Some(now - 86_400 * (2 + i as i64)),
                ..NewApplicant::default()
            });
        }
        let mut world = Self {
            plan,
            app,
            settings,
            lives: 0,
            running: Vec::new(),
            started: Instant::now(),
            known: Vec::new(),
            deleted_by_people: HashSet::new(),
            life_starts: Vec::new(),
            kills: Vec::new(),
            windows: 0,
            initial: HashMap::new(),
            console: Vec::new(),
            presses: Vec::new(),
            chosen: HashMap::new(),
            reapplied: Vec::new(),
            deletes: Vec::new(),
            slowest_stop: Duration::ZERO,
            pauses: 0,
            first_life_refusals: None,
            tally: PolicyTally::default(),
            spells_until: Instant::now(),
            hiding_until: None,
            disk_failing_until: None,
            chat: TEAM,
            moved_at: None,
            log: Vec::new(),
            violations: Vec::new(),
        };
        world.learn_appids();
        world.initial = world
            .app
            .wx
            .sandbox
            .applicants()
            .into_iter()
            .map(|a| (a.appid, a.status))
            .collect();
        world
    }

    fn violation(&mut self, invariant: &'static str, appid: Option<&str>, detail: String) {
        self.violations.push(Violation {
            invariant,
            appid: appid.map(str::to_owned),
            detail,
        });
    }

    fn note(&mut self, text: String) {
        let at = self.started.elapsed().as_millis();
        self.log.push(format!("{at:>5} ms  {text}"));
    }

    fn learn_appids(&mut self) {
        for a in self.app.wx.sandbox.applicants() {
            if !self.known.contains(&a.appid) {
                self.known.push(a.appid);
            }
        }
    }

    fn target(&mut self, index: u8) -> Option<String> {
        self.learn_appids();
        (!self.known.is_empty()).then(|| self.known[usize::from(index) % self.known.len()].clone())
    }

    /// Now, with the highest message id in the team chat.
    fn mark(&self) -> Mark {
        let last = |chat| {
            self.app
                .tg
                .fake
                .messages(chat)
                .last()
                .map_or(0, |m| m.message_id)
        };
        Mark {
            at: Instant::now(),
            last_message: last(TEAM),
            last_moved: last(OTHER_CHAT),
        }
    }

    /// Starts a life and waits until it registered its commands (its first act with Telegram,
    /// once per start whether it leads or stands by). With two lives at once each is a replica
    /// of its own name (a restarted one comes back as a new replica, as a rescheduled container
    /// would, so the standby has to take over), on the short lease.
    async fn start(&mut self) {
        self.lives += 1;
        self.life_starts.push(self.mark());
        let lives = self.lives;
        let mut settings = self.settings.clone();
        if self.plan.two_lives {
            settings.replica = format!("replica-{lives}");
            settings.lease = TWO_LIVES_LEASE;
        }
        let life = Life::start(
            settings,
            format!("sim-{}-life-{lives}", self.plan.seed),
            lives,
        );
        let replica = life.replica.clone();
        self.running.push(life);
        let ready = self
            .app
            .tg
            .fake
            .wait_until(PATIENCE, |f| f.call_count("setMyCommands") >= lives)
            .await;
        self.note(format!("life {lives} started ({replica})"));
        if !ready {
            let why = match self.running.iter_mut().find(|l| l.number == lives) {
                Some(life) => life.ended().await,
                None => None,
            };
            let why = why.unwrap_or_else(|| "still starting".to_owned());
            self.violation("bot-did-not-start", None, format!("life {lives}: {why}"));
        }
    }

    /// Which running life the lease names as its holder: the one a restart or a pause acts on
    /// (with one life, that life). Where none holds it (a takeover under way), the oldest.
    async fn leader(&mut self) -> Option<usize> {
        if self.running.len() <= 1 {
            return (!self.running.is_empty()).then_some(0);
        }
        let holder = match connect_db(&self.app.vars["DATABASE_URL"]).await {
            Ok(pool) => {
                let row = sqlx::query(
                    "SELECT holder FROM leader_lease WHERE id = 1 AND expires_ms > (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
                )
                .fetch_optional(&pool)
                .await;
                pool.close().await;
                match row {
                    Ok(row) => row.and_then(|r| r.try_get::<String, _>("holder").ok()),
                    Err(e) => {
                        self.note(format!("the lease could not be read: {e}"));
                        None
                    }
                }
            }
            Err(e) => {
                self.note(format!("the lease could not be read: {e}"));
                None
            }
        };
        Some(
            holder
                .and_then(|h| self.running.iter().position(|l| l.replica == h))
                .unwrap_or(0),
        )
    }

    /// Ends the leading life (the only one, with one life): killed, or through the shutdown
    /// path. A paused leader is left to wake stale, and the standby ends instead: the one
    /// started in its place takes over while the paused one sleeps.
    async fn end(&mut self, kill: bool) {
        let Some(mut index) = self.leader().await else {
            return;
        };
        let now = Instant::now();
        if self.running[index].paused_until > now
            && let Some(other) = self.running.iter().rposition(|l| l.paused_until <= now)
        {
            index = other;
        }
        self.end_life(index, kill).await;
    }

    /// Ends the running life at `index`: killed, or through the shutdown path.
    async fn end_life(&mut self, index: usize, kill: bool) {
        let life = self.running.remove(index);
        let number = life.number;
        if number == 1 {
            self.first_life_refusals = Some(self.app.tg.fake.flood_refusals());
        }
        if kill {
            life.kill();
            // A request already on the wire may still be handled by the fake after this: the
            // window is judged around the kill, and the next life's start bounds it exactly.
            let mark = self.mark();
            let recorded = match read_db(&self.app.vars["DATABASE_URL"]).await {
                Ok((cards, _)) => cards
                    .iter()
                    .filter_map(|c| c.message_id.map(|m| (c.chat_id, m)))
                    .collect(),
                Err(e) => {
                    self.note(format!(
                        "the database after the kill could not be read: {e}"
                    ));
                    HashSet::new()
                }
            };
            self.kills.push(Kill {
                life: number,
                mark,
                recorded,
            });
            self.note(format!("life {number} killed"));
        } else {
            // A paused process cannot act on the signal before it runs again.
            tokio::time::sleep_until(life.paused_until.into()).await;
            let stopped = life.stop().await;
            match stopped {
                Ok(took) => {
                    self.note(format!("life {number} stopped in {took:?}"));
                    self.slowest_stop = self.slowest_stop.max(took);
                    if took > STOP_BOUND {
                        self.violation(
                            "graceful-stop-too-slow",
                            None,
                            format!(
                                "life {number} took {took:?} to stop; the bound is {STOP_BOUND:?}"
                            ),
                        );
                    }
                }
                // A stop while the disk fails may end with the write that failed: the stop ended,
                // and its exit says why.
                Err(why)
                    if why.contains("disk I/O error")
                        && self
                            .disk_failing_until
                            .is_some_and(|until| Instant::now() <= until) =>
                {
                    self.note(format!(
                        "life {number} stopped with the disk failing: {why}"
                    ));
                }
                Err(why) => {
                    self.note(format!("life {number} stopped"));
                    self.violation("graceful-stop-failed", None, why);
                }
            }
        }
    }

    /// A life that ended by itself is a failure; start another so the schedule goes on.
    async fn check_alive(&mut self) {
        let mut index = 0;
        while index < self.running.len() {
            let Some(why) = self.running[index].ended().await else {
                index += 1;
                continue;
            };
            // Its runtime must not be dropped here, in the world's own async context.
            let life = self.running.remove(index);
            let number = life.number;
            life.kill();
            // Only the simulation's own triggers raise "disk I/O error": a bot that stops on a
            // failing disk (its start reconciles through the store) ends honestly, and the
            // next life carries on; any other end is a death.
            if why.contains("disk I/O error") && self.disk_failing_until.is_some() {
                self.note(format!("life {number} ended on the failing disk: {why}"));
            } else {
                self.violation("bot-died", None, format!("life {number}: {why}"));
            }
            self.start().await;
        }
    }

    fn live_messages(&self) -> Vec<FakeMessage> {
        self.app.tg.fake.bot_messages(self.chat)
    }

    /// Live card messages of `appid`, oldest first.
    fn cards_of(&self, appid: &str) -> Vec<FakeMessage> {
        self.live_messages()
            .into_iter()
            .filter(|m| is_card(m) && m.plain_text.contains(appid))
            .collect()
    }

    async fn run(&mut self) {
        self.start().await;
        if self.plan.two_lives {
            // The standby, starting while the first life takes the lease and polls: either
            // may win it.
            self.start().await;
        }
        // Let the first poll post the seeded cards so early presses have something to press. No
        // fault is injected yet: a first poll that does not card every pending applicant fails.
        let n = self.plan.applicants;
        let fake = self.app.tg.fake.clone();
        // Judged on progress, not on a budget for all: a schedule's speed depends on how many
        // run beside it (48 at once made 200 cards take a minute on two cores; seeds 51179,
        // 51246, 52227 and 94). The first poll fails when no card has come for a stall's length
        // before all have: at Telegram's pace (one a second in a chat, 20 a minute in a group,
        // each card two calls) a card takes up to 6 s, otherwise well under FIRST_CARDS.
        let stall = if self.plan.flood {
            FIRST_CARDS + Duration::from_secs(6)
        } else {
            FIRST_CARDS
        };
        // A card counts once it can be pressed: its buttons added (or already edited since).
        let pressable = |f: &wxplugin_bot::testbed::fake_telegram::FakeTelegram| {
            f.bot_messages(TEAM)
                .iter()
                .filter(|m| is_card(m) && (!m.buttons.is_empty() || m.history.len() > 1))
                .count()
        };
        let began = Instant::now();
        let mut seen = 0;
        let mut carded = false;
        loop {
            let before = seen;
            let progressed = fake
                .wait_until(stall, |f| {
                    let now = pressable(f);
                    now >= n || now > before
                })
                .await;
            seen = pressable(&fake);
            if seen >= n {
                carded = true;
                break;
            }
            if !progressed {
                break;
            }
        }
        if !carded {
            let cards = self.live_messages().iter().filter(|m| is_card(m)).count();
            self.violation(
                "first-poll-cards-missing",
                None,
                format!(
                    "{cards} of {n} pending applicants carded, none for {stall:?} ({:?} after the start)",
                    began.elapsed()
                ),
            );
        }
        let steps = self.plan.steps.clone();
        for (i, timed) in steps.into_iter().enumerate() {
            tokio::time::sleep(Duration::from_millis(timed.gap_ms)).await;
            self.check_alive().await;
            let what = self.act(&timed.step).await;
            self.note(format!("step {i}: {what}"));
        }
        self.quiesce().await;
    }

    /// Carries out one step; says what it did.
    async fn act(&mut self, step: &Step) -> String {
        let t = texts();
        let fake = self.app.tg.fake.clone();
        let sandbox = self.app.wx.sandbox.clone();
        match *step {
            Step::Refresh { who } => {
                let id = fake.user_sends(self.chat, who, "/refresh");
                format!("{who} sends /refresh (message {id})")
            }
            Step::Press {
                who,
                target,
                button,
                older,
            } => {
                let Some(appid) = self.target(target) else {
                    return "no applicant to press".into();
                };
                let cards = self.cards_of(&appid);
                let with_button: Vec<(&FakeMessage, &FakeButton)> = cards
                    .iter()
                    .filter_map(|m| button_of(m, button).map(|b| (m, b)))
                    .collect();
                let chosen = if older {
                    with_button.first()
                } else {
                    with_button.last()
                };
                match chosen {
                    Some((m, b)) => {
                        let data = b.callback_data.clone().unwrap_or_default();
                        let q = fake.press_raw(self.chat, m.message_id, who, &data);
                        let decision = match button {
                            Button::Approve => Some(("approve", None)),
                            Button::Delete => Some(("delete", None)),
                            Button::Withdraw => Some(("withdraw", None)),
                            Button::Undo => Some(("undo", None)),
                            Button::Preset(_) => {
                                let reason = b.text.trim_start_matches("❌ ").to_owned();
                                self.chosen
                                    .entry(appid.clone())
                                    .or_default()
                                    .push(reason.clone());
                                Some(("reject", Some(reason)))
                            }
                            _ => None,
                        };
                        if let Some((action, reason)) = decision {
                            self.presses.push(PressLog {
                                query: q.clone(),
                                who,
                                appid: appid.clone(),
                                action,
                                reason,
                            });
                        }
                        format!(
                            "{who} presses {button:?} ({data}) on {appid}'s card {} → {q}",
                            m.message_id
                        )
                    }
                    None => format!("{who} finds no {button:?} on {appid}'s cards"),
                }
            }
            Step::TypeReason {
                addressee,
                target,
                too_long,
            } => {
                let Some(appid) = self.target(target) else {
                    return "no applicant to reason about".into();
                };
                let Some((prompt, asked)) = self.prompt_for(&appid) else {
                    return format!("no reason prompt out for {appid}");
                };
                let who = match (addressee, asked) {
                    (true, Some(asked)) => asked,
                    (_, Some(ALICE)) => BOB,
                    _ => ALICE,
                };
                let text = if too_long {
                    "far too long a reason ".repeat(12)
                } else {
                    format!("sim typed reason {}", self.log.len())
                };
                self.chosen
                    .entry(appid.clone())
                    .or_default()
                    .push(text.clone());
                let id = fake.user_replies(self.chat, who, prompt, &text);
                format!(
                    "{who} replies to prompt {prompt} for {appid} ({} chars, message {id})",
                    text.chars().count()
                )
            }
            Step::Command {
                who,
                target,
                command,
            } => {
                let Some(appid) = self.target(target) else {
                    return "no applicant to command".into();
                };
                let text = match command {
                    Cmd::Approve => format!("/approve {appid}"),
                    Cmd::Reject => {
                        self.chosen
                            .entry(appid.clone())
                            .or_default()
                            .push(COMMAND_REASON.to_owned());
                        format!("/reject {appid} {COMMAND_REASON}")
                    }
                    Cmd::Delete => format!("/delete {appid}"),
                    Cmd::Pending => "/pending".to_owned(),
                };
                let at = Instant::now();
                let id = fake.user_sends(self.chat, who, &text);
                if matches!(command, Cmd::Delete) {
                    self.deletes.push((self.chat, id, appid.clone(), at));
                }
                format!("{who} sends {text} (message {id})")
            }
            Step::Console { target, change } => {
                let Some(appid) = self.target(target) else {
                    return "no applicant for the console".into();
                };
                let status = sandbox.applicant(&appid).map(|a| a.status);
                // Taken before the change: a card may show it the moment after.
                let at = Instant::now();
                let (done, now) = match (change, status) {
                    (Console::Approve, Some(1)) => (sandbox.set_status(&appid, 2), Some(2)),
                    (Console::Refuse, Some(1)) => (sandbox.set_status(&appid, 3), Some(3)),
                    (Console::TimeOut, Some(1)) => (sandbox.set_status(&appid, 4), Some(4)),
                    (Console::Remove, Some(3 | 4)) => (sandbox.remove_applicant(&appid), None),
                    (Console::Reapply, Some(2..=4)) => {
                        let unix_now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs() as i64);
                        let done = sandbox.update_applicant(&appid, |a| {
                            a.status = 1;
                            a.create_time = unix_now.max(a.create_time + 1);
                            a.refuse_reason = None;
                        });
                        if done {
                            self.reapplied.push((appid.clone(), sandbox.calls().len()));
                        }
                        (done, Some(1))
                    }
                    (Console::Touch, Some(1)) => {
                        let done = sandbox.update_applicant(&appid, |a| {
                            a.headimgurl =
                                format!("https://example.com/avatar/{}.png", fastrand::u32(..));
                        });
                        // Not a change of status: nothing for the history of statuses.
                        return format!(
                            "console Touch {appid}: avatar {}",
                            if done { "changed" } else { "not applicable" }
                        );
                    }
                    _ => (false, None),
                };
                if done {
                    self.console.push((appid.clone(), at, now));
                }
                format!(
                    "console {change:?} {appid} (status {status:?}): {}",
                    if done { "done" } else { "not applicable" }
                )
            }
            Step::NewApplicant => {
                let at = Instant::now();
                let appid = sandbox.add_applicant(NewApplicant::default());
                self.console.push((appid.clone(), at, Some(1)));
                self.learn_appids();
                format!("{appid} applies")
            }
            Step::WeChatFault {
                target,
                ref fault,
                times,
                skip,
            } => {
                let fault = match fault {
                    Fault::Redirect(status, to) => {
                        Fault::Redirect(*status, to.replace("{sandbox}", &self.app.wx.base_url))
                    }
                    other => other.clone(),
                };
                let mut rule = wx_fault(target, fault.clone(), times);
                rule.skip = skip;
                // The token is fetched rarely (at a start, or when WeChat refuses it): these two
                // act on the very next fetch, which a revocation brings at once.
                let at_next_fetch = matches!(fault, Fault::Redirect(..) | Fault::ExpiresIn(_));
                if at_next_fetch {
                    rule.skip = 0;
                }
                let (rule_target, rule_fault) = (rule.target.clone(), rule.fault.clone());
                // A glitch is short in time, not only in calls: four listing calls spread over a
                // quota pause could otherwise span the absence proof, which by design no glitch
                // outlasts (README, "One truth"). What is left of it ends within GLITCH_FOR —
                // and a listing that hides applicants within the schedule's one glitch window.
                let hides = matches!(
                    fault,
                    Fault::EmptyList | Fault::EmptyListArray | Fault::Truncate(_)
                );
                let now = Instant::now();
                let ends = if hides {
                    *self.hiding_until.get_or_insert(now + GLITCH_FOR)
                } else {
                    now + GLITCH_FOR
                };
                if ends <= now {
                    return format!(
                        "WeChat fault on {target}: {fault:?} ×{times} after {skip} not injected: the schedule's glitch window for hiding listings is over"
                    );
                }
                sandbox.inject(rule);
                if at_next_fetch {
                    sandbox.revoke_tokens();
                }
                let sandbox = sandbox.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(ends.into()).await;
                    sandbox.drop_faults(&rule_target, &rule_fault);
                });
                format!("WeChat fault on {target}: {fault:?} ×{times} after {skip}")
            }
            Step::TelegramFault {
                method,
                ref fault,
                times,
            } => {
                fake.inject(tg_fault(method, fault.clone(), times));
                format!("Telegram fault on {method}: {fault:?} ×{times}")
            }
            Step::DeleteCardMessage { target } => {
                let Some(appid) = self.target(target) else {
                    return "no card to delete".into();
                };
                match self.cards_of(&appid).last() {
                    Some(m) => {
                        fake.delete_message_as_user(self.chat, m.message_id);
                        self.deleted_by_people.insert((self.chat, m.message_id));
                        format!("a person deletes {appid}'s card {}", m.message_id)
                    }
                    None => format!("{appid} has no card to delete"),
                }
            }
            Step::Restart { kill } => {
                self.end(kill).await;
                self.start().await;
                format!("restart ({})", if kill { "killed" } else { "graceful" })
            }
            Step::PauseLeader { ms } => {
                let Some(index) = self.leader().await else {
                    return "no life to pause".into();
                };
                let life = &mut self.running[index];
                if life.paused_until > Instant::now() {
                    return format!("life {} is paused already", life.number);
                }
                life.pause(Duration::from_millis(ms));
                let (number, replica) = (life.number, life.replica.clone());
                self.pauses += 1;
                // Until it runs again the world is not quiet.
                self.spells_until = self
                    .spells_until
                    .max(Instant::now() + Duration::from_millis(ms));
                format!("life {number} ({replica}) is paused for {ms} ms")
            }
            Step::MoveChat { kill } => {
                if self.chat != TEAM {
                    return "the team chat moved already".into();
                }
                let mut staged = String::new();
                if kill {
                    staged = self.decision_in_flight_at_the_move().await;
                }
                self.end(kill).await;
                self.chat = OTHER_CHAT;
                self.moved_at = Some(Instant::now());
                self.settings.team_chat_id = teloxide::types::ChatId(OTHER_CHAT);
                self.start().await;
                format!(
                    "{staged}the team chat moves to {OTHER_CHAT} ({})",
                    if kill { "killed" } else { "graceful" }
                )
            }
            Step::StoreFault { closing, ms } => {
                let fault = &STORE_FAULTS[usize::from(!closing)];
                let db = self.app.vars["DATABASE_URL"].clone();
                let postgres = self.app.on_postgres();
                if let Err(e) = store_exec(&db, &fault.fail(postgres)).await {
                    // The world failed to stage what the schedule says: the run proves less.
                    self.violation("store-fault-not-staged", None, e.to_string());
                    return format!("the disk could not be made to fail: {e}");
                }
                let heal = fault.heal(postgres);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let _ = store_exec(&db, &heal).await;
                });
                let until = Instant::now() + Duration::from_millis(ms + 100);
                self.spells_until = self.spells_until.max(until);
                self.disk_failing_until = Some(until);
                format!("the disk fails {} for {ms} ms", fault.name)
            }
            Step::RevokeTokens => {
                sandbox.revoke_tokens();
                "WeChat revokes every token".to_owned()
            }
            Step::WrongShapeSpell(shape) => {
                // Until quiescence clears it, at least SPELL from now.
                sandbox.inject(wx_fault(
                    "dev_apply_list",
                    Fault::ApplyList(shape.to_owned()),
                    u32::MAX,
                ));
                self.spells_until = self.spells_until.max(Instant::now() + SPELL);
                format!("WeChat lists apply_list as {shape} for at least {SPELL:?}")
            }
            Step::IgnorePageSpell => {
                sandbox.set_paging(Paging {
                    max_num: self.plan.max_num,
                    ignore_page: true,
                });
                self.spells_until = self.spells_until.max(Instant::now() + SPELL);
                format!("WeChat ignores `page` for at least {SPELL:?}")
            }
            Step::Burst(n) => {
                let at = Instant::now();
                for _ in 0..n {
                    let appid = sandbox.add_applicant(NewApplicant::default());
                    self.console.push((appid, at, Some(1)));
                }
                self.learn_appids();
                format!("{n} applicants apply at once")
            }
        }
        .replace(t.card_title, "card")
    }

    /// Before a killed move: an approval whose answer WeChat will lose is in flight, and a spell
    /// of wrong-shaped listings keeps the new life from settling it for a while, so its outcome
    /// stays unknown in the old chat while the new chat gets its cards. Says what it staged.
    async fn decision_in_flight_at_the_move(&mut self) -> String {
        let fake = self.app.tg.fake.clone();
        let sandbox = self.app.wx.sandbox.clone();
        let Some((m, data, appid)) = self.live_messages().into_iter().find_map(|m| {
            let data = button_data(&m, Button::Approve)?;
            let appid = self.appid_of(&m)?;
            Some((m, data, appid))
        }) else {
            return String::new();
        };
        sandbox.inject(wx_fault(
            "dev_agree",
            Fault::Delay(Duration::from_millis(1_500)),
            1,
        ));
        sandbox.inject(wx_fault(
            "dev_apply_list",
            Fault::ApplyList("\"none\"".to_owned()),
            u32::MAX,
        ));
        self.spells_until = self.spells_until.max(Instant::now() + SPELL);
        let q = fake.press_raw(self.chat, m.message_id, ALICE, &data);
        self.presses.push(PressLog {
            query: q.clone(),
            who: ALICE,
            appid: appid.clone(),
            action: "approve",
            reason: None,
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        format!(
            "{ALICE} approves {appid} on card {} ({q}), WeChat loses the answer and lists nonsense for {SPELL:?}; ",
            m.message_id
        )
    }

    /// The newest ForceReply prompt about `appid` (a reason prompt, or a "too long, again" one
    /// that follows a reply to it), with the approver it asks.
    fn prompt_for(&self, appid: &str) -> Option<(i32, Option<i64>)> {
        let all = self.app.tg.fake.messages(self.chat);
        let by_id: HashMap<i32, &FakeMessage> = all.iter().map(|m| (m.message_id, m)).collect();
        let addressee = |m: &FakeMessage| {
            if m.plain_text.starts_with("@alice") {
                Some(ALICE)
            } else if m.plain_text.starts_with("@bob") {
                Some(BOB)
            } else {
                None
            }
        };
        all.iter()
            .rev()
            .filter(|m| m.from_bot && !m.deleted && m.force_reply)
            .find_map(|m| {
                if m.plain_text.contains(appid) {
                    return Some((m.message_id, addressee(m)));
                }
                let reply = by_id.get(&m.reply_to?)?;
                let prompt = by_id.get(&reply.reply_to?)?;
                prompt
                    .plain_text
                    .contains(appid)
                    .then_some((m.message_id, Some(reply.from_user)))
            })
    }

    /// What must stop changing before the invariants are checked: the cards and prompts, and
    /// WeChat's applicants and writes.
    fn fingerprint(&self) -> String {
        let mut s = String::new();
        for m in self.live_messages() {
            if is_card(&m) || !m.buttons.is_empty() || m.force_reply {
                let _ = writeln!(s, "{} {:?} {:?}", m.message_id, m.plain_text, labels(&m));
            }
        }
        let stats = self.app.wx.sandbox.stats();
        for a in self.app.wx.sandbox.applicants() {
            let _ = writeln!(s, "{} {}", a.appid, a.status);
        }
        let _ = write!(s, "{} {} {}", stats.agree, stats.refuse, stats.delete);
        s
    }

    /// No more faults, a restart (killed or not), people finish what they started, polls until
    /// nothing changes, then the bot stops through its shutdown path.
    async fn quiesce(&mut self) {
        tokio::time::sleep_until(self.spells_until.into()).await;
        let db = self.app.vars["DATABASE_URL"].clone();
        for fault in &STORE_FAULTS {
            if let Err(e) = store_exec(&db, &fault.heal(self.app.on_postgres())).await {
                self.violation("disk-not-healed", None, e.to_string());
            }
        }
        self.app.wx.sandbox.clear_faults();
        self.app.wx.sandbox.set_paging(Paging {
            max_num: self.plan.max_num,
            ignore_page: false,
        });
        self.app.tg.fake.clear_faults();
        self.note("quiesce: faults cleared".into());
        // A life that stopped on the failing disk after the last step (its start reconciles
        // through the store) is replaced before the quiet is judged, as between steps.
        self.check_alive().await;
        if let Some(kill) = self.plan.restart_before_quiesce {
            self.end(kill).await;
            self.start().await;
        }
        // Lost answers still held by the sandbox land while the new life starts.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let fake = self.app.tg.fake.clone();
        // A removal is proven by listings ABSENCE_PROOF apart, the first of which may have begun
        // late (a lost answer is waited out): quiet is not declared before two such spans of
        // fault-free polls have passed.
        // With two lives, a leader killed just now is replaced within a lease (and a renewal).
        let takeover = if self.plan.two_lives {
            TWO_LIVES_LEASE + TWO_LIVES_LEASE / 3
        } else {
            Duration::ZERO
        };
        let quiet_from = Instant::now() + takeover + 2 * ABSENCE_PROOF + Duration::from_millis(500);
        // Counted from the first listing of the quiet, not from the start: a start can be held
        // 10 s before it polls (teloxide holds a card edit that met a Telegram 5xx as the last
        // life left it), and quiet declared 2 s into the polls left an absence unproven (seed
        // 76323).
        let listings = |app: &TestApp| {
            app.wx
                .sandbox
                .calls()
                .iter()
                .filter(|c| c.action.as_deref() == Some("dev_apply_list"))
                .count()
        };
        let listed_before = listings(&self.app);
        let mut first_listing: Option<Instant> = None;
        let mut stable = 0;
        let mut unreadable: Option<String> = None;
        // `/refresh` answers once its poll has sent the cards it brought: at Telegram's pace
        // (20 a minute in a group) that is about 3 s a call, and an applicant may take three
        // (its card's message and the edit adding its buttons, and, after a chat move, the edit
        // closing its card in the chat the team left).
        let patience = if self.plan.flood {
            PATIENCE + Duration::from_secs(9 * self.known.len() as u64)
        } else {
            // A crowded schedule whose chat moved has a poll send every card again and close
            // every card left in the old chat: hundreds of calls, 7 s for 247 applicants on
            // idle cores, over 74 s with 48 schedules beside it (seed 52531).
            PATIENCE + Duration::from_millis(500 * self.known.len() as u64)
        };
        // Up to ~20 s of polls: a decision can be held 10 s by teloxide after a Telegram 5xx.
        let rounds =
            ((20_000 + 2 * ABSENCE_PROOF.as_millis() as u64) / self.plan.poll_ms.max(150)).max(10);
        for round in 0..rounds {
            // Whoever opened a reject flow walks away from it.
            for m in self.live_messages() {
                if let Some(data) = button_data(&m, Button::Cancel) {
                    fake.press_raw(self.chat, m.message_id, ALICE, &data);
                    self.note(format!("quiesce: cancel on card {}", m.message_id));
                }
            }
            let before = self.fingerprint();
            let chat = self.chat;
            let id = fake.user_sends(chat, ALICE, "/refresh");
            let answered = fake
                .wait_until(patience, |f| {
                    f.bot_messages(chat).iter().any(|m| m.reply_to == Some(id))
                })
                .await;
            if !answered {
                self.violation(
                    "no-quiescence",
                    None,
                    format!("round {round}: /refresh got no answer within {patience:?}"),
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(self.plan.poll_ms.max(150))).await;
            // A decision still in flight (teloxide holds a request 10 s after a Telegram 5xx)
            // is not quiet, whatever the chat shows.
            // A database that cannot be read is no sign of quiet either.
            let deciding = match read_db(&self.app.vars["DATABASE_URL"]).await {
                // Nor is a decision waiting out its undo window.
                Ok((cards, _)) => cards
                    .iter()
                    .any(|c| c.state == "deciding" || c.state == "scheduled"),
                Err(e) => {
                    self.note(format!("quiesce round {round}: database unreadable: {e}"));
                    unreadable = Some(e.to_string());
                    true
                }
            };
            if first_listing.is_none() && listings(&self.app) > listed_before {
                first_listing = Some(Instant::now());
            }
            let proven = first_listing.is_some_and(|f| {
                Instant::now() >= f + 2 * ABSENCE_PROOF + Duration::from_millis(500)
            });
            if before == self.fingerprint() && !deciding {
                unreadable = None;
                stable += 1;
                if stable >= 2 && Instant::now() >= quiet_from && proven {
                    break;
                }
            } else {
                stable = 0;
            }
        }
        if stable < 2 {
            let why = match unreadable {
                Some(e) => format!("the bot's database could not be read: {e}"),
                None => "cards or WeChat kept changing".to_owned(),
            };
            self.violation(
                "no-quiescence",
                None,
                format!("{why} over {rounds} polls without faults"),
            );
        }
        self.check_alive().await;
        // The standby first, so that the leader's stop is not followed by a takeover.
        while let Some(index) = self.running.len().checked_sub(1) {
            let index = match self.leader().await {
                Some(leader) if leader == index && index > 0 => index - 1,
                _ => index,
            };
            self.end_life(index, false).await;
        }
        self.note("quiesce: done".into());
    }
}

fn is_card(m: &FakeMessage) -> bool {
    m.plain_text.starts_with(texts().card_title)
}

fn labels(m: &FakeMessage) -> Vec<String> {
    m.buttons.iter().flatten().map(|b| b.text.clone()).collect()
}

/// Whether a label offers a decision: ✅ Approve, ❌ Reject or a preset reason.
fn decides(label: &str) -> bool {
    label.starts_with('✅') || label.starts_with('❌')
}

/// The callback data of `button` on a message, if it shows one.
fn button_data(m: &FakeMessage, button: Button) -> Option<String> {
    button_of(m, button).and_then(|b| b.callback_data.clone())
}

/// `button` on a message, if it shows one.
fn button_of(m: &FakeMessage, button: Button) -> Option<&FakeButton> {
    let t = texts();
    let buttons: Vec<_> = m.buttons.iter().flatten().collect();
    let found = match button {
        // "✅ Approve", or "✅ Approve (1/2)" while a quorum gathers.
        Button::Approve => buttons.iter().find(|b| {
            b.text == t.button_approve || b.text.starts_with(prefix(t.button_approve_votes))
        }),
        Button::Reject => buttons.iter().find(|b| b.text == t.button_reject),
        Button::Preset(i) => {
            let presets: Vec<_> = buttons
                .iter()
                .filter(|b| b.text.starts_with("❌ ") && b.text != t.button_reject)
                .collect();
            (!presets.is_empty()).then(|| presets[usize::from(i) % presets.len()])
        }
        Button::Other => buttons.iter().find(|b| b.text == t.button_other),
        Button::Cancel => buttons.iter().find(|b| b.text == t.button_cancel),
        Button::Delete => buttons.iter().find(|b| b.text == t.button_delete),
        Button::Retry => buttons.iter().find(|b| b.text == t.button_retry),
        Button::Refresh => buttons.iter().find(|b| b.text == t.button_refresh),
        Button::Withdraw => buttons.iter().find(|b| b.text == t.button_withdraw),
        Button::Undo => buttons.iter().find(|b| b.text == t.button_undo),
    };
    found.copied()
}

// ---------------------------------------------------------------- the invariants

/// A card row of the bot's database.
#[derive(Clone, Debug)]
struct CardRow {
    chat_id: i64,
    appid: String,
    state: String,
    message_id: Option<i64>,
    message_gone: bool,
}

/// An audit row.
#[derive(Debug)]
struct AuditRow {
    id: i64,
    appid: String,
    action: String,
    actor_id: Option<i64>,
    via: String,
    reason: Option<String>,
    result: String,
    errcode: Option<i64>,
    attempt_id: Option<i64>,
}

impl AuditRow {
    /// An attempt: a WeChat write was about to be asked for. Votes, withdrawals and decisions
    /// scheduled or undone are rows too (issue 19), with no attempt behind them.
    fn is_attempt(&self) -> bool {
        self.attempt_id.is_none() && self.result == "attempt"
    }
}

/// A store fault a schedule stages: a trigger that fails some writes like a failing disk.
struct StoreFault {
    name: &'static str,
    table: &'static str,
    /// SQLite's trigger.
    sqlite: &'static str,
    /// PostgreSQL's: the condition on `NEW` and the event.
    postgres_when: &'static str,
    postgres_event: &'static str,
}

impl StoreFault {
    /// The statements that make the disk fail.
    fn fail(&self, postgres: bool) -> String {
        if !postgres {
            return self.sqlite.to_owned();
        }
        let Self {
            name,
            table,
            postgres_when,
            postgres_event,
            ..
        } = self;
        format!(
            "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'disk I/O error'; END $$;
             CREATE OR REPLACE TRIGGER {name} BEFORE {postgres_event} ON {table} FOR EACH ROW
             WHEN ({postgres_when}) EXECUTE FUNCTION {name}()"
        )
    }

    /// The statement that heals it (whether or not it failed).
    fn heal(&self, postgres: bool) -> String {
        let Self { name, table, .. } = self;
        if postgres {
            format!("DROP TRIGGER IF EXISTS {name} ON {table}")
        } else {
            format!("DROP TRIGGER IF EXISTS {name}")
        }
    }
}

/// The store faults a schedule stages.
const STORE_FAULTS: [StoreFault; 2] = [
    StoreFault {
        name: "sim_failing_close",
        table: "cards",
        sqlite: "CREATE TRIGGER IF NOT EXISTS sim_failing_close BEFORE UPDATE ON cards
         WHEN NEW.state = 'closed' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
        postgres_when: "NEW.state = 'closed'",
        postgres_event: "UPDATE",
    },
    StoreFault {
        name: "sim_failing_result",
        table: "audit",
        sqlite: "CREATE TRIGGER IF NOT EXISTS sim_failing_result BEFORE INSERT ON audit
         WHEN NEW.result != 'attempt' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
        postgres_when: "NEW.result != 'attempt'",
        postgres_event: "INSERT",
    },
];

/// A connection to the bot's database (`DATABASE_URL`), beside the running bot or after it.
async fn connect_db(url: &str) -> Result<sqlx::AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
}

/// Runs statements on the bot's database beside the running bot (SQLite's WAL: it waits its
/// turn).
async fn store_exec(url: &str, statement: &str) -> Result<(), sqlx::Error> {
    let db = connect_db(url).await?;
    sqlx::raw_sql(statement).execute(&db).await?;
    db.close().await;
    Ok(())
}

/// The bot's database, after the bot stopped (or beside it).
async fn read_db(url: &str) -> Result<(Vec<CardRow>, Vec<AuditRow>), sqlx::Error> {
    let (cards, audit, _) = read_db_with_applicants(url).await?;
    Ok((cards, audit))
}

/// What the bot's database says of an applicant: status and whether it is gone, and its card's
/// state and note, for a report.
type StoredView = BTreeMap<String, String>;

async fn read_db_with_applicants(
    url: &str,
) -> Result<(Vec<CardRow>, Vec<AuditRow>, StoredView), sqlx::Error> {
    let db = connect_db(url).await?;
    // Flags and message ids read as BIGINT on both databases.
    let cards = sqlx::query(
        "SELECT chat_id, appid, state, CAST(message_id AS BIGINT) AS message_id,
             CASE WHEN message_gone THEN 1 ELSE 0 END AS message_gone FROM cards",
    )
    .fetch_all(&db)
    .await?
    .iter()
    .map(|r| {
        Ok(CardRow {
            chat_id: r.try_get("chat_id")?,
            appid: r.try_get("appid")?,
            state: r.try_get("state")?,
            message_id: r.try_get("message_id")?,
            message_gone: r.try_get::<i64, _>("message_gone")? != 0,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let audit = sqlx::query(
        "SELECT id, appid, action, actor_id, via, reason, result, errcode, attempt_id FROM audit ORDER BY id",
    )
        .fetch_all(&db)
        .await?
        .iter()
        .map(|r| {
            Ok(AuditRow {
                id: r.try_get("id")?,
                appid: r.try_get("appid")?,
                action: r.try_get("action")?,
                actor_id: r.try_get("actor_id")?,
                via: r.try_get("via")?,
                reason: r.try_get("reason")?,
                result: r.try_get("result")?,
                errcode: r.try_get("errcode")?,
                attempt_id: r.try_get("attempt_id")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let mut stored = StoredView::new();
    for r in sqlx::query(
        "SELECT a.appid, a.status, CASE WHEN a.gone THEN 1 ELSE 0 END AS gone, c.state, c.note,
             CAST(c.message_id AS BIGINT) AS message_id FROM applicants a
         LEFT JOIN cards c ON c.appid = a.appid",
    )
    .fetch_all(&db)
    .await?
    {
        let appid: String = r.try_get("appid")?;
        let view = format!(
            "store: status {} gone {}, card {:?} message {:?} note {}",
            r.try_get::<i64, _>("status")?,
            r.try_get::<i64, _>("gone")?,
            r.try_get::<Option<String>, _>("state")?,
            r.try_get::<Option<i64>, _>("message_id")?,
            r.try_get::<Option<String>, _>("note")?.unwrap_or_default(),
        );
        stored.insert(appid, view);
    }
    db.close().await;
    Ok((cards, audit, stored))
}

/// What the last line of a card must say for each final WeChat status (`None`: deleted), given
/// whether the card offers ✅/❌. A pending applicant's card says so, or that a decision failed,
/// and offers the decision; a "pending again" line is judged apart (it needs a newer card).
fn agrees(outcome: &str, status: Option<i64>, offers_decision: bool) -> bool {
    let t = texts();
    let failed = |action: &str| {
        [t.line_failed, t.line_failed_plain]
            .iter()
            .any(|template| outcome.starts_with(prefix(&fill(template, &[("action", action)]))))
    };
    // A refused or timed-out applicant stays so when deleting it failed.
    let failed_delete = failed(t.action_delete);
    let elsewhere = |name: &str| {
        fill(t.line_elsewhere, &[("status", name), ("time", "")])
            .trim_end_matches([' ', '·'])
            .to_owned()
    };
    // A decision cut off before WeChat's answer was recorded, settled by a re-read that showed
    // the status it aimed at: it credits nobody.
    let interrupted = |name: &str| {
        let line = fill(t.line_interrupted, &[("status", name)]);
        line.split(" · ").next().unwrap_or_default().to_owned()
    };
    match status {
        Some(1) => {
            offers_decision
                && (outcome == t.line_pending
                    || failed(t.action_approve)
                    || failed(t.action_reject))
        }
        Some(2) => {
            outcome.starts_with(prefix(t.line_approved))
                || outcome.starts_with(&elsewhere(t.status_approved))
                || outcome.starts_with(&interrupted(t.status_approved))
        }
        Some(3) => {
            outcome.starts_with(prefix(t.line_rejected))
                || outcome.starts_with(&elsewhere(t.status_refused))
                || outcome.starts_with(&interrupted(t.status_refused))
                || failed_delete
        }
        Some(4) => outcome.starts_with(&elsewhere(t.status_expired)) || failed_delete,
        None => {
            outcome.starts_with(prefix(t.line_deleted))
                || outcome.starts_with(prefix(t.line_gone))
                || outcome.starts_with(&interrupted(t.status_deleted))
        }
        Some(_) => false,
    }
}

/// Write calls answered this way did nothing and may be resent within one attempt: -1 (the
/// client resends once or twice) and a rejected token (renewed, resent once).
fn resendable(errcode: Option<i64>) -> bool {
    matches!(errcode, Some(-1 | 40001 | 40014 | 42001))
}

fn audit_action(wechat_action: &str) -> &'static str {
    match wechat_action {
        "dev_agree" => "approve",
        "dev_refuse" => "reject",
        _ => "delete",
    }
}

/// A status an applicant had (`None`: removed), and from when if the simulation knows it.
type Had = (Option<i64>, Option<Instant>);

/// A sandbox call, as its log keeps it.
type WxCall = wxplugin_bot::testbed::sandbox::RecordedCall;

/// A template's fixed start: what every filled line of it begins with.
fn prefix(template: &str) -> &str {
    template.split('{').next().unwrap_or(template)
}

/// A message's last line: where a card says how the application stands.
fn outcome_of(m: &FakeMessage) -> &str {
    m.plain_text.lines().last().unwrap_or_default()
}

/// When the fake took the message.
fn sent_at(m: &FakeMessage) -> Instant {
    m.history.first().map_or_else(Instant::now, |v| v.at)
}

/// Milliseconds from `from` to `to`, negative when `to` came first.
fn signed_ms(from: Instant, to: Instant) -> i128 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_millis() as i128,
        None => -(from.duration_since(to).as_millis() as i128),
    }
}

fn is_write(c: &WxCall) -> bool {
    matches!(
        c.action.as_deref(),
        Some("dev_agree" | "dev_refuse" | "dev_delete")
    )
}

/// Whether WeChat may have applied a write, judged from its log alone: answered 0 (or 0 and
/// the answer lost), or answered with an errcode the simulation also injects after applying
/// a write (-1, 45011). Generous on purpose: a claim is a lie only if no write could back it.
fn may_have_applied(c: &WxCall) -> bool {
    matches!(c.errcode, Some(0 | -1 | 45011))
}

/// The reason of a "Rejected by {name}: {reason} · {time}" line.
fn rejected_reason(line: &str) -> &str {
    let rest = line
        .strip_prefix(prefix(texts().line_rejected))
        .unwrap_or(line);
    let rest = rest.split_once(": ").map_or(rest, |(_, r)| r);
    rest.rsplit_once(" · ").map_or(rest, |(r, _)| r)
}

/// Whether two renderings of a reason are the same reason: equal once trimmed, or one cut
/// short with "…" where a label or a card shortened it.
fn same_reason(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    let cut = |short: &str, long: &str| {
        short
            .strip_suffix('…')
            .is_some_and(|s| !s.is_empty() && long.starts_with(s))
    };
    a == b || cut(a, b) || cut(b, a)
}

/// Ties an applicant's writes (in WeChat's order) to its audit attempts (in the log's order,
/// each with its latest result): each attempt takes a run of the writes that follow, possibly
/// none, all of its action (a refusal with the attempt's reason), resendable but for the last;
/// `ok` needs a write WeChat may have applied, `error` no write answered 0. Every write must be taken. Says which
/// write could not be tied, and the evidence, when no such tying exists.
fn tie_writes_to_attempts(
    writes: &[&WxCall],
    attempts: &[(&AuditRow, Option<&AuditRow>)],
) -> Result<(), String> {
    let fits = |attempt: &AuditRow, result: Option<&AuditRow>, run: &[&WxCall]| {
        let of_attempt = run.iter().all(|c| {
            c.action.as_deref().map(audit_action) == Some(attempt.action.as_str())
                && (attempt.action != "reject"
                    || c.body.get("reason").and_then(|r| r.as_str()).map(str::trim)
                        == attempt.reason.as_deref().map(str::trim))
        });
        let resends = run.iter().rev().skip(1).all(|c| resendable(c.errcode));
        let agrees = match result.map(|r| r.result.as_str()) {
            Some("ok") => run.iter().any(|c| may_have_applied(c)),
            Some("error") => run.iter().all(|c| c.errcode != Some(0)),
            _ => true,
        };
        of_attempt && resends && agrees
    };
    // reach[i][j]: the first i attempts can take exactly the first j writes.
    let (n, m) = (attempts.len(), writes.len());
    let mut reach = vec![vec![false; m + 1]; n + 1];
    reach[0][0] = true;
    for i in 0..n {
        let (attempt, result) = attempts[i];
        for j in 0..=m {
            if !reach[i][j] {
                continue;
            }
            for k in j..=m {
                if fits(attempt, result, &writes[j..k]) {
                    reach[i + 1][k] = true;
                }
            }
        }
    }
    if reach[n][m] {
        return Ok(());
    }
    let tied = (0..=m)
        .rev()
        .find(|&j| (0..=n).any(|i| reach[i][j]))
        .unwrap_or(0);
    let shown_writes: Vec<String> = writes
        .iter()
        .map(|c| {
            format!(
                "{}→{:?}{}",
                c.action.as_deref().unwrap_or("?"),
                c.errcode,
                c.body
                    .get("reason")
                    .and_then(|r| r.as_str())
                    .map_or(String::new(), |r| format!(" {r:?}"))
            )
        })
        .collect();
    let shown_attempts: Vec<String> = attempts
        .iter()
        .map(|(a, r)| {
            format!(
                "#{} {}{} → {}{}",
                a.id,
                a.action,
                a.reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(" {r:?}")),
                r.map_or("no result", |r| r.result.as_str()),
                r.and_then(|r| r.errcode)
                    .map_or(String::new(), |e| format!(" {e}"))
            )
        })
        .collect();
    Err(format!(
        "no audit attempt can own WeChat's write {} ({}) with results that agree; writes {shown_writes:?}; attempts {shown_attempts:?}",
        tied + 1,
        shown_writes.get(tied).map_or("a result", String::as_str),
    ))
}

impl World {
    async fn check(&mut self) {
        self.learn_appids();
        let final_status: HashMap<String, i64> = self
            .app
            .wx
            .sandbox
            .applicants()
            .into_iter()
            .map(|a| (a.appid, a.status))
            .collect();
        let (cards, audit) = match read_db(&self.app.vars["DATABASE_URL"]).await {
            Ok(read) => read,
            Err(e) => {
                self.violation("database-unreadable", None, e.to_string());
                return;
            }
        };
        let calls = self.app.wx.sandbox.calls();
        // Cards are judged per chat: message ids are per chat, and a chat the team left is
        // judged apart (its cards closed with the moved line).
        let chats = if self.moved_at.is_some() {
            vec![TEAM, OTHER_CHAT]
        } else {
            vec![TEAM]
        };
        for chat in chats {
            let all = self.app.tg.fake.messages(chat);
            let rows: Vec<CardRow> = cards
                .iter()
                .filter(|c| c.chat_id == chat)
                .cloned()
                .collect();
            let messages = self.sort_out_unrecorded(chat, &rows, &all, &final_status);
            if chat == self.chat {
                self.check_decisions_offered(chat, &messages, &rows, &final_status);
                self.check_card_texts(chat, &messages, &all, &rows, &final_status);
            } else {
                self.check_left_chat(chat, &messages);
            }
            self.check_what_people_saw(&all, &calls);
            self.check_cards_per_applicant(chat, &all);
            self.check_deletes_without_card(chat, &all);
        }
        if self.moved_at.is_some() {
            self.check_no_decision_while_unsettled_elsewhere();
        }
        self.check_writes(&calls, &audit);
        self.check_audit_against_wechat(&calls, &audit);
        self.check_claimed_decisions(&audit);
        self.check_policy(&audit);
        self.check_secret_stayed(&calls);
        self.check_texts_fit();
        self.check_flood();

        // Nothing left mid-way.
        for c in &cards {
            if c.state == "deciding" {
                self.violation("card-left-deciding", Some(&c.appid), format!("{c:?}"));
            }
            if c.state == "scheduled" {
                self.violation("card-left-scheduled", Some(&c.appid), format!("{c:?}"));
            }
            if c.state == "sending" && c.message_id.is_some() {
                self.violation(
                    "card-left-sending-with-message",
                    Some(&c.appid),
                    format!("{c:?}"),
                );
            }
        }
    }

    fn appid_of(&self, m: &FakeMessage) -> Option<String> {
        self.appid_in(&m.plain_text)
    }

    fn appid_in(&self, text: &str) -> Option<String> {
        self.known
            .iter()
            .find(|a| text.contains(a.as_str()))
            .cloned()
    }

    /// Sets apart the live cards the bot never recorded: each must be the one card of the
    /// documented duplicate window of a kill (the last card the killed life sent, in the moment
    /// around the kill; so at most one per kill), and even then it must not offer ✅/❌ for an
    /// applicant that is not pending. Any other unrecorded card is a violation. Returns the
    /// live messages the other checks judge: all but the window cards.
    fn sort_out_unrecorded(
        &mut self,
        chat: i64,
        cards: &[CardRow],
        all: &[FakeMessage],
        final_status: &HashMap<String, i64>,
    ) -> Vec<FakeMessage> {
        let recorded: HashSet<i64> = cards.iter().filter_map(|c| c.message_id).collect();
        let live: Vec<&FakeMessage> = all.iter().filter(|m| m.from_bot && !m.deleted).collect();
        // A superseded message was recorded once: its row moved on to the newer card.
        let mut unrecorded: Vec<&FakeMessage> = live
            .iter()
            .copied()
            .filter(|m| {
                is_card(m)
                    && !recorded.contains(&i64::from(m.message_id))
                    && !outcome_of(m).starts_with(prefix(texts().line_superseded))
            })
            .collect();
        let mut window: HashSet<i32> = HashSet::new();
        for kill in self.kills.clone() {
            // The last card the killed life got Telegram to take: cards go one at a time and each
            // is recorded before the next is sent, so only that one can be the kill's window.
            let life_began = self.life_starts[kill.life - 1].last(chat);
            let next_began = self
                .life_starts
                .get(kill.life)
                .map_or(i32::MAX, |m| m.last(chat));
            let candidates: Vec<&FakeMessage> = all
                .iter()
                .filter(|m| {
                    m.from_bot
                        && is_card(m)
                        && m.message_id > life_began
                        && sent_at(m) <= kill.mark.at + WINDOW_AFTER_KILL
                        && (m.message_id <= next_began
                            || !recorded.contains(&i64::from(m.message_id)))
                })
                .collect();
            // One the fake took before the next life began is the killed life's; a later one
            // (still on the wire at the kill) only when there is none: the next life's own
            // unrecorded card (its answer held past the next kill) is that kill's window.
            let last = candidates
                .iter()
                .copied()
                .filter(|m| m.message_id <= next_began)
                .max_by_key(|m| m.message_id)
                .or_else(|| candidates.iter().copied().max_by_key(|m| m.message_id));
            let Some(last) = last else {
                continue;
            };
            let in_the_moment =
                kill.mark.at.saturating_duration_since(sent_at(last)) <= WINDOW_BEFORE_KILL;
            if in_the_moment
                && !kill.recorded.contains(&(chat, i64::from(last.message_id)))
                && unrecorded.iter().any(|m| m.message_id == last.message_id)
            {
                window.insert(last.message_id);
                unrecorded.retain(|m| m.message_id != last.message_id);
            }
        }
        for m in &unrecorded {
            let sent = sent_at(m);
            let nearest = self
                .kills
                .iter()
                .map(|k| signed_ms(sent, k.mark.at))
                .min_by_key(|ms| ms.abs());
            self.violation(
                "card-never-recorded",
                self.appid_of(m).as_deref(),
                format!(
                    "live card {} is not in the database and is no kill's window card (sent {} ms after the start; nearest kill: {})",
                    m.message_id,
                    sent.saturating_duration_since(self.started).as_millis(),
                    nearest.map_or("none".to_owned(), |ms| format!("{ms:+} ms from the send")),
                ),
            );
        }
        for m in live.iter().filter(|m| window.contains(&m.message_id)) {
            self.windows += 1;
            let appid = self.appid_of(m);
            let status = appid.as_ref().and_then(|a| final_status.get(a)).copied();
            let kill = self
                .kills
                .iter()
                .map(|k| signed_ms(sent_at(m), k.mark.at))
                .min_by_key(|ms| ms.abs())
                .unwrap_or_default();
            self.note(format!(
                "card {} never recorded: the documented window of a kill ({kill:+} ms from its send)",
                m.message_id
            ));
            // A card goes out without buttons and gets them only once its message is recorded,
            // so a message the bot never recorded never offered a decision, at any moment.
            if let Some(offered) = m
                .history
                .iter()
                .find(|v| v.buttons.iter().flatten().any(|b| decides(&b.text)))
            {
                self.violation(
                    "window-card-offers-decision",
                    appid.as_deref(),
                    format!(
                        "window card {} offered {:?} {} ms after its send (WeChat's status now {status:?})",
                        m.message_id,
                        offered
                            .buttons
                            .iter()
                            .flatten()
                            .map(|b| b.text.clone())
                            .collect::<Vec<_>>(),
                        offered.at.saturating_duration_since(sent_at(m)).as_millis(),
                    ),
                );
            }
        }
        live.into_iter()
            .filter(|m| !window.contains(&m.message_id))
            .cloned()
            .collect()
    }

    /// One card with ✅/❌ per pending applicant; no decision offered for anyone else.
    fn check_decisions_offered(
        &mut self,
        chat: i64,
        messages: &[FakeMessage],
        cards: &[CardRow],
        final_status: &HashMap<String, i64>,
    ) {
        let mut deciding_messages: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for m in messages {
            if labels(m).iter().any(|l| decides(l))
                && let Some(appid) = self.appid_of(m)
            {
                deciding_messages
                    .entry(appid)
                    .or_default()
                    .push(m.message_id);
            }
        }
        for appid in self.known.clone() {
            let status = final_status.get(&appid).copied();
            let offering = deciding_messages.get(&appid).cloned().unwrap_or_default();
            match (status, offering.len()) {
                (Some(1), 1) => {}
                (Some(1), 0) => {
                    let all_cards: Vec<i32> = self
                        .app
                        .tg
                        .fake
                        .messages(chat)
                        .iter()
                        .filter(|m| {
                            m.from_bot && is_card(m) && m.plain_text.contains(appid.as_str())
                        })
                        .map(|m| m.message_id)
                        .collect();
                    // Telegram does not tell a bot that a person deleted a message: the card the
                    // bot records being deleted by a person is no violation until the bot learns it.
                    let deleted_by_people = cards
                        .iter()
                        .find(|c| c.appid == appid)
                        .and_then(|c| c.message_id)
                        .is_some_and(|id| {
                            i32::try_from(id)
                                .is_ok_and(|id| self.deleted_by_people.contains(&(chat, id)))
                        });
                    let known_gone = cards.iter().any(|c| c.appid == appid && c.message_gone);
                    if !deleted_by_people {
                        self.violation(
                            "pending-without-card",
                            Some(&appid),
                            format!(
                                "pending, but no live card offers ✅/❌ (cards ever: {all_cards:?})"
                            ),
                        );
                    } else if known_gone {
                        self.violation(
                            "pending-card-deleted-not-reposted",
                            Some(&appid),
                            format!("pending; a person deleted its card {all_cards:?}, the bot knows (message_gone) and posted none"),
                        );
                    }
                }
                (Some(1), _) => self.violation(
                    "duplicate-decision-cards",
                    Some(&appid),
                    format!(
                        "pending with {} cards offering ✅/❌: {offering:?}",
                        offering.len()
                    ),
                ),
                (_, 0) => {}
                (status, _) => self.violation(
                    "decision-offered-when-not-pending",
                    Some(&appid),
                    format!("WeChat status {status:?}, yet cards {offering:?} offer ✅/❌"),
                ),
            }
        }
    }

    /// Every card says what WeChat says; a "pending again" card has a successor: a newer card
    /// of the applicant that is live and recorded, or that a person deleted (Telegram does not
    /// tell the bot, and a decided card is not posted again).
    fn check_card_texts(
        &mut self,
        chat: i64,
        messages: &[FakeMessage],
        all: &[FakeMessage],
        cards: &[CardRow],
        final_status: &HashMap<String, i64>,
    ) {
        let t = texts();
        let recorded: HashSet<i64> = cards.iter().filter_map(|c| c.message_id).collect();
        for m in messages.iter().filter(|m| is_card(m)) {
            let Some(appid) = self.appid_of(m) else {
                self.violation(
                    "card-of-nobody",
                    None,
                    format!(
                        "card {} names no known appid: {:?}",
                        m.message_id, m.plain_text
                    ),
                );
                continue;
            };
            let status = final_status.get(&appid).copied();
            let outcome = outcome_of(m);
            if outcome.starts_with(prefix(t.line_superseded)) {
                let successor = all.iter().find(|n| {
                    n.from_bot
                        && n.message_id > m.message_id
                        && is_card(n)
                        && n.plain_text.contains(appid.as_str())
                        && !outcome_of(n).starts_with(prefix(t.line_superseded))
                        && if n.deleted {
                            self.deleted_by_people.contains(&(chat, n.message_id))
                        } else {
                            recorded.contains(&i64::from(n.message_id))
                        }
                });
                if successor.is_none() {
                    self.violation(
                        "superseded-without-successor",
                        Some(&appid),
                        format!(
                            "card {} says {outcome:?}, but no newer live card of the applicant stands (WeChat's status {status:?})",
                            m.message_id
                        ),
                    );
                }
                continue;
            }
            if status == Some(1) && outcome.starts_with(prefix(t.line_unknown)) {
                self.violation(
                    "unknown-left",
                    Some(&appid),
                    format!("card {} still says the outcome is unknown, though WeChat answers: {outcome:?}", m.message_id),
                );
            } else if !agrees(outcome, status, labels(m).iter().any(|l| decides(l))) {
                self.violation(
                    "text-disagrees",
                    Some(&appid),
                    format!(
                        "card {} says {outcome:?} with buttons {:?}; WeChat's status is {}",
                        m.message_id,
                        labels(m),
                        status.map_or("deleted".to_owned(), |s| s.to_string())
                    ),
                );
            }
        }
    }

    /// Writes against each other and the audit log: never two in flight for one applicant
    /// (seen by WeChat, and by the audit log's own order), none after a settled decision, and
    /// every attempt answered.
    fn check_writes(&mut self, calls: &[WxCall], audit: &[AuditRow]) {
        let writes: Vec<&WxCall> = calls.iter().filter(|c| is_write(c)).collect();
        for c in writes.iter().filter(|c| c.overlapped) {
            self.violation(
                "two-writes-in-flight",
                c.appid.as_deref(),
                format!(
                    "{} arrived while another write for it was in flight",
                    c.action.as_deref().unwrap_or("?")
                ),
            );
        }
        // The bot's side of the same promise: an attempt is in flight from its row to its first
        // result row, and no second attempt on the applicant may begin in between.
        let mut open: HashMap<&str, i64> = HashMap::new();
        let first_result: HashMap<i64, i64> = audit
            .iter()
            .rev()
            .filter_map(|r| r.attempt_id.map(|a| (a, r.id)))
            .collect();
        for a in audit.iter().filter(|a| a.is_attempt()) {
            if let Some(&before) = open.get(a.appid.as_str())
                && first_result.get(&before).is_none_or(|&r| r > a.id)
            {
                self.violation(
                    "two-attempts-in-flight",
                    Some(&a.appid),
                    format!(
                        "audit attempt {} ({}) began while attempt {before} had no result yet",
                        a.id, a.action
                    ),
                );
            }
            open.insert(a.appid.as_str(), a.id);
        }
        // Each applicant's settling write, by its place in WeChat's log: a re-application after
        // it opens a new decision, so writes after that are about the new application.
        let mut settled: HashMap<&str, usize> = HashMap::new();
        for (index, c) in calls.iter().enumerate().filter(|(_, c)| is_write(c)) {
            let (Some(appid), Some(action)) = (c.appid.as_deref(), c.action.as_deref()) else {
                self.violation("write-without-appid", None, format!("{:?}", c.body));
                continue;
            };
            let decision = action != "dev_delete";
            let reapplied_since = |at: usize| {
                self.reapplied
                    .iter()
                    .any(|(a, mark)| a == appid && at < *mark && *mark <= index)
            };
            if decision && settled.get(appid).is_some_and(|&at| !reapplied_since(at)) {
                self.violation(
                    "write-after-settled",
                    Some(appid),
                    format!(
                        "{action} (answered {:?}) after an agree/refuse had succeeded",
                        c.errcode
                    ),
                );
            }
            if decision && c.errcode == Some(0) {
                settled.insert(appid, index);
            }
        }
        for a in audit.iter().filter(|a| a.is_attempt()) {
            if !audit.iter().any(|r| r.attempt_id == Some(a.id)) {
                self.violation(
                    "attempt-without-result",
                    Some(&a.appid),
                    format!(
                        "audit attempt {} ({}, {}) has no result row",
                        a.id, a.action, a.result
                    ),
                );
            }
        }
    }

    /// The audit log against WeChat's calls: every write WeChat received belongs to exactly
    /// one audit attempt (same applicant and action, the reason the attempt logged, in order),
    /// an attempt's writes are resends after "busy" or a renewed token and then at most one
    /// answered write, and each attempt's result agrees with what WeChat answered it: `ok` only
    /// with a write WeChat may have applied (not one it refused, say with 89240), `error` only if
    /// WeChat answered none of its writes with success. A second write of one claim has no attempt to belong to.
    fn check_audit_against_wechat(&mut self, calls: &[WxCall], audit: &[AuditRow]) {
        let mut appids: Vec<&str> = audit.iter().map(|a| a.appid.as_str()).collect();
        appids.extend(
            calls
                .iter()
                .filter(|c| is_write(c))
                .filter_map(|c| c.appid.as_deref()),
        );
        appids.sort_unstable();
        appids.dedup();
        for appid in appids {
            let writes: Vec<&WxCall> = calls
                .iter()
                .filter(|c| is_write(c) && c.appid.as_deref() == Some(appid))
                .collect();
            let attempts: Vec<(&AuditRow, Option<&AuditRow>)> = audit
                .iter()
                .filter(|a| a.is_attempt() && a.appid == appid)
                .map(|a| (a, audit.iter().rev().find(|r| r.attempt_id == Some(a.id))))
                .collect();
            if let Err(why) = tie_writes_to_attempts(&writes, &attempts) {
                self.violation("audit-disagrees-with-wechat", Some(appid), why);
            }
        }
    }

    /// Liveness: every press the bot took up ("Working…") became an audit attempt of that
    /// person on that applicant with that action and reason; every refusal WeChat was asked
    /// for carries a reason somebody chose for that applicant.
    fn check_claimed_decisions(&mut self, audit: &[AuditRow]) {
        let t = texts();
        // What each press was answered, by the row of the audit log the answer promises: an
        // attempt ("Working…"), or with the approval policy a vote, a withdrawal, a decision
        // scheduled or one undone (issue 19).
        let promised = |text: &str| -> Option<&'static str> {
            if text == t.toast_working {
                Some("attempt")
            } else if text.starts_with(prefix(t.toast_voted)) {
                Some("vote")
            } else if text.starts_with(prefix(t.toast_withdrawn)) {
                Some("withdrawn")
            } else if text.starts_with(prefix(t.toast_scheduled)) {
                Some("scheduled")
            } else if text == t.toast_undone {
                Some("undone")
            } else {
                None
            }
        };
        let answers: HashMap<String, &'static str> = self
            .app
            .tg
            .fake
            .callback_answers()
            .into_iter()
            .filter_map(|a| Some((a.callback_query_id, promised(a.text.as_deref()?)?)))
            .collect();
        let mut used: HashSet<i64> = HashSet::new();
        for p in self.presses.clone() {
            let Some(&result) = answers.get(&p.query) else {
                continue;
            };
            let row = audit.iter().find(|a| {
                a.attempt_id.is_none()
                    && a.result == result
                    && !used.contains(&a.id)
                    && a.appid == p.appid
                    && a.actor_id == Some(p.who)
                    && a.via == "button"
                    && (a.action == p.action || matches!(p.action, "withdraw" | "undo"))
                    && p.reason
                        .as_deref()
                        .is_none_or(|r| a.reason.as_deref().is_some_and(|ar| same_reason(ar, r)))
            });
            match row {
                Some(a) => {
                    used.insert(a.id);
                }
                None => self.violation(
                    "taken-up-press-without-attempt",
                    Some(&p.appid),
                    format!(
                        "{} pressed {} (reason {:?}) and was answered as if it made a row '{result}', but the audit log has none",
                        p.who, p.action, p.reason
                    ),
                ),
            }
        }
        for a in audit
            .iter()
            .filter(|a| a.is_attempt() && a.action == "reject")
        {
            let chosen = self.chosen.get(&a.appid);
            let ok = a.reason.as_deref().is_some_and(|r| {
                chosen.is_some_and(|c| c.iter().any(|chosen| same_reason(r, chosen)))
            });
            if !ok {
                self.violation(
                    "reason-not-chosen",
                    Some(&a.appid),
                    format!(
                        "audit attempt {} refuses with {:?}; reasons chosen for it: {:?}",
                        a.id, a.reason, chosen
                    ),
                );
            }
        }
    }

    /// The approval policy (issue 19), from the audit log, on every schedule: a vote is an
    /// approver's; no approval attempt without the quorum's distinct voters standing (their
    /// votes since the applicant's last decision that took effect, less those withdrawn); with
    /// an undo window, every approval or refusal attempt ends a window of its own (a `scheduled`
    /// row of the same person and action before it, with neither ↩ Undo nor another attempt
    /// between), so an undone decision is never sent and a decision is sent once — every WeChat
    /// write belongs to an attempt ([`World::check_audit_against_wechat`]); and no such rows
    /// where the policy is off.
    fn check_policy(&mut self, audit: &[AuditRow]) {
        /// Where an applicant's latest undo window stands.
        enum Window<'a> {
            Waiting(&'a AuditRow),
            Undone(&'a AuditRow),
            Sent,
        }
        let needed = self.plan.approvals_required as usize;
        let undo = self.plan.undo.is_some();
        let mut found: Vec<(&'static str, String, String)> = Vec::new();
        let mut appids: Vec<&str> = audit.iter().map(|a| a.appid.as_str()).collect();
        appids.sort_unstable();
        appids.dedup();
        let tally = &mut self.tally;
        for appid in appids {
            let mut voters: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
            let mut window: Option<Window<'_>> = None;
            for a in audit
                .iter()
                .filter(|a| a.appid == appid && a.attempt_id.is_none())
            {
                let what = format!(
                    "audit row {} ({} {} by {:?} via {})",
                    a.id, a.result, a.action, a.actor_id, a.via
                );
                match a.result.as_str() {
                    "vote" | "withdrawn" if needed < 2 => {
                        found.push(("policy-row-without-policy", appid.to_owned(), what));
                    }
                    "scheduled" | "undone" if !undo => {
                        found.push(("policy-row-without-policy", appid.to_owned(), what));
                    }
                    "vote" => {
                        tally.votes += 1;
                        match a.actor_id {
                            Some(id) if id == ALICE || id == BOB => {
                                voters.insert(id);
                            }
                            _ => found.push(("vote-by-non-approver", appid.to_owned(), what)),
                        }
                    }
                    "withdrawn" => {
                        tally.withdrawn += 1;
                        if let Some(id) = a.actor_id {
                            voters.remove(&id);
                        }
                    }
                    "scheduled" => {
                        tally.scheduled += 1;
                        window = Some(Window::Waiting(a));
                    }
                    "undone" => {
                        tally.undone += 1;
                        match window {
                            Some(Window::Waiting(s)) => window = Some(Window::Undone(s)),
                            _ => found.push((
                                "undone-without-scheduled",
                                appid.to_owned(),
                                format!("{what}: no decision was waiting out its window"),
                            )),
                        }
                    }
                    "attempt" => {
                        let result = audit.iter().rev().find(|r| r.attempt_id == Some(a.id));
                        let took = result.is_some_and(|r| r.result == "ok");
                        if a.action == "approve" && needed >= 2 {
                            if voters.len() < needed {
                                found.push((
                                    "approval-without-quorum",
                                    appid.to_owned(),
                                    format!(
                                        "{what}: {} standing vote(s) of {needed} ({voters:?})",
                                        voters.len()
                                    ),
                                ));
                            } else if took {
                                tally.quorum_approvals += 1;
                            }
                        }
                        if undo && a.action != "delete" {
                            match window {
                                Some(Window::Waiting(s))
                                    if s.action == a.action && s.actor_id == a.actor_id =>
                                {
                                    window = Some(Window::Sent);
                                    tally.window_writes += 1;
                                }
                                Some(Window::Waiting(s)) => found.push((
                                    "write-not-the-scheduled-decision",
                                    appid.to_owned(),
                                    format!(
                                        "{what}, but row {} scheduled {} by {:?}",
                                        s.id, s.action, s.actor_id
                                    ),
                                )),
                                Some(Window::Undone(s)) => found.push((
                                    "write-for-undone-decision",
                                    appid.to_owned(),
                                    format!(
                                        "{what} after the decision scheduled in row {} was undone",
                                        s.id
                                    ),
                                )),
                                Some(Window::Sent) => found.push((
                                    "second-write-for-one-decision",
                                    appid.to_owned(),
                                    format!("{what}: its window's decision was already attempted"),
                                )),
                                None => found.push((
                                    "write-without-undo-window",
                                    appid.to_owned(),
                                    format!("{what}: no decision of it was scheduled"),
                                )),
                            }
                        }
                        if took {
                            // Decided: a later application gathers votes of its own.
                            voters.clear();
                        }
                    }
                    _ => {}
                }
            }
        }
        for (invariant, appid, detail) in found {
            self.violation(invariant, Some(&appid), detail);
        }
    }

    /// What people saw: every version of every card the bot ever showed (deleted ones too) was
    /// true or plainly historical when shown. An outcome "by" a person needs a write of it that
    /// WeChat may have applied (for a refusal, with the reason shown); "changed outside the bot"
    /// needs WeChat to have had that status by then, and "no longer in the list" the applicant
    /// removed by then (apart: what a glitching listing makes the bot say); "pending again, a
    /// newer card below" needs a newer card, even if a later edit hid the line.
    fn check_what_people_saw(&mut self, all: &[FakeMessage], calls: &[WxCall]) {
        let t = texts();
        // Each status an applicant may have had, and from when when the simulation knows it
        // (`None`: through a write, whose time the sandbox does not keep).
        let mut had: HashMap<String, Vec<Had>> = HashMap::new();
        for (appid, status) in &self.initial {
            had.entry(appid.clone())
                .or_default()
                .push((Some(*status), Some(self.started)));
        }
        for (appid, at, status) in &self.console {
            had.entry(appid.clone())
                .or_default()
                .push((*status, Some(*at)));
        }
        let mut refused_with: HashMap<String, Vec<String>> = HashMap::new();
        for c in calls.iter().filter(|c| is_write(c) && may_have_applied(c)) {
            let Some(appid) = c.appid.clone() else {
                continue;
            };
            let status = match c.action.as_deref() {
                Some("dev_agree") => Some(2),
                Some("dev_refuse") => {
                    let reason = c.body.get("reason").and_then(|r| r.as_str());
                    refused_with
                        .entry(appid.clone())
                        .or_default()
                        .push(reason.unwrap_or_default().trim().to_owned());
                    Some(3)
                }
                _ => None,
            };
            had.entry(appid).or_default().push((status, None));
        }
        let had_by = |appid: &str, status: Option<i64>, at: Instant| {
            had.get(appid).is_some_and(|h| {
                h.iter()
                    .any(|(s, when)| *s == status && when.is_none_or(|w| w <= at))
            })
        };
        let written = |appid: &str, action: &str| {
            calls.iter().any(|c| {
                c.appid.as_deref() == Some(appid)
                    && c.action.as_deref() == Some(action)
                    && may_have_applied(c)
            })
        };
        let statuses = [
            (t.status_pending, 1),
            (t.status_approved, 2),
            (t.status_refused, 3),
            (t.status_expired, 4),
        ];
        let elsewhere = prefix(t.line_elsewhere);
        let gone = t.line_gone.split(" · ").next().unwrap_or(t.line_gone);
        let mut found: Vec<(String, String)> = Vec::new();
        let mut gone_while_listed: Vec<(String, String)> = Vec::new();
        let mut orphaned: Vec<(String, String)> = Vec::new();
        for m in all.iter().filter(|m| m.from_bot) {
            for (n, v) in m.history.iter().enumerate() {
                if !v.plain_text.starts_with(t.card_title) {
                    continue;
                }
                let Some(appid) = self.appid_in(&v.plain_text) else {
                    continue;
                };
                // A card of a chat the team left says so below its outcome: judge the outcome.
                let mut lines = v.plain_text.lines().rev();
                let mut line = lines.next().unwrap_or_default();
                if line.starts_with(prefix(t.line_moved)) {
                    line = lines.next().unwrap_or_default();
                }
                let wrong = if line.starts_with(prefix(t.line_approved)) {
                    (!written(&appid, "dev_agree"))
                        .then(|| "no dev_agree WeChat may have applied".to_owned())
                } else if line.starts_with(prefix(t.line_deleted)) {
                    (!written(&appid, "dev_delete"))
                        .then(|| "no dev_delete WeChat may have applied".to_owned())
                } else if line.starts_with(prefix(t.line_rejected)) {
                    let shown = rejected_reason(line);
                    let sent = refused_with.get(&appid);
                    let matches = sent.is_some_and(|s| s.iter().any(|r| same_reason(r, shown)));
                    (!matches).then(|| {
                        format!("no dev_refuse WeChat may have applied with that reason (sent: {sent:?})")
                    })
                } else if let Some(rest) = line.strip_prefix(elsewhere) {
                    match statuses.iter().find(|(name, _)| rest.starts_with(name)) {
                        Some(&(name, code)) => (!had_by(&appid, Some(code), v.at))
                            .then(|| format!("WeChat had not been {name} by then")),
                        None => None,
                    }
                } else if line.starts_with(prefix(t.line_superseded)) {
                    // Even if a later edit hid it, "a newer card below" needs a newer card.
                    let newer = all.iter().any(|n| {
                        n.from_bot
                            && n.message_id > m.message_id
                            && is_card(n)
                            && n.plain_text.contains(appid.as_str())
                    });
                    if !newer {
                        orphaned.push((
                            appid.clone(),
                            format!(
                                "card {} version {n} ({} ms after the start) said {line:?}, and no newer card of the applicant was ever posted",
                                m.message_id,
                                v.at.saturating_duration_since(self.started).as_millis(),
                            ),
                        ));
                    }
                    None
                } else if line.starts_with(gone) {
                    if !had_by(&appid, None, v.at) {
                        gone_while_listed.push((
                            appid.clone(),
                            format!(
                                "card {} version {n} ({} ms after the start) said {line:?}, yet WeChat still had the applicant",
                                m.message_id,
                                v.at.saturating_duration_since(self.started).as_millis(),
                            ),
                        ));
                    }
                    None
                } else {
                    None
                };
                if let Some(why) = wrong {
                    found.push((
                        appid,
                        format!(
                            "card {} version {n} ({} ms after the start{}) said {line:?}: {why}",
                            m.message_id,
                            v.at.saturating_duration_since(self.started).as_millis(),
                            if m.deleted { ", since deleted" } else { "" },
                        ),
                    ));
                }
            }
        }
        for (appid, detail) in found {
            self.violation("shown-outcome-never-in-wechat", Some(&appid), detail);
        }
        for (appid, detail) in gone_while_listed {
            self.violation("shown-gone-while-listed", Some(&appid), detail);
        }
        for (appid, detail) in orphaned {
            self.violation("superseded-without-successor", Some(&appid), detail);
        }
    }

    /// Cards ever posted per applicant: one, plus one for each card of it a person deleted, one
    /// for each kill (the duplicate window) and one for each re-application — and, with two
    /// lives, one for each card a paused leader sent as it woke and took back at once (its
    /// record refused by the fence; it never offered ✅/❌). More means cards were posted again
    /// for nothing people or WeChat did.
    fn check_cards_per_applicant(&mut self, chat: i64, all: &[FakeMessage]) {
        let mut posted: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for m in all.iter().filter(|m| m.from_bot && is_card(m)) {
            if let Some(appid) = self.appid_of(m) {
                posted.entry(appid).or_default().push(m.message_id);
            }
        }
        for (appid, ids) in posted {
            let deleted = ids
                .iter()
                .filter(|id| self.deleted_by_people.contains(&(chat, **id)))
                .count();
            let reapplied = self.reapplied.iter().filter(|(a, _)| *a == appid).count();
            let taken_back = if self.plan.two_lives {
                all.iter()
                    .filter(|m| {
                        ids.contains(&m.message_id)
                            && m.deleted
                            && !self.deleted_by_people.contains(&(chat, m.message_id))
                            && !m
                                .history
                                .iter()
                                .any(|v| v.buttons.iter().flatten().any(|b| decides(&b.text)))
                    })
                    .count()
                    .min(self.pauses)
            } else {
                0
            };
            let bound = 1 + deleted + self.kills.len() + reapplied + taken_back;
            if ids.len() > bound {
                self.violation(
                    "too-many-cards",
                    Some(&appid),
                    format!(
                        "{} cards posted {ids:?}; at most {bound} (1, {deleted} deleted by people, {} kills, {reapplied} re-applications)",
                        ids.len(),
                        self.kills.len()
                    ),
                );
            }
        }
    }

    /// The chat the team left: every card the bot recorded there says where the team moved and
    /// offers no ✅/❌ (a press there is refused), or says a newer card replaced it.
    fn check_left_chat(&mut self, chat: i64, messages: &[FakeMessage]) {
        let t = texts();
        for m in messages.iter().filter(|m| is_card(m)) {
            let appid = self.appid_of(m);
            let outcome = outcome_of(m);
            let closed = outcome.starts_with(prefix(t.line_moved))
                || outcome.starts_with(prefix(t.line_superseded));
            if !closed || labels(m).iter().any(|l| decides(l)) {
                self.violation(
                    "left-chat-card-open",
                    appid.as_deref(),
                    format!(
                        "card {} in the chat the team left ({chat}) says {outcome:?} with buttons {:?}",
                        m.message_id,
                        labels(m)
                    ),
                );
            }
        }
    }

    /// While a decision on an applicant is unsettled in the chat the team left (its card shows
    /// it in progress, or its outcome unknown), no card of it in the new chat offers ✅/❌: a
    /// second decision could be made before the first is known.
    fn check_no_decision_while_unsettled_elsewhere(&mut self) {
        let t = texts();
        let deciding_suffix = t.line_deciding.rsplit('}').next().unwrap_or_default();
        let unknown = prefix(t.line_unknown);
        // " goes to WeChat at ": a decision waiting out its undo window is unsettled too.
        let scheduled = t
            .line_scheduled
            .split('}')
            .nth(2)
            .and_then(|p| p.split('{').next())
            .unwrap_or(t.line_scheduled);
        let old = self.app.tg.fake.messages(TEAM);
        let new = self.app.tg.fake.messages(OTHER_CHAT);
        let mut found = Vec::new();
        for m in new.iter().filter(|m| m.from_bot) {
            for v in &m.history {
                let offers = v.buttons.iter().flatten().any(|b| decides(&b.text));
                let Some(appid) = self.appid_in(&v.plain_text) else {
                    continue;
                };
                if !offers || !v.plain_text.starts_with(t.card_title) {
                    continue;
                }
                // What the old chat's cards of the applicant showed at that moment.
                for o in old
                    .iter()
                    .filter(|o| o.from_bot && o.plain_text.contains(appid.as_str()))
                {
                    let shown = o.history.iter().rev().find(|ov| ov.at <= v.at);
                    let gone = o.deleted_at.is_some_and(|d| d <= v.at);
                    // A card, not a command's answer that quotes a card's outcome line.
                    let Some(shown) =
                        shown.filter(|s| !gone && s.plain_text.starts_with(t.card_title))
                    else {
                        continue;
                    };
                    let line = shown.plain_text.lines().last().unwrap_or_default();
                    if line.starts_with(unknown)
                        || line.ends_with(deciding_suffix)
                        || line.contains(scheduled)
                    {
                        found.push((
                            appid.clone(),
                            format!(
                                "new chat card {} offered ✅/❌ ({} ms after the start) while old chat card {} showed {line:?}",
                                m.message_id,
                                v.at.saturating_duration_since(self.started).as_millis(),
                                o.message_id
                            ),
                        ));
                    }
                }
            }
        }
        for (appid, detail) in found {
            self.violation(
                "decision-offered-while-unsettled-elsewhere",
                Some(&appid),
                detail,
            );
        }
    }

    /// The AppSecret went nowhere but the token endpoint: a followed redirect of `stable_token`
    /// would have posted it to where [`REDIRECT_TO`] points, which records every body.
    fn check_secret_stayed(&mut self, calls: &[WxCall]) {
        let secret = self.app.vars["WECHAT_SECRET"].clone();
        for c in calls {
            if c.body.to_string().contains(&secret) {
                self.violation(
                    "secret-followed-redirect",
                    None,
                    format!(
                        "the devplugin endpoint received the AppSecret: {:?}",
                        c.body
                    ),
                );
            }
        }
    }

    /// No text the bot sent was refused as too long (Telegram's 4,096 UTF-16 units after
    /// entity parsing): a 4 KB errmsg quoted whole would silence the alert or reply carrying it.
    fn check_texts_fit(&mut self) {
        for c in self.app.tg.fake.calls() {
            if c.error_code != Some(400)
                || !matches!(c.method.as_str(), "sendMessage" | "editMessageText")
            {
                continue;
            }
            let text = c
                .params
                .get("text")
                .and_then(|t| t.as_str())
                .unwrap_or_default();
            let plain = wxplugin_bot::testbed::fake_telegram::html::to_plain(text)
                .unwrap_or_else(|_| text.to_owned());
            let units = plain.encode_utf16().count();
            if units > 4096 {
                self.violation(
                    "text-too-long",
                    self.appid_in(&plain).as_deref(),
                    format!(
                        "{} refused: {units} UTF-16 units, starting {:?}",
                        c.method,
                        plain.chars().take(120).collect::<String>()
                    ),
                );
            }
        }
    }

    /// `/delete` of an applicant WeChat had refused or timed out before the bot first looked
    /// (it never had a card) goes by WeChat's state: it is never answered "cannot be done", as
    /// long as the console left the applicant alone until the answer.
    fn check_deletes_without_card(&mut self, chat: i64, all: &[FakeMessage]) {
        let t = texts();
        for (sent_in, id, appid, _) in self.deletes.clone() {
            if sent_in != chat || !matches!(self.initial.get(&appid), Some(3 | 4)) {
                continue;
            }
            let Some(reply) = all.iter().find(|m| m.from_bot && m.reply_to == Some(id)) else {
                continue;
            };
            let answered = sent_at(reply);
            let touched = self
                .console
                .iter()
                .any(|(a, at, _)| *a == appid && *at <= answered);
            // The command's refusal ("{appid} is {status} now: … cannot be done"), up to the status.
            let refused = t
                .cmd_not_applicable
                .split("{status}")
                .next()
                .unwrap_or_default()
                .replace("{appid}", &appid);
            // Deleted by the bot itself meanwhile (an earlier /delete or 🗑 that took effect, which
            // the reply names): nothing is left to delete, and saying so is the truth.
            let deleted_by_bot = t
                .line_deleted
                .split("{name}")
                .next()
                .is_some_and(|prefix| reply.plain_text.contains(prefix))
                && self.app.wx.sandbox.calls().iter().any(|c| {
                    c.action.as_deref() == Some("dev_delete")
                        && c.appid.as_deref() == Some(appid.as_str())
                        && c.errcode == Some(0)
                });
            if !touched && !deleted_by_bot && reply.plain_text.starts_with(&refused) {
                self.violation(
                    "delete-without-card-refused",
                    Some(&appid),
                    format!(
                        "/delete (message {id}) of an applicant refused or timed out before the first poll was answered {:?}",
                        reply.plain_text
                    ),
                );
            }
        }
    }

    /// Where Telegram's flood limits are enforced, the bot's limiter paces so that the fake
    /// never has to refuse a call, and a first poll of over 20 cards comes with its digest.
    fn check_flood(&mut self) {
        if !self.plan.flood {
            return;
        }
        let fake = self.app.tg.fake.clone();
        // Judged over the first life only: a restarted bot's limiter starts with untouched
        // budgets, while Telegram remembers what the last life sent in the last minute (a known
        // limit of an in-memory limiter, reported; every refusal is waited out).
        let refused = self
            .first_life_refusals
            .unwrap_or_else(|| fake.flood_refusals());
        if refused > FLOOD_REFUSALS_TOLERATED {
            self.violation(
                "flood-limit-refused",
                None,
                format!(
                    "the fake refused {refused} calls over Telegram's flood limits in the first life; calls answered 429 (any life): {:?}",
                    fake.calls()
                        .iter()
                        .filter(|c| c.error_code == Some(429))
                        .map(|c| format!(
                            "{} at {} ms",
                            c.method,
                            c.at.saturating_duration_since(self.started).as_millis()
                        ))
                        .collect::<Vec<_>>()
                ),
            );
        }
        let digest = prefix(texts().digest_header);
        if self.plan.applicants > 20
            && !fake
                .messages(TEAM)
                .iter()
                .any(|m| m.from_bot && m.plain_text.starts_with(digest))
        {
            self.violation(
                "burst-without-digest",
                None,
                format!(
                    "{} applicants at the first poll, and no digest",
                    self.plan.applicants
                ),
            );
        }
    }

    /// The seed, the schedule, what happened, the violations and the evidence for each appid.
    async fn report(&self) -> String {
        let stored = read_db_with_applicants(&self.app.vars["DATABASE_URL"])
            .await
            .map(|(_, _, stored)| stored)
            .unwrap_or_default();
        let mut s = format!(
            "\n=== simulation seed {} failed: {} violation(s) ===\n",
            self.plan.seed,
            self.violations.len()
        );
        for v in &self.violations {
            let _ = writeln!(
                s,
                "  [{}] {} {}",
                v.invariant,
                v.appid.as_deref().unwrap_or("-"),
                v.detail
            );
        }
        s.push_str("--- schedule ---\n");
        s.push_str(&self.plan.describe());
        s.push_str("--- run ---\n");
        for line in &self.log {
            let _ = writeln!(s, "  {line}");
        }
        let appids: HashSet<&str> = self
            .violations
            .iter()
            .filter_map(|v| v.appid.as_deref())
            .collect();
        for appid in appids {
            let _ = writeln!(
                s,
                "--- {appid} --- WeChat status {:?}; {}",
                self.app.wx.sandbox.applicant(appid).map(|a| a.status),
                stored.get(appid).map_or("not in the store", String::as_str)
            );
            for c in self.app.wx.sandbox.calls() {
                if c.appid.as_deref() == Some(appid) {
                    let _ = writeln!(
                        s,
                        "  wechat {} → {:?}{}",
                        c.action.as_deref().unwrap_or("?"),
                        c.errcode,
                        if c.overlapped { " (overlapped)" } else { "" }
                    );
                }
            }
            for m in [TEAM, OTHER_CHAT]
                .into_iter()
                .flat_map(|chat| self.app.tg.fake.messages(chat))
            {
                if m.from_bot && m.plain_text.contains(appid) {
                    let _ = writeln!(
                        s,
                        "  message {}{}{}: {:?} {:?}",
                        if m.chat_id == TEAM {
                            ""
                        } else {
                            "(moved chat) "
                        },
                        m.message_id,
                        if m.deleted { " (deleted)" } else { "" },
                        m.plain_text.lines().last().unwrap_or_default(),
                        labels(&m)
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "replay: SIM_SEED={} cargo test --release --test simulation -- --nocapture",
            self.plan.seed
        );
        s
    }
}

/// Runs one schedule to its checks; returns its violations and, when there are any, the report,
/// how many cards fell in the documented duplicate window, and how many kills there were.
async fn simulate(
    seed: u64,
) -> (
    u64,
    Vec<Violation>,
    String,
    usize,
    usize,
    Duration,
    PolicyTally,
) {
    let plan = Plan::new(seed);
    let mut world = World::new(plan).await;
    world.run().await;
    world.check().await;
    world.tally.quorum_schedules = usize::from(world.plan.approvals_required > 1);
    world.tally.undo_schedules = usize::from(world.plan.undo.is_some());
    let report = if world.violations.is_empty() && std::env::var_os("SIM_SHOW").is_none() {
        String::new()
    } else {
        world.report().await
    };
    (
        seed,
        world.violations,
        report,
        world.windows,
        world.kills.len(),
        world.slowest_stop,
        world.tally,
    )
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn randomized_schedules_keep_one_truth_per_applicant() {
    let replay = env_number("SIM_SEED");
    let listed: Option<Vec<u64>> = std::env::var("SIM_SEEDS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    let seeds: Vec<u64> = match (replay, listed) {
        (Some(seed), _) => vec![seed],
        (None, Some(listed)) => listed,
        (None, None) => {
            let base = env_number("SIM_BASE_SEED").unwrap_or(1);
            let count = env_number("SIM_SCHEDULES").unwrap_or(DEFAULT_SCHEDULES);
            (base..base + count).collect()
        }
    };
    if std::env::var_os("SIM_PLANS").is_some() {
        // Only the schedules, to find the seeds that draw a given knob or step.
        for seed in seeds {
            eprint!("{}", Plan::new(seed).describe());
        }
        return;
    }
    let jobs = env_number("SIM_JOBS").map_or(DEFAULT_JOBS, |n| n.max(1) as usize);
    if let Ok(filter) = std::env::var("SIM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_thread_names(true)
            .with_test_writer()
            .try_init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the world");
    let started = Instant::now();
    let total = seeds.len();
    let results = runtime.block_on(async {
        futures::stream::iter(seeds)
            .map(|seed| async move {
                // Each schedule in a task of its own: a panic names its seed.
                match tokio::spawn(simulate(seed)).await {
                    Ok(result) => result,
                    Err(e) => (
                        seed,
                        vec![Violation {
                            invariant: "simulation-panicked",
                            appid: None,
                            detail: e.to_string(),
                        }],
                        format!("seed {seed} panicked: {e}\nreplay: SIM_SEED={seed} cargo test --release --test simulation -- --nocapture\n"),
                        0,
                        0,
                        Duration::ZERO,
                        PolicyTally::default(),
                    ),
                }
            })
            .buffer_unordered(jobs)
            .collect::<Vec<_>>()
            .await
    });
    runtime.shutdown_background();
    let shown_reports = env_number("SIM_REPORTS").map_or(20, |n| n as usize);
    let mut tally: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    let mut failed: Vec<u64> = Vec::new();
    let mut results = results;
    results.sort_by_key(|(seed, ..)| *seed);
    let windows: usize = results.iter().map(|(_, _, _, w, ..)| w).sum();
    let kills: usize = results.iter().map(|(_, _, _, _, k, ..)| k).sum();
    let slowest_stop = results
        .iter()
        .map(|(.., s, _)| *s)
        .max()
        .unwrap_or_default();
    let mut policy = PolicyTally::default();
    for (.., tally) in &results {
        policy += *tally;
    }
    let is_known = |v: &Violation| KNOWN.iter().any(|(name, _)| *name == v.invariant);
    let mut known: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    for (seed, violations, report, ..) in &results {
        for v in violations.iter().filter(|v| is_known(v)) {
            let seeds = known.entry(v.invariant).or_default();
            if seeds.last() != Some(seed) {
                seeds.push(*seed);
            }
        }
        if violations.iter().all(is_known) {
            if !report.is_empty() {
                eprintln!("{report}");
            }
            continue;
        }
        failed.push(*seed);
        for v in violations.iter().filter(|v| !is_known(v)) {
            let seeds = tally.entry(v.invariant).or_default();
            if seeds.last() != Some(seed) {
                seeds.push(*seed);
            }
        }
        if replay.is_some() || failed.len() <= shown_reports {
            eprintln!("{report}");
        }
    }
    let mut summary = format!(
        "simulation: {total} schedules in {:.0?}, {} with violations; {windows} cards in the documented duplicate window, each tied to one of {kills} kills; slowest graceful stop {slowest_stop:.1?} (bound {STOP_BOUND:?}); {policy}\n",
        started.elapsed(),
        failed.len()
    );
    for (invariant, seeds) in &known {
        let why = KNOWN
            .iter()
            .find(|(name, _)| name == invariant)
            .map_or("", |(_, why)| why);
        let _ = writeln!(
            summary,
            "  known, not failing: {invariant}: {} schedules (seeds {}): {why}",
            seeds.len(),
            seeds
                .iter()
                .take(12)
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    for (invariant, seeds) in &tally {
        let shown: Vec<String> = seeds.iter().take(12).map(u64::to_string).collect();
        let _ = writeln!(
            summary,
            "  {invariant}: {} schedules (seeds {}{})",
            seeds.len(),
            shown.join(", "),
            if seeds.len() > 12 { ", …" } else { "" }
        );
    }
    eprintln!("{summary}");
    assert!(windows <= kills, "more window cards than kills: {summary}");
    assert!(failed.is_empty(), "{summary}");
}

/// The sandbox's overlap counter, which the simulation relies on: a write that arrives while
/// another write for the same appid is held counts; one for another appid, or one after the
/// answer, does not.
#[tokio::test]
async fn the_sandbox_counts_writes_that_overlap_for_one_applicant() {
    let app = TestApp::new(2).await;
    let sandbox = app.wx.sandbox.clone();
    let appids = app.appids();
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/cgi-bin/stable_token", app.wx.base_url))
        .json(&json!({
            "grant_type": "client_credential",
            "appid": app.vars["WECHAT_APPID"],
            "secret": app.vars["WECHAT_SECRET"],
        }))
        .send()
        .await
        .expect("token answer")
        .json()
        .await
        .expect("token JSON");
    let url = format!(
        "{}/wxa/devplugin?access_token={}",
        app.wx.base_url,
        token["access_token"].as_str().expect("a token")
    );
    let write = |action: &'static str, appid: String| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.post(url)
                .json(&json!({ "action": action, "appid": appid, "reason": "r" }))
                .send()
                .await
                .expect("devplugin answer")
                .status()
        }
    };
    sandbox.inject(wx_fault(
        "dev_agree",
        Fault::Delay(Duration::from_millis(400)),
        1,
    ));

    let held = tokio::spawn(write("dev_agree", appids[0].clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other_applicant = write("dev_agree", appids[1].clone()).await;
    let same_applicant = write("dev_refuse", appids[0].clone()).await;
    held.await.expect("held write");
    let after_the_answer = write("dev_delete", appids[0].clone()).await;

    assert!(
        other_applicant.is_success()
            && same_applicant.is_success()
            && after_the_answer.is_success()
    );
    assert_eq!(sandbox.stats().overlapping_writes, 1);
    let flags: Vec<(Option<String>, bool)> = sandbox
        .calls()
        .into_iter()
        .map(|c| (c.action, c.overlapped))
        .collect();
    assert_eq!(
        flags,
        [
            (Some("dev_agree".to_owned()), false),
            (Some("dev_agree".to_owned()), false),
            (Some("dev_refuse".to_owned()), true),
            (Some("dev_delete".to_owned()), false),
        ]
    );
    assert_eq!(
        sandbox.calls()[2].appid.as_deref(),
        Some(appids[0].as_str())
    );
}
