//! Black-box tests for splitdns: a real server on 127.0.0.1:0, fake upstreams, real packets.
//!
//! Cache behaviour is always proven by the number of queries an upstream received, never by
//! timing. See `support/` for the fakes and the harness.

mod support;

mod cache;
mod cli;
// Real C-library resolvers (musl, glibc) asking splitdns in a namespace of their own.
mod clients;
mod control;
mod counters;
mod differential;
mod docker;
// The Docker recipes against a real dockerd in a namespace of its own.
mod dockerd;
mod docs;
mod encrypted;
mod forwarding;
mod fuzz;
mod hardening;
mod headers;
mod host;
mod import;
mod includes;
mod layers;
mod load;
mod local;
mod loops;
mod metrics;
mod package;
mod properties;
mod reliability;
mod reload;
mod rewrite;
mod routing;
mod rules;
mod srv;
mod threads;
mod wire;
