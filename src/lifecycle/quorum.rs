//! Quorum: with `APPROVALS_REQUIRED` of 2 or more, a ✅ (button or `/approve`) is a vote until
//! that many distinct approvers have voted; only the vote that completes the quorum claims the
//! decision, and the claim itself requires the stored votes, so no approval reaches WeChat on
//! fewer. Each vote and withdrawal is a compare-and-swap on the card's version, written with its
//! audit row in one transaction; a veto (❌ with its reason) goes through the decision as ever.

use crate::domain::action::{Action, Via};
use crate::domain::card::{Actor, Card, CardState, Note, Vote};
use crate::domain::now_secs;
use crate::lifecycle::app::App;
use crate::lifecycle::decision::{self, Begin};
use crate::store::{StoreError, VoteChange};

/// What a ✅ came to.
#[derive(Debug)]
pub enum Ballot {
    /// The approval goes ahead (the quorum is met, or none is asked for), or the claim says why
    /// not: what [`decision::begin`] answered.
    Decide(Begin),
    /// Counted as a vote: `count` of `needed` now.
    Counted { count: usize, needed: u32 },
    /// This approver had voted already; `count` of `needed`.
    AlreadyVoted { count: usize, needed: u32 },
}

/// What a ↩ on one's own vote came to.
#[derive(Debug)]
pub enum Withdrawal {
    /// Taken back: `count` of `needed` remain.
    Withdrawn { count: usize, needed: u32 },
    /// The presser has no vote on the card.
    NotVoted,
    /// The card takes no votes now (being decided, decided, outcome unknown).
    Closed,
}

/// How often a vote is tried again when another change to the card won the compare-and-swap
/// (several approvers pressing at once); each try reads the card afresh.
const VOTE_TRIES: usize = 8;

/// Whether `card` takes votes now: open, its last outcome known, and its applicant pending.
async fn takes_votes(app: &App, card: &Card) -> Result<bool, StoreError> {
    if card.state != CardState::Open || matches!(card.note, Some(Note::Unknown { .. })) {
        return Ok(false);
    }
    Ok(app
        .store
        .applicant(&card.plugin, &card.appid)
        .await?
        .is_some_and(|s| !s.gone && Action::Approve.applies_to(s.applicant.status)))
}

/// A ✅ by `actor` on `card`: the approval itself when no quorum is asked for, else a vote, and
/// the decision when this vote completes the quorum (its voter is the decision's actor).
pub async fn approve(
    app: &App,
    card: &Card,
    actor: &Actor,
    via: Via,
) -> Result<Ballot, StoreError> {
    let needed = app.settings.approvals_required;
    let claim = || decision::begin(app, card, actor, Action::Approve, None, via);
    if needed <= 1 {
        return Ok(Ballot::Decide(claim().await?));
    }
    for _ in 0..VOTE_TRIES {
        let Some(now) = app.store.card(card.id).await? else {
            return Ok(Ballot::Decide(Begin::NotApplicable));
        };
        if !takes_votes(app, &now).await? {
            // The claim says why in its own words (who holds it, unknown outcome, decided).
            return Ok(Ballot::Decide(claim().await?));
        }
        let mine = now.votes.iter().any(|v| v.id == actor.id);
        if mine && now.votes.len() < needed as usize {
            return Ok(Ballot::AlreadyVoted {
                count: now.votes.len(),
                needed,
            });
        }
        let mut votes = now.votes.clone();
        if !mine {
            votes.push(Vote {
                id: actor.id,
                name: actor.name.clone(),
                at: now_secs(),
            });
            let change = VoteChange {
                plugin: &now.plugin,
                appid: &now.appid,
                actor,
                via,
                withdrawn: false,
            };
            if !app
                .store
                .set_votes(now.id, now.version, &votes, &change)
                .await?
            {
                continue;
            }
            tracing::info!(appid = %now.appid, by = %actor.name, votes = votes.len(), needed, "vote");
        }
        // Only the votes of people who are approvers now count: someone taken off
        // `APPROVER_IDS` (or no longer a chat admin) since voting does not complete a quorum.
        // (When Telegram cannot be asked, a vote counts as not an approver's: the claim waits.)
        let mut counted = 0;
        for vote in &votes {
            if app
                .approvers
                .of(now.plugin.as_str())
                .is_approver(
                    &app.desk.bot,
                    app.desk.chat,
                    teloxide::types::UserId(vote.id),
                )
                .await
            {
                counted += 1;
            }
        }
        if counted < needed as usize {
            return Ok(Ballot::Counted {
                count: counted,
                needed,
            });
        }
        // The quorum is met (by this vote, or stood met after a restart cut its claim short).
        let begun = claim().await?;
        if matches!(begun, Begin::NotApplicable)
            && let Some(after) = app.store.card(card.id).await?
            && takes_votes(app, &after).await?
            && after.votes.len() < needed as usize
        {
            // A withdrawal came between this vote and its claim: the vote stands, counted.
            return Ok(Ballot::Counted {
                count: after.votes.len(),
                needed,
            });
        }
        return Ok(Ballot::Decide(begun));
    }
    Ok(Ballot::Decide(claim().await?))
}

/// ↩ on one's own vote: takes it back while the card still takes votes.
pub async fn withdraw(
    app: &App,
    card: &Card,
    actor: &Actor,
    via: Via,
) -> Result<Withdrawal, StoreError> {
    let needed = app.settings.approvals_required;
    for _ in 0..VOTE_TRIES {
        let Some(now) = app.store.card(card.id).await? else {
            return Ok(Withdrawal::Closed);
        };
        if !now.votes.iter().any(|v| v.id == actor.id) {
            return Ok(Withdrawal::NotVoted);
        }
        if !takes_votes(app, &now).await? {
            return Ok(Withdrawal::Closed);
        }
        let votes: Vec<Vote> = now
            .votes
            .iter()
            .filter(|v| v.id != actor.id)
            .cloned()
            .collect();
        let change = VoteChange {
            plugin: &now.plugin,
            appid: &now.appid,
            actor,
            via,
            withdrawn: true,
        };
        if app
            .store
            .set_votes(now.id, now.version, &votes, &change)
            .await?
        {
            tracing::info!(appid = %now.appid, by = %actor.name, votes = votes.len(), needed, "vote withdrawn");
            return Ok(Withdrawal::Withdrawn {
                count: votes.len(),
                needed,
            });
        }
    }
    Ok(Withdrawal::Closed)
}
