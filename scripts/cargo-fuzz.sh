#!/bin/sh
# Runs one cargo-fuzz target of crates/northstar-native/fuzz for a bounded time,
# seeded from the committed corpus (hard/fuzz/corpus/<target>/, read only; new
# inputs go to a scratch directory). Needs nightly and `cargo install cargo-fuzz`.
# `npm run hardening` runs every target this way (ts/hard/cargofuzz.ts).
#
#   scripts/cargo-fuzz.sh page_verify 60     # target, seconds (default 60)
#   targets: page_verify, node, record
set -eu
target=${1:?usage: scripts/cargo-fuzz.sh <page_verify|node|record> [seconds]}
seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$root/crates/northstar-native/fuzz"
cargo +nightly fuzz run "$target" "$scratch" "$root/hard/fuzz/corpus/$target" -- \
  -max_total_time="$seconds" -max_len=40000 -rss_limit_mb=2048 -print_final_stats=1
