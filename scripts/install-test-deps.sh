#!/usr/bin/env bash
# Installs what the tests need beyond LiteFS and Consul themselves
# (scripts/install-litefs.sh, scripts/install-consul.sh): nginx (Debian's package:
# the guide's load balancer, and `nginx -t` of the docker-compose example's config),
# python3 with venv (test/litefs/guide.test.ts makes its own Django venv from PyPI
# under .cache/), kubernetes-validate in a venv under .cache/
# (test/deploy-examples.test.ts), and ip, nsenter and iptables (the failover suite
# puts each node in its own network namespace and partitions it with iptables
# there). Skips what is there. On failure: exit non-zero with one line on stderr
# naming what is missing.
set -euo pipefail

log() { printf 'install-test-deps: %s\n' "$*" >&2; }
fail() { printf 'install-test-deps: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 127
  fi
}

# apt-get install, with `apt-get update` only when the install fails without it.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || fail "$1 not found and apt-get unavailable (install: $*)"
  log "installing $*"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2; then
    log "apt-get install failed; running apt-get update and retrying"
    as_root apt-get update >&2 || fail "$1 not found: apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2 || fail "$1 not found: apt-get install $* failed"
  fi
}

have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }
if have_nginx; then log "nginx present"; else apt_install nginx; have_nginx || fail "nginx not found after installing it"; fi

python_ok() { command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip, sqlite3, wsgiref' >/dev/null 2>&1; }
if python_ok; then log "python3 with venv present: $(command -v python3)"
else
  apt_install python3 python3-venv
  python_ok || fail "python3 with venv, ensurepip and sqlite3 not found after installing python3-venv"
fi

# kubernetes-validate (PyPI, pinned): checks the Kubernetes example's manifests against
# the Kubernetes API's JSON schemas, which the package carries (nothing is downloaded
# when it runs). In a venv under .cache/ (git-ignored), made once per version and Python;
# test/deploy-examples.test.ts uses it.
KV_VERSION="1.37.0"
REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
py="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
kv="$REPO_ROOT/.cache/kubernetes-validate-$KV_VERSION-py$py"
if [ -x "$kv/bin/kubernetes-validate" ] && [ -f "$kv/.ready" ]; then log "kubernetes-validate present: $kv"
else
  rm -rf "$kv"
  log "installing kubernetes-validate==$KV_VERSION into $kv"
  python3 -m venv "$kv" >&2 || fail "kubernetes-validate: python3 -m venv $kv failed"
  "$kv/bin/pip" install --disable-pip-version-check --no-input -q "kubernetes-validate==$KV_VERSION" >&2 \
    || fail "kubernetes-validate: pip install kubernetes-validate==$KV_VERSION failed"
  echo "kubernetes-validate==$KV_VERSION" > "$kv/.ready"
fi

# The failover suite's network namespaces (lib/testing/netns.ts).
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have ip || apt_install iproute2
have nsenter || apt_install util-linux
have iptables || apt_install iptables
for cmd in ip nsenter iptables; do have "$cmd" || fail "$cmd not found after installing it"; done
log "ip, nsenter and iptables present"
