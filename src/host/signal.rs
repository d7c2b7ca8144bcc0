//! OS signals -> what the server should do, as [`Control`] values on a channel.
//!
//! The server only ever sees the enum, so tests drive reloads and shutdowns
//! by sending values, and the same loop runs in both.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGHUP: re-read the config, hosts files and resolv.conf; keep the cache.
    Reload,
    /// SIGTERM or SIGINT: stop taking queries, finish the ones in flight, exit.
    Shutdown,
}

/// SIGHUP, SIGTERM and SIGINT as [`Control`]s. A closed channel means shutdown.
pub fn controls() -> mpsc::Receiver<Control> {
    let (tx, rx) = mpsc::channel(4);
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop splitdns with SIGKILL");
        // Hold the channel open: without handlers no control will ever come.
        tokio::spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await
        });
        return rx;
    };
    tokio::spawn(async move {
        loop {
            let control = tokio::select! {
                _ = hup.recv() => { tracing::info!("SIGHUP received"); Control::Reload }
                _ = term.recv() => { tracing::info!("SIGTERM received"); Control::Shutdown }
                _ = int.recv() => { tracing::info!("SIGINT received"); Control::Shutdown }
            };
            if tx.send(control).await.is_err() || control == Control::Shutdown {
                return;
            }
        }
    });
    rx
}

/// A channel that says [`Control::Shutdown`] once `shutdown` completes, for
/// callers that only ever stop the server.
pub(crate) fn shutdown_on(
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> mpsc::Receiver<Control> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => { let _ = tx.send(Control::Shutdown).await; }
            () = tx.closed() => {}
        }
    });
    rx
}

/// Calls `dump` on every SIGUSR1, dnsmasq's "log your statistics" signal.
/// The handler is installed before this returns, so a signal sent once the
/// server answers is never lost (nor fatal, which is SIGUSR1's default).
pub(crate) fn on_stats_request(
    dump: impl Fn() + Send + 'static,
) -> impl Future<Output = ()> + Send {
    let usr1 = signal(SignalKind::user_defined1());
    async move {
        let Ok(mut usr1) = usr1 else {
            tracing::warn!("cannot install a SIGUSR1 handler: no statistics dumps");
            return;
        };
        while usr1.recv().await.is_some() {
            dump();
        }
    }
}
