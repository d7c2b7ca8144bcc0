//! OS signals -> what the server should do.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// Completes on the first SIGTERM or SIGINT.
pub async fn shutdown() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop splitdns with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

/// Calls `dump` on every SIGUSR1, dnsmasq's "log your statistics" signal.
/// The handler is installed before this returns, so a signal sent once the
/// server answers is never lost (nor fatal, which is SIGUSR1's default).
pub fn on_stats_request(dump: impl Fn() + Send + 'static) -> impl Future<Output = ()> + Send {
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
