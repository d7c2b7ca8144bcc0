//! Running as `[server] user` after starting as root, with one capability
//! kept: CAP_NET_BIND_SERVICE, so port 53 can still be bound on interfaces
//! that appear later (docker0) and on listen entries added by a reload.
//!
//! Linux keeps credentials and capabilities per thread. glibc applies
//! setuid/setgid to every thread, but capabilities are set only on the
//! calling one, so the switch happens before the runtime starts its threads:
//! they are cloned from this one and inherit exactly its set. Binding needs
//! nothing beyond CAP_NET_BIND_SERVICE, so the sockets opened after the
//! switch are the same ones root would have opened, and the config has been
//! read already (a reload reads it again as the new user, so it must be
//! readable by that user, as the systemd unit's `User=` needs anyway).

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Uid, User, setgroups, setresgid, setresuid};

/// Why the switch to `[server] user` failed; splitdns does not start then.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "[server] user = {user:?}: no such user on this host; create it (useradd --system --no-create-home {user}) or remove the key"
    )]
    NoSuchUser { user: String },
    #[error("[server] user = {user:?}: cannot look the user up: {source}")]
    Lookup { user: String, source: nix::Error },
    #[error("[server] user = {user:?}: cannot switch to it ({step}): {problem}")]
    Switch {
        user: String,
        step: &'static str,
        problem: String,
    },
}

/// Who splitdns runs as after [`drop_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Not root: nothing to drop, and no way to switch.
    NotRoot,
    /// Now running as this uid and gid, with CAP_NET_BIND_SERVICE only.
    Switched { uid: u32, gid: u32 },
}

/// [`drop_to`], saying in the log what happened.
pub fn switch_to(user: &str) -> Result<(), PrivilegeError> {
    match drop_to(user)? {
        Outcome::Switched { uid, gid } => {
            tracing::info!(
                user,
                uid,
                gid,
                "running as {user}, keeping only CAP_NET_BIND_SERVICE"
            );
        }
        Outcome::NotRoot => {
            tracing::info!(user, "not started as root: [server] user does not apply");
        }
    }
    Ok(())
}

/// Whether this host has an account named `user` (a lookup that fails counts as no).
pub fn user_exists(user: &str) -> bool {
    matches!(User::from_name(user), Ok(Some(_)))
}

/// Switches to `user` (its uid and primary gid, no supplementary groups) if
/// running as root, keeping only CAP_NET_BIND_SERVICE. Call it while the
/// process has a single thread.
pub(crate) fn drop_to(user: &str) -> Result<Outcome, PrivilegeError> {
    if !Uid::effective().is_root() {
        return Ok(Outcome::NotRoot);
    }
    let account = User::from_name(user)
        .map_err(|source| PrivilegeError::Lookup {
            user: user.to_string(),
            source,
        })?
        .ok_or_else(|| PrivilegeError::NoSuchUser {
            user: user.to_string(),
        })?;
    let fail = |step: &'static str, problem: &dyn std::fmt::Display| PrivilegeError::Switch {
        user: user.to_string(),
        step,
        problem: problem.to_string(),
    };
    let keep: CapsHashSet = [Capability::CAP_NET_BIND_SERVICE].into_iter().collect();
    // While still root: no capability beyond the one kept can come back,
    // not even through an exec.
    let bounding =
        caps::read(None, CapSet::Bounding).map_err(|e| fail("capability bounding set", &e))?;
    for cap in bounding.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|e| fail("capability bounding set", &e))?;
    }
    nix::sys::prctl::set_keepcaps(true).map_err(|e| fail("keep capabilities", &e))?;
    setgroups(&[]).map_err(|e| fail("supplementary groups", &e))?;
    let (uid, gid) = (account.uid, account.gid);
    setresgid(gid, gid, gid).map_err(|e| fail("group id", &e))?;
    setresuid(uid, uid, uid).map_err(|e| fail("user id", &e))?;
    // The uid change emptied the effective set and kept the permitted one
    // (keepcaps): narrow it to the one capability and make that effective.
    caps::set(None, CapSet::Permitted, &keep).map_err(|e| fail("permitted capabilities", &e))?;
    caps::set(None, CapSet::Effective, &keep).map_err(|e| fail("effective capabilities", &e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| fail("inheritable capabilities", &e))?;
    nix::sys::prctl::set_keepcaps(false).map_err(|e| fail("keep capabilities", &e))?;
    if Uid::effective() != uid || Gid::effective() != gid {
        return Err(fail("verification", &"the ids did not change"));
    }
    Ok(Outcome::Switched {
        uid: uid.as_raw(),
        gid: gid.as_raw(),
    })
}
