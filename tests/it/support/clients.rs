//! Real resolver clients: `clients/lookup.c` built against musl (static, as Alpine
//! containers resolve; it also runs inside a container image with nothing else in it) and
//! against glibc, so the C libraries' own rules judge splitdns's answers.
//!
//! They read `/etc/resolv.conf` and ask port 53, so they run in a network namespace of the
//! test's own with a resolv.conf of its own ([`Netns::resolv_conf`]), never the host's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::netns::Netns;
use super::prereq;

/// The C library a client is built against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Libc {
    /// musl, statically linked: `musl-gcc -static` (Debian's `musl-tools`).
    Musl,
    /// glibc, the host's own, dynamically linked: `cc`.
    Glibc,
}

impl Libc {
    fn compiler(self) -> &'static str {
        match self {
            Self::Musl => "musl-gcc",
            Self::Glibc => "cc",
        }
    }
}

/// Whether `test` must return because the compiler for `libc` is missing and
/// `SPLITDNS_SKIP` names it (`musl` or `cc`); panics when it is missing otherwise.
pub(crate) fn skip(test: &str, libc: Libc) -> bool {
    let need = match libc {
        Libc::Musl => "musl",
        Libc::Glibc => "cc",
    };
    prereq::skip(test, need, prereq::no_program(libc.compiler()))
}

/// The lookup client built against `libc`, once per test run.
pub(crate) fn binary(libc: Libc) -> &'static Path {
    static MUSL: OnceLock<PathBuf> = OnceLock::new();
    static GLIBC: OnceLock<PathBuf> = OnceLock::new();
    let cell = match libc {
        Libc::Musl => &MUSL,
        Libc::Glibc => &GLIBC,
    };
    cell.get_or_init(|| build(libc))
}

fn build(libc: Libc) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/clients/lookup.c");
    let out =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lookup-{libc:?}").to_lowercase());
    let partial = out.with_extension(format!("{}.partial", std::process::id()));
    let mut cc = Command::new(libc.compiler());
    cc.args(["-O2", "-Wall", "-o"]).arg(&partial).arg(&source);
    match libc {
        Libc::Musl => cc.arg("-static"),
        Libc::Glibc => cc.arg("-lresolv"),
    };
    let status = cc
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}", libc.compiler()));
    assert!(
        status.success(),
        "{} could not build {}",
        libc.compiler(),
        source.display()
    );
    std::fs::rename(&partial, &out).unwrap();
    out
}

/// What a lookup printed and whether it succeeded.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) ok: bool,
    pub(crate) lines: Vec<String>,
}

/// `getaddrinfo(name, AF_UNSPEC)` by the `libc` client inside `ns`, which must have a
/// resolv.conf of its own.
pub(crate) fn getaddrinfo(ns: &Netns, libc: Libc, name: &str) -> Outcome {
    run(ns, libc, &["addr", name])
}

/// `res_query(name, IN, rtype)` by the `libc` client inside `ns`.
pub(crate) fn res_query(ns: &Netns, libc: Libc, name: &str, rtype: u16) -> Outcome {
    run(ns, libc, &["query", name, &rtype.to_string()])
}

/// `res_query(name, IN, rtype)` as [`res_query`], the answer's line with the AD bit the
/// library hands back (`rcode N answers N ad N`); with `dnssec_ok`, asking with EDNS0 and DO
/// (`RES_USE_DNSSEC`).
pub(crate) fn res_query_ad(
    ns: &Netns,
    libc: Libc,
    name: &str,
    rtype: u16,
    dnssec_ok: bool,
) -> Outcome {
    let rtype = rtype.to_string();
    let mut args = vec!["ad", name, &rtype];
    if dnssec_ok {
        args.push("do");
    }
    run(ns, libc, &args)
}

fn run(ns: &Netns, libc: Libc, args: &[&str]) -> Outcome {
    let out = ns
        .exec(binary(libc).to_str().unwrap(), args)
        .unwrap_or_else(|e| panic!("lookup {args:?} in {}: {e}", ns.name()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "lookup {args:?} ({libc:?}) in {}: {}{}",
        ns.name(),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    Outcome {
        ok: out.status.success(),
        lines: stdout.lines().map(str::to_owned).collect(),
    }
}
