#!/usr/bin/env bash
# Installs what the real-LiteFS tests need (lib/testing/litefs-cluster.ts):
#   - the litefs binary, built the way a Go user gets it (`go install`), kept in
#     ${LITEFS_PROXY_CACHE:-/var/cache/litefs-proxy}/litefs-v0.5.14/ (outside the
#     clone, so a fresh clone or a second CI run on the same machine does not
#     build it again) and linked to <repo>/.cache/litefs/bin/litefs, where the
#     harness finds it;
#   - fusermount3 (package fuse3), which LiteFS runs to mount and which the
#     harness runs to clean up dead mounts.
# Skips what is already there. Progress goes to stderr; the LAST stdout line is
# the litefs binary's absolute path, so callers can do:
#   LITEFS_BIN="$(scripts/install-litefs.sh | tail -n1)"
# On failure: exit non-zero with one line on stderr naming what is missing.
set -euo pipefail

# The LiteFS version the harness and the recorded fixtures were checked against.
LITEFS_VERSION="v0.5.14"
LITEFS_PKG="github.com/superfly/litefs/cmd/litefs"

# Resolve the repo root from this script's own path so it works from any cwd.
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
BIN_DIR="$REPO_ROOT/.cache/litefs/bin"
LITEFS="$BIN_DIR/litefs"
CACHE="${LITEFS_PROXY_CACHE:-/var/cache/litefs-proxy}"
CACHE_DIR="$CACHE/litefs-$LITEFS_VERSION"
CACHED="$CACHE_DIR/litefs"

log() { printf 'install-litefs: %s\n' "$*" >&2; }
fail() { printf 'install-litefs: %s\n' "$*" >&2; exit 1; }

# Root needs no sudo (and containers often have none); everyone else does.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 127
  fi
}

# Decide first what is needed, and fail on a missing prerequisite before
# changing anything (no fuse3 install for a build that cannot happen).
runs() { [ -x "$1" ] && "$1" version >/dev/null 2>&1; }
NEED_LITEFS=1
if runs "$LITEFS" || runs "$CACHED"; then NEED_LITEFS=0; fi
if [ "$NEED_LITEFS" = 1 ]; then
  command -v go >/dev/null 2>&1 || fail "go not found (needed to install LiteFS $LITEFS_VERSION)"
  # LiteFS links SQLite through cgo (mattn/go-sqlite3): it needs a C compiler.
  if [ "${CGO_ENABLED:-}" = "0" ] || ! command -v "$(go env CC 2>/dev/null || echo cc)" >/dev/null 2>&1; then
    fail "C compiler not found or CGO_ENABLED=0 (cgo is needed to build LiteFS $LITEFS_VERSION)"
  fi
fi

# --- fusermount3 ------------------------------------------------------------
if command -v fusermount3 >/dev/null 2>&1; then
  log "fusermount3 present: $(command -v fusermount3)"
else
  command -v apt-get >/dev/null 2>&1 \
    || fail "fusermount3 not found and apt-get unavailable (install the fuse3 package)"
  [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1 \
    || fail "fusermount3 not found and neither root nor sudo available to install fuse3"
  log "installing fuse3 (fusermount3)"
  # Try without `apt-get update` first: a fresh package index is slow and often
  # unnecessary; update only when the install itself fails.
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y fuse3 >&2; then
    log "apt-get install failed; running apt-get update and retrying"
    as_root apt-get update >&2 || fail "fusermount3 not found: apt-get update failed (needed to install fuse3)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y fuse3 >&2 \
      || fail "fusermount3 not found: apt-get install fuse3 failed"
  fi
  command -v fusermount3 >/dev/null 2>&1 || fail "fusermount3 not found after installing fuse3"
fi

# --- litefs -----------------------------------------------------------------
# "Already there" means the file is executable and runs; a `go install` build
# reports "LiteFS development build" (no -ldflags), so the version string
# cannot be checked, only that the binary works.
if [ "$NEED_LITEFS" = 1 ]; then
  mkdir -p "$CACHE_DIR" 2>/dev/null && [ -w "$CACHE_DIR" ] \
    || fail "cannot write the cache directory $CACHE_DIR (set LITEFS_PROXY_CACHE to a writable directory)"
  # go's own output goes to a log file, so a failure is reported as one line
  # (with go's last line in it) instead of a page of build output.
  GO_LOG="$CACHE_DIR/go-install.log"
  log "go install $LITEFS_PKG@$LITEFS_VERSION into $CACHE_DIR (first build takes a minute or two; log: $GO_LOG)"
  if ! GOBIN="$CACHE_DIR" CGO_ENABLED=1 go install "$LITEFS_PKG@$LITEFS_VERSION" >"$GO_LOG" 2>&1; then
    fail "go install $LITEFS_PKG@$LITEFS_VERSION failed: $(grep -v '^[[:space:]]*$' "$GO_LOG" | tail -n1) (full log: $GO_LOG)"
  fi
  runs "$CACHED" || fail "litefs at $CACHED does not run after go install"
  log "installed $CACHED"
elif ! runs "$CACHED"; then
  # A clone that built LiteFS before the cache existed: keep its binary there too.
  if mkdir -p "$CACHE_DIR" 2>/dev/null && cp "$LITEFS" "$CACHED.tmp" 2>/dev/null && mv -f "$CACHED.tmp" "$CACHED"; then
    log "copied $LITEFS into the cache $CACHED"
  fi
fi

# The harness looks in <repo>/.cache/litefs/bin: link the cached build there.
if runs "$CACHED" && [ "$(readlink -f "$LITEFS" 2>/dev/null)" != "$(readlink -f "$CACHED")" ]; then
  mkdir -p "$BIN_DIR"
  ln -sfn "$CACHED" "$LITEFS"
  log "linked $LITEFS -> $CACHED"
fi
runs "$LITEFS" || fail "litefs not found at $LITEFS"
log "litefs present: $LITEFS ($("$LITEFS" version 2>/dev/null | head -n1))"

printf '%s\n' "$LITEFS"
