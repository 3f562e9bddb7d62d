#!/usr/bin/env bash
# Builds Weir (installing the system packages its build needs when missing) and runs the
# server with its embedded defaults: data in ./weir-data, Postgres on 127.0.0.1:4566, HTTP on
# 127.0.0.1:8080. Extra arguments go to `weir serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir-target}"
missing=()
# RocksDB's bindings need libclang; rdkafka builds librdkafka with configure and make.
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
command -v make >/dev/null || missing+=(make)
command -v c++ >/dev/null || missing+=(g++)
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
exec cargo run --release --locked --bin weir -- serve "$@"
