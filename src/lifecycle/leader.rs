//! Which of several replicas sharing one database leads: polls WeChat, sends reminders and, in
//! long-polling mode, reads Telegram's updates. One lease row with an epoch decides it
//! ([`crate::store::Store::take_lease`]); this is the replica's own view of it, kept by one step
//! every third of the lease, and what `/status` and `/healthz` tell of it.
//!
//! A leader acts only while its lease is certainly its own by its own clock: the lease ends
//! `LEASE_SECS` after the database granted a renewal, and the replica counts from before it asked,
//! so it stops believing it leads before any other replica may take over. Its writes are fenced
//! by the epoch in the database besides, for the pause no clock can see.

use std::time::{Duration, Instant};

use crate::domain::now_secs;
use crate::store::{LeaseState, Store, StoreError};

/// One replica's view of the lease.
#[derive(Debug)]
pub struct Leadership {
    /// This replica's name (`REPLICA_NAME`).
    pub me: String,
    /// How long a lease lasts unrenewed (`LEASE_SECS`).
    pub length: Duration,
    /// On SQLite (one file on one machine), a lease that cannot be written — a read-only or full
    /// disk — cannot be written by another process either: this one leads anyway, so the chat
    /// still hears why its polls fail. On PostgreSQL a replica that cannot reach the lease waits.
    lead_when_unreachable: std::sync::atomic::AtomicBool,
    view: std::sync::Mutex<View>,
}

/// What this replica knows of the lease.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// This replica's term, while it leads.
    pub term: Option<Term>,
    /// The replica leading as last read, and since when (unix seconds), if any leads.
    pub leader: Option<(String, i64)>,
    /// When the lease was last read or written.
    pub lease_ok_at: Option<Instant>,
    /// The last error reaching the lease, until it is reached again.
    pub last_error: Option<String>,
}

/// A stretch of time this replica leads.
#[derive(Clone, Copy, Debug)]
pub struct Term {
    /// The lease's epoch, which fences this term's writes.
    pub epoch: i64,
    /// When it began (unix seconds).
    pub since: i64,
    /// Until when the lease is certainly this replica's, by its own clock.
    pub sure_until: Instant,
}

/// What one step of the lease did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// This replica took the lease: a term begins with this epoch.
    Took(i64),
    /// It leads and renewed (or could not renew, but its lease has not ended yet).
    Kept,
    /// Its term is over: another replica took the lease, or it could not renew in time.
    Lost,
    /// Another replica leads (or none could be reached); this one waits.
    Standby,
}

impl Leadership {
    /// A replica named `me`, with leases of `length`.
    pub fn new(me: String, length: Duration) -> Self {
        Self {
            me,
            length,
            lead_when_unreachable: std::sync::atomic::AtomicBool::new(false),
            view: std::sync::Mutex::new(View::default()),
        }
    }

