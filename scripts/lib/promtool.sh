# shellcheck shell=bash
# promtool, Prometheus's own checker for metric expositions, rule files and rule unit
# tests, built from the published Go module (github.com/prometheus/prometheus/cmd/promtool)
# and cached by version under the user's cache directory, as scripts/lib/kube.sh does for
# the reference control plane. Go is used for this test infrastructure only.
#
#   nk_ensure_promtool   builds on first use (minutes, once), then reuses the cache;
#                        exports NK_PROMTOOL (the path of the binary).
# Needs nk_find_go (scripts/lib/kube.sh) and nk_say (scripts/lib/env.sh).

NK_PROMTOOL_VERSION="${NK_PROMTOOL_VERSION:-v0.316.0}"   # github.com/prometheus/prometheus module (Prometheus 3.x)
NK_PROMTOOL_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/nodekeeper"

nk_build_promtool() { # builds promtool into $1
  local dest="$1" go src
  go="$(nk_find_go)"
  src="$NK_PROMTOOL_CACHE/src/promtool-$NK_PROMTOOL_VERSION"
  rm -rf "$src" && mkdir -p "$src"
  (
    cd "$src"
    "$go" mod init nodekeeper.test/promtool >/dev/null 2>&1
    cat > tools.go <<'GO'
//go:build tools

package promtool

import _ "github.com/prometheus/prometheus/cmd/promtool"
GO
    "$go" get "github.com/prometheus/prometheus@$NK_PROMTOOL_VERSION" >&2
    GOFLAGS=-mod=mod "$go" mod tidy >&2
    # Module v0.X.Y is Prometheus 3.X.Y: say so in `promtool --version`.
    local minor="${NK_PROMTOOL_VERSION#v0.}"
    local release="3.$((${minor%%.*} - 300)).${minor#*.}"
    CGO_ENABLED=0 "$go" build -trimpath -ldflags="-s -w -X github.com/prometheus/common/version.Version=${release}" \
      -o "$dest/promtool" github.com/prometheus/prometheus/cmd/promtool >&2
  )
}

nk_ensure_promtool() {
  local dir="$NK_PROMTOOL_CACHE/promtool-$NK_PROMTOOL_VERSION"
  if [ ! -x "$dir/promtool" ]; then
    nk_say "building promtool from github.com/prometheus/prometheus $NK_PROMTOOL_VERSION (once; takes a few minutes)"
    local tmp="$dir.partial"
    rm -rf "$tmp" && mkdir -p "$tmp"
    local started=$SECONDS
    nk_build_promtool "$tmp"
    rm -rf "$dir" && mv "$tmp" "$dir"
    nk_say "promtool built in $((SECONDS - started)) s: $dir/promtool"
  fi
  export NK_PROMTOOL="$dir/promtool"
}

# The demo uses promtool only when scripts/test has built it already: it never spends
# minutes building a checker it merely shows off. Exports NK_PROMTOOL when cached.
nk_cached_promtool() {
  local bin="$NK_PROMTOOL_CACHE/promtool-$NK_PROMTOOL_VERSION/promtool"
  if [ -x "$bin" ]; then export NK_PROMTOOL="$bin"; fi
  return 0
}
