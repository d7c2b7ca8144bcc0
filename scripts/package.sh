#!/usr/bin/env bash
# Builds the Debian package: one release build, the man pages and completions
# written by that binary, then cargo-deb around them.
#   scripts/package.sh     -> target/debian/splitdns_VERSION-1_ARCH.deb
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked

cargo build --release
target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
rm -rf target/assets
"$target_dir/release/splitdns" generate target/assets >/dev/null
# debug = 1 in the release profile is for profiling; the package ships the
# binary stripped.
cargo deb --no-build --strip "$@"