    /// Leads even when the lease cannot be written (a store on SQLite).
    pub fn lead_when_unreachable(&self) {
        self.lead_when_unreachable
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn sole(&self) -> bool {
        self.lead_when_unreachable
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How often the lease is renewed, and how often a standby tries to take it.
    pub fn every(&self) -> Duration {
        self.length / 3
    }

    /// What this replica knows of the lease now.
    pub fn view(&self) -> View {
        self.lock().clone()
    }

    /// Whether this replica leads now (its lease certainly has not ended).
    pub fn leads(&self) -> bool {
        self.lock()
            .term
            .is_some_and(|t| Instant::now() < t.sure_until)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One step: renew the lease if this replica leads, else try to take it. `first` (the
    /// process's first step) takes back a lease held in this replica's own name: the same
    /// replica, started again after a crash, need not wait for its old lease to end.
    pub async fn step(&self, store: &Store, first: bool) -> Step {
        let asked = Instant::now();
        let term = self.lock().term;
        let step = match term {
            Some(term) => self.renew(store, term, asked).await,
            None => self.take(store, first, asked).await,
        };
        crate::telemetry::leader(self.lock().term.is_some());
        step
    }

    async fn renew(&self, store: &Store, term: Term, asked: Instant) -> Step {
        match store.renew_lease(&self.me, term.epoch, self.length).await {
            Ok(true) => {
                crate::telemetry::lease_renewal("ok");
                let mut view = self.lock();
                if let Some(t) = view.term.as_mut() {
                    t.sure_until = asked + self.length;
                }
                view.lease_ok_at = Some(Instant::now());
                view.last_error = None;
                Step::Kept
            }
            Ok(false) => {
                crate::telemetry::lease_renewal("lost");
                let leader = store.lease().await.ok();
                let mut view = self.lock();
                view.term = None;
                view.leader = leader.as_ref().and_then(leader_of);
                tracing::error!(
                    epoch = term.epoch,
                    now_leads = leader
                        .as_ref()
                        .and_then(|l| l.holder.as_deref())
                        .unwrap_or("nobody"),
                    "this replica's lease was taken over; it stops leading"
                );
                if leader.as_ref().and_then(|l| l.holder.as_deref()) == Some(self.me.as_str()) {
                    tracing::error!(
                        replica = %self.me,
                        "another replica runs under this one's name: give each its own REPLICA_NAME"
                    );
                }
                Step::Lost
            }
            Err(e) => {
                crate::telemetry::lease_renewal("error");
                let mut view = self.lock();
                view.last_error = Some(crate::report::one_line(&e));
                if self.sole() {
                    if let Some(t) = view.term.as_mut() {
                        t.sure_until = asked + self.length;
                    }
                    tracing::debug!(error = %e, "could not renew the lease on SQLite; leading anyway");
                    return Step::Kept;
                }
                if Instant::now() < term.sure_until {
                    tracing::warn!(error = %e, "could not renew the lease; it still holds for now");
                    return Step::Kept;
                }
                view.term = None;
                view.leader = None;
                tracing::error!(error = %e, "could not renew the lease before it ended; this replica stops leading until it can take it again");
                Step::Lost
            }
        }
    }

    async fn take(&self, store: &Store, first: bool, asked: Instant) -> Step {
        match store.take_lease(&self.me, self.length, first).await {
            Ok(Some(epoch)) => {
                crate::telemetry::lease_taken();
                let mut view = self.lock();
                let since = now_secs();
                view.term = Some(Term {
                    epoch,
                    since,
                    sure_until: asked + self.length,
                });
                view.leader = Some((self.me.clone(), since));
                view.lease_ok_at = Some(Instant::now());
                view.last_error = None;
                tracing::info!(replica = %self.me, epoch, "this replica leads: it polls WeChat from now on");
                Step::Took(epoch)
            }
            Ok(None) => {
                let lease = store.lease().await;
                let mut view = self.lock();
                match lease {
                    Ok(lease) => {
                        let leader = leader_of(&lease);
                        if view.leader != leader || view.lease_ok_at.is_none() {
                            tracing::info!(
                                leader = leader.as_ref().map_or("none", |l| l.0.as_str()),
                                "standing by while another replica leads"
                            );
                        }
                        view.leader = leader;
                        view.lease_ok_at = Some(Instant::now());
                        view.last_error = None;
                    }
                    Err(e) => view.last_error = Some(crate::report::one_line(&e)),
                }
                Step::Standby
            }
            Err(e) if self.sole() => {
                tracing::warn!(error = %e, "could not write the lease; on SQLite no other process can either, so this one leads");
                let mut view = self.lock();
                let since = now_secs();
                view.term = Some(Term {
                    epoch: 0,
                    since,
                    sure_until: asked + self.length,
                });
                view.leader = Some((self.me.clone(), since));
                view.last_error = Some(crate::report::one_line(&e));
                Step::Took(0)
            }
            Err(e) => {
                self.note_error(&e);
                Step::Standby
            }
        }
    }

    fn note_error(&self, e: &StoreError) {
        let mut view = self.lock();
        if view.last_error.is_none() {
            tracing::warn!(error = %e, "could not reach the lease; standing by");
        }
        view.last_error = Some(crate::report::one_line(e));
    }

    /// Gives the lease up at a clean stop, so a standby takes over at once.
    pub async fn release(&self, store: &Store) {
        let term = self.lock().term.take();
        crate::telemetry::leader(false);
        if let Some(term) = term {
            match store.release_lease(&self.me, term.epoch).await {
                Ok(()) => tracing::info!(epoch = term.epoch, "handed the lease on"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not hand the lease on; a standby takes over when it ends")
                }
            }
        }
    }
}

/// The replica a lease names as leading, and since when (unix seconds).
fn leader_of(lease: &LeaseState) -> Option<(String, i64)> {
    lease
        .leader()
        .map(|name| (name.to_owned(), lease.since_ms / 1000))
}
