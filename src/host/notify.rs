//! Telling systemd how the service is doing (sd_notify(3)): READY=1 once the
//! listeners are bound, RELOADING=1 with MONOTONIC_USEC while a reload runs
//! (systemd 253 and later check the timestamp), STATUS= lines for
//! `systemctl status`, and WATCHDOG=1 pings when the unit sets WatchdogSec.
//! Outside systemd there is no NOTIFY_SOCKET and every call does nothing.

use sd_notify::NotifyState;

/// Listeners are bound and queries are answered.
pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload has started; [`ready`] says it is over, whatever its outcome.
pub(crate) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub(crate) fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

pub(crate) fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Pings systemd's watchdog at half its period, from a task on the runtime:
/// if the runtime stops making progress, the pings stop and systemd restarts
/// the service. Does nothing when the unit has no WatchdogSec.
pub(crate) fn spawn_watchdog() {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period / 2);
        loop {
            ticks.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::debug!(%error, "cannot notify systemd");
    }
}
