#!/usr/bin/env bash
# Installs what the tests need when missing, then runs every test: unit tests of all crates and
# the integration binary (real server processes, tokio-postgres, psql, HTTP).
set -euo pipefail
cd "$(dirname "$0")/.."

# Builds are shared across checkouts and CI runs on this machine: a cold build is ~30 minutes.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir-target}"

missing=()
command -v psql >/dev/null || missing+=(postgresql-client)
# RocksDB's bindings are generated with bindgen, which needs libclang.
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
command -v c++ >/dev/null || missing+=(g++)
# rdkafka builds librdkafka from source with its configure script and make.
command -v make >/dev/null || missing+=(make)
# The TLS test makes its certificate with openssl.
command -v openssl >/dev/null || missing+=(openssl)
# The pgjdbc test compiles a small Java client against Debian's driver.
[ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
command -v javac >/dev/null || missing+=(default-jdk-headless)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# The Kafka tests start a real Kafka-protocol broker: tansu (~22 minutes to build on 2 cores,
# once; its own target dir, so it never disturbs Weir's build cache).
if ! command -v tansu >/dev/null && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tansu" ]; then
  echo "installing the tansu broker for the Kafka tests"
  CARGO_TARGET_DIR="$HOME/.cache/tansu-build" \
    cargo install tansu --version 0.6.0 --locked --features dynostore
fi

# The client tests drive Weir with Python's drivers and SQLAlchemy, one venv per SQLAlchemy line,
# remade when its requirements change.
venvs="${WEIR_CLIENT_VENVS:-$HOME/.cache/weir-venvs}"
export WEIR_CLIENT_VENVS="$venvs"
for requirements in tests/clients/requirements-*.txt; do
  name="$(basename "$requirements" .txt)"
  venv="$venvs/${name#requirements-}"
  if ! cmp -s "$requirements" "$venv/requirements.txt"; then
    echo "making the $venv venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
  fi
done

# `failpoints` compiles in the named crash points the crash tests arm.
cargo build --workspace --all-targets --locked --features failpoints
cargo test --workspace --locked --features failpoints -- --test-threads 2
