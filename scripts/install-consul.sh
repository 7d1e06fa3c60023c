#!/usr/bin/env bash
# Installs Consul for the real-LiteFS failover suite (lib/testing/consul-agent.ts):
# a Consul agent in -dev mode serves the LiteFS nodes' lease.
#
# Consul v1.14.11 (MPL-2.0) is the last line whose build needs none of the
# modules this project may not use. It is built from the Go module proxy:
# `go install` refuses it (its go.mod has `replace` directives), so the module
# is downloaded, copied, its `replace github.com/hashicorp/consul/...` lines
# deleted (the published api/sdk/proto-public modules are used instead), and
# built with `go build` (~7 minutes on 2 cores).
#
# The binary is cached OUTSIDE the clone, in
#   ${LITEFS_PROXY_CACHE:-/var/cache/litefs-proxy}/consul-v1.14.11/consul
# so a second clone (or CI run) on the same machine reuses it. Nothing of
# Consul's source is kept: the copy is built in a temporary directory and removed.
#
# Skips what is already there. Progress goes to stderr; the LAST stdout line is
# the consul binary's absolute path, so callers can do:
#   CONSUL_BIN="$(scripts/install-consul.sh | tail -n1)"
# On failure: exit non-zero with one line on stderr naming what is missing.
set -euo pipefail

CONSUL_VERSION="v1.14.11"
CONSUL_MODULE="github.com/hashicorp/consul"

CACHE="${LITEFS_PROXY_CACHE:-/var/cache/litefs-proxy}"
CACHE_DIR="$CACHE/consul-$CONSUL_VERSION"
CONSUL="$CACHE_DIR/consul"

log() { printf 'install-consul: %s\n' "$*" >&2; }
fail() { printf 'install-consul: %s\n' "$*" >&2; exit 1; }

works() { [ -x "$CONSUL" ] && "$CONSUL" version >/dev/null 2>&1; }

if works; then
  log "consul present: $CONSUL ($("$CONSUL" version 2>/dev/null | head -n1))"
  printf '%s\n' "$CONSUL"
  exit 0
fi

command -v go >/dev/null 2>&1 || fail "go not found (needed to build Consul $CONSUL_VERSION from the Go module proxy)"
mkdir -p "$CACHE_DIR" 2>/dev/null && [ -w "$CACHE_DIR" ] \
  || fail "cannot write the cache directory $CACHE_DIR (set LITEFS_PROXY_CACHE to a writable directory)"

# Two installs at once (two clones, two CI runs): the second waits for the
# first and then finds the binary.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_DIR/.lock"
  flock 9
  if works; then log "consul built meanwhile: $CONSUL"; printf '%s\n' "$CONSUL"; exit 0; fi
fi

WORK="$(mktemp -d "$CACHE_DIR/build.XXXXXX")"
# The module cache's files are read-only, and so is the copy: make it writable to remove it.
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
LOG="$CACHE_DIR/build.log"
: >"$LOG"
last_line() { grep -v '^[[:space:]]*$' "$LOG" | tail -n1; }

log "go mod download $CONSUL_MODULE@$CONSUL_VERSION (log: $LOG)"
# Outside any module, so no go.mod of the caller's interferes.
if ! (cd "$WORK" && GOFLAGS=-mod=mod go mod download -json "$CONSUL_MODULE@$CONSUL_VERSION") >"$WORK/download.json" 2>>"$LOG"; then
  cat "$WORK/download.json" >>"$LOG"
  fail "go mod download $CONSUL_MODULE@$CONSUL_VERSION failed: $(last_line) (full log: $LOG)"
fi
SRC_DIR="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' "$WORK/download.json")"
[ -n "$SRC_DIR" ] && [ -f "$SRC_DIR/go.mod" ] \
  || fail "go mod download $CONSUL_MODULE@$CONSUL_VERSION printed no module directory (see $WORK/download.json)"

cp -R "$SRC_DIR/." "$WORK/src"
chmod -R u+w "$WORK/src"
sed -i '/^[[:space:]]*replace[[:space:]]\{1,\}github\.com\/hashicorp\/consul\//d' "$WORK/src/go.mod"
if grep -q 'github\.com/hashicorp/consul/[a-z-]* *=> *\./' "$WORK/src/go.mod"; then
  fail "Consul $CONSUL_VERSION's go.mod still replaces a hashicorp/consul module with a local directory after the edit"
fi

log "go build Consul $CONSUL_VERSION (about 7 minutes on 2 cores; log: $LOG)"
started=$(date +%s)
# -mod=mod: the published api/sdk/proto-public modules are not in Consul's go.sum
# (it used the local copies); the go command adds and verifies their checksums.
# CGO off: Consul needs no C, and a static binary runs in any container.
if ! (cd "$WORK/src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$WORK/consul" .) >>"$LOG" 2>&1; then
  fail "go build of Consul $CONSUL_VERSION failed: $(last_line) (full log: $LOG)"
fi
"$WORK/consul" version >/dev/null 2>&1 || fail "the Consul $CONSUL_VERSION just built does not run (see $LOG)"
mv -f "$WORK/consul" "$CONSUL"
works || fail "consul not found at $CONSUL after the build"
log "built $CONSUL in $(( $(date +%s) - started )) s: $("$CONSUL" version | head -n1)"

printf '%s\n' "$CONSUL"
