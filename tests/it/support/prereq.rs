//! What a test needs from the machine (root, `ip netns`, dnsmasq, Unbound, kdig, a C
//! compiler for musl, dockerd, ...), and what happens when it is missing.
//!
//! A missing prerequisite fails the test: a green run must mean the test ran. The one way
//! round that is to name what may be skipped, `SPLITDNS_SKIP=dnsmasq,unbound` (or `all`),
//! so a developer without Unbound can run the rest and still sees, test by test and in one
//! line when the run ends, what did not run. Under CI (`CI=true`) nothing may be skipped:
//! `.ci/run` installs every prerequisite.

use std::fmt::Display;
use std::sync::Mutex;

/// The variable that names the prerequisites a run may skip.
pub(crate) const OPT_OUT: &str = "SPLITDNS_SKIP";

/// The tests skipped so far, printed once when the test binary exits.
static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Decides what `test` does when it needs `need` (a short name: `root`, `netns`,
/// `dnsmasq`, ...) and `missing` says why it is not there (`None`: it is there).
///
/// Returns true when the test must return now because `SPLITDNS_SKIP` names `need`; the
/// skip is printed and counted. Panics when the prerequisite is missing and not opted out.
#[track_caller]
pub(crate) fn skip(test: &str, need: &str, missing: Option<impl Display>) -> bool {
    let Some(missing) = missing else {
        return false;
    };
    let under_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if under_ci {
        panic!("{test} needs {need}: {missing}. Install it (.ci/run does); CI=true skips nothing");
    }
    if !opted_out(need) {
        panic!(
            "{test} needs {need}: {missing}. Install it (.ci/run lists every prerequisite), \
             or skip it visibly with {OPT_OUT}={need}"
        );
    }
    eprintln!("SKIPPED {test}: {missing} ({OPT_OUT} names {need})");
    let mut skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if skipped.is_empty() {
        // SAFETY: `report` is an `extern "C" fn()` that touches only the static above.
        unsafe { libc::atexit(report) };
    }
    skipped.push(format!("{test} ({need})"));
    true
}

/// Whether `SPLITDNS_SKIP` names `need` (or says `all`).
fn opted_out(need: &str) -> bool {
    std::env::var(OPT_OUT).is_ok_and(|list| {
        list.split([',', ' '])
            .any(|item| item == need || item == "all")
    })
}

/// Runs when the test binary exits: the count and the names of what did not run, after
/// libtest's own summary (which counts a skipped test as passed).
extern "C" fn report() {
    let skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!(
        "\n{} test(s) SKIPPED by {OPT_OUT} and counted as passed above: {}",
        skipped.len(),
        skipped.join(", ")
    );
}

/// Why root-only tests cannot run, if they cannot.
pub(crate) fn not_root() -> Option<&'static str> {
    (!nix::unistd::Uid::effective().is_root()).then_some("it must run as root")
}

/// Why `program` cannot run, if it cannot: not found on `PATH` or in the sbin directories.
pub(crate) fn no_program(program: &str) -> Option<String> {
    find_program(program)
        .is_none()
        .then(|| format!("`{program}` is not installed"))
}

/// Where `program` is: on `PATH`, or in `/usr/sbin` and `/sbin` (Debian's places for
/// daemons, which are not on a non-root user's `PATH`).
pub(crate) fn find_program(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
