//! The bot's HTTP listeners (webhook, `/metrics` and `/healthz`, the demo page), served so that
//! a flood of connections cannot starve them: a peer has 5 s to send a request's headers (the
//! first and every later one on a kept-alive connection), a request 30 s to be answered, and
//! the number of connections stays below the open-file limit with room for the bot's own
//! clients. At that cap the connection idle the longest is closed for the newcomer, so a flood
//! of silent connections cannot keep Telegram's delivery out.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::response::IntoResponse as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_service::Service as _;

/// How long a peer has to send a request's headers, counted from when the server starts
/// waiting for them: a connection that sends nothing, or idles between requests, is closed then.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, its body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connections have to finish their requests when a listener stops.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Descriptors kept for the bot itself (Telegram and WeChat clients, the database, logs).
pub const RESERVED_DESCRIPTORS: u64 = 256;
/// Connections allowed whatever the limit says.
const MIN_CONNECTIONS: u64 = 16;
/// Connections allowed at most, however high the limit.
const MAX_CONNECTIONS: u64 = 8192;

/// The process's soft open-file limit (`RLIMIT_NOFILE`), if it can be read.
pub fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives for the call.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
    read.then_some(limit.rlim_cur as u64)
}

/// How many connections the listeners may hold together under an open-file limit of `limit`.
pub fn connection_cap(limit: Option<u64>) -> usize {
    let cap = match limit {
        Some(limit) => limit.saturating_sub(RESERVED_DESCRIPTORS),
        None => 1024 - RESERVED_DESCRIPTORS,
    };
    usize::try_from(cap.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)).unwrap_or(1024)
}

/// The connections one process's listeners hold, counted together since they share its
/// descriptors.
pub struct Connections {
    cap: usize,
    permits: Arc<Semaphore>,
    open: Mutex<BTreeMap<u64, Arc<Peer>>>,
    next_id: AtomicU64,
    started: Instant,
    /// When the cap was last reported (seconds since `started`, plus one; 0: never).
    reported: AtomicU64,
}

/// One open connection: whether it is serving a request, and since when it has been idle.
struct Peer {
    in_flight: AtomicUsize,
    idle_since_ms: AtomicU64,
    close: CancellationToken,
}

impl Connections {
    /// At most `cap` connections at once.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            permits: Arc::new(Semaphore::new(cap)),
            open: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            started: Instant::now(),
            reported: AtomicU64::new(0),
        })
    }

    /// As many as the process's open-file limit allows, keeping [`RESERVED_DESCRIPTORS`].
    pub fn for_this_process() -> Arc<Self> {
        let limit = open_file_limit();
        let cap = connection_cap(limit);
        tracing::info!(
            cap,
            open_file_limit = limit,
            "HTTP listeners hold at most this many connections"
        );
        Self::new(cap)
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn open(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Peer>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the connection that has been idle the longest; false when every one is busy.
    fn close_longest_idle(&self) -> bool {
        let open = self.open();
        let victim = open
            .values()
            .filter(|p| p.in_flight.load(Ordering::Acquire) == 0 && !p.close.is_cancelled())
            .min_by_key(|p| p.idle_since_ms.load(Ordering::Acquire));
        match victim {
            Some(peer) => {
                peer.close.cancel();
                true
            }
            None => false,
        }
    }

    /// Says once a minute at most that the cap was reached.
    fn report_cap(&self) {
        let now = self.started.elapsed().as_secs() + 1;
        let last = self.reported.load(Ordering::Relaxed);
        if (last == 0 || now >= last + 60)
            && self
                .reported
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                cap = self.cap,
                "HTTP connections at their cap: closing the longest idle for each newcomer"
            );
        }
    }
}

/// Counts a request as in flight until dropped, and marks its connection idle from then.
struct Busy {
    peer: Arc<Peer>,
    connections: Arc<Connections>,
}

impl Busy {
    fn new(peer: &Arc<Peer>, connections: &Arc<Connections>) -> Self {
        peer.in_flight.fetch_add(1, Ordering::AcqRel);
        Self {
            peer: Arc::clone(peer),
            connections: Arc::clone(connections),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.peer
            .idle_since_ms
            .store(self.connections.now_ms(), Ordering::Release);
        self.peer.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `router` on `listener` in a task until `until` completes, within `connections`;
/// `what` names the listener in the log.
pub fn spawn_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    until: impl Future<Output = ()> + Send + 'static,
    what: &'static str,
    connections: Arc<Connections>,
) {
    tokio::spawn(serve(listener, router, until, what, connections));
}

async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    until: impl Future<Output = ()> + Send + 'static,
    what: &'static str,
    connections: Arc<Connections>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let stop = CancellationToken::new();
    let mut until = std::pin::pin!(until);
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = &mut until => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or the like: say so now and then, and let it pass.
                if last_accept_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(error = %e, server = what, "could not accept a connection");
                    last_accept_error = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match Arc::clone(&connections.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                connections.report_cap();
                connections.close_longest_idle();
                tokio::select! {
                    () = &mut until => break,
                    permit = Arc::clone(&connections.permits).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let id = connections.next_id.fetch_add(1, Ordering::Relaxed);
        let peer = Arc::new(Peer {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(connections.now_ms()),
            close: CancellationToken::new(),
        });
        connections.open().insert(id, Arc::clone(&peer));
        let service = {
            let router = router.clone();
            let peer = Arc::clone(&peer);
            let connections = Arc::clone(&connections);
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut router = router.clone();
                let busy = Busy::new(&peer, &connections);
                async move {
                    let call = router.call(request.map(axum::body::Body::new));
                    let response = match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
                        Ok(Ok(response)) => response,
                        Ok(Err(never)) => match never {},
                        Err(_) => axum::http::StatusCode::REQUEST_TIMEOUT.into_response(),
                    };
                    drop(busy);
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let stop = stop.clone();
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            let _permit = permit;
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = peer.close.cancelled() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(STOP_GRACE, conn).await;
                }
            }
            connections.open().remove(&id);
        });
    }
    stop.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_bot_itself() {
        assert_eq!(connection_cap(Some(1024)), 768);
        assert_eq!(connection_cap(Some(65_536)), 8192);
        assert_eq!(connection_cap(Some(100)), 16);
        assert_eq!(connection_cap(Some(u64::MAX)), 8192);
        assert_eq!(connection_cap(None), 768);
    }
}
