#!/usr/bin/env bash
# Starts and stops the Docker daemon on a machine without systemd (CI, containers,
# this project's VMs), where Debian's docker.io installs dockerd but nothing runs it.
#
#   scripts/dockerd.sh start    start dockerd unless the default socket already answers;
#                               prints "started" or "running" (someone else's: left alone)
#   scripts/dockerd.sh stop     stop the dockerd this script started (its pid file), waiting
#                               until it and its containerd are gone; nothing else is touched
#   scripts/dockerd.sh status   "running", "stopped"
#
# Where things are, so that a second run reuses them and nothing is left elsewhere:
#   socket   /var/run/docker.sock  (the default: `docker compose …` finds it with no DOCKER_HOST)
#   data     /var/lib/docker       (the default: images and build cache survive for the next run)
#   pid      /var/run/docker.pid   (tmpfs: gone after a reboot)
#   log      ${LITEFS_PROXY_CACHE:-/var/cache/litefs-proxy}/dockerd.log (overwritten at each start)
# On failure: exit non-zero with one line on stderr.
set -euo pipefail

CACHE="${LITEFS_PROXY_CACHE:-/var/cache/litefs-proxy}"
PIDFILE=/var/run/docker.pid
LOG="$CACHE/dockerd.log"
# Bounds: dockerd answers within a few seconds; stopping waits for running containers
# to get their SIGTERM and exit (10 s each by default, in parallel).
START_WAIT=60
STOP_WAIT=60

fail() { printf 'dockerd.sh: %s\n' "$*" >&2; exit 1; }
answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
ours() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case "${1:-}" in
  start)
    if answers; then echo running; exit 0; fi
    command -v dockerd >/dev/null 2>&1 || fail "dockerd not found (scripts/install-docker-host.sh installs Debian's docker.io)"
    command -v docker >/dev/null 2>&1 || fail "docker (the CLI) not found"
    mkdir -p "$CACHE"
    # Its own session (setsid), so it outlives this shell and the caller's Ctrl-C;
    # stdin closed, output to the log.
    setsid dockerd --pidfile "$PIDFILE" </dev/null >"$LOG" 2>&1 &
    for _ in $(seq 1 $((START_WAIT * 4))); do
      if answers; then echo started; exit 0; fi
      if ! kill -0 $! 2>/dev/null; then fail "dockerd exited at start: $(tail -n 1 "$LOG")"; fi
      sleep 0.25
    done
    fail "dockerd did not answer within ${START_WAIT} s (log: $LOG)"
    ;;
  stop)
    if ! ours; then echo "not started here (no live $PIDFILE): nothing to stop"; exit 0; fi
    pid="$(cat "$PIDFILE")"
    kill -TERM "$pid"
    for _ in $(seq 1 $((STOP_WAIT * 4))); do
      if ! kill -0 "$pid" 2>/dev/null; then echo stopped; exit 0; fi
      sleep 0.25
    done
    fail "dockerd (pid $pid) still running ${STOP_WAIT} s after SIGTERM (log: $LOG)"
    ;;
  status)
    if answers; then echo running; else echo stopped; fi
    ;;
  *)
    echo "usage: scripts/dockerd.sh start|stop|status" >&2
    exit 2
    ;;
esac
