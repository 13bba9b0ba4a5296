# shellcheck shell=bash
# Reference Kubernetes control plane for tests (like controller-runtime's envtest):
# kube-apiserver, kube-controller-manager (for the PodDisruptionBudget
# controller), kubectl, the kubelet (one end-to-end test runs it in place of the
# stand-in) and etcd built from the published Go modules, cached by
# version under the user's cache directory. Go is used for this test
# infrastructure only; product code is TypeScript.
#
#   nk_ensure_kube       builds on first use (minutes, once), then reuses the cache;
#                        exports NK_KUBE_BIN (the directory holding the binaries).

NK_KUBE_VERSION="${NK_KUBE_VERSION:-v1.36.3}"   # k8s.io/kubernetes release
NK_ETCD_VERSION="${NK_ETCD_VERSION:-v3.6.16}"   # go.etcd.io/etcd/server/v3 release
NK_KUBE_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/nodekeeper/kube"

nk_find_go() {
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  [ -x /usr/local/go/bin/go ] && { echo /usr/local/go/bin/go; return; }
  echo "Go is needed once to build the reference kube-apiserver and etcd (install Go >= 1.26)" >&2
  return 1
}

nk_build_kube() { # builds kube-apiserver, kube-controller-manager, kubectl and kubelet from k8s.io/kubernetes into $1
  local dest="$1" go src minor
  go="$(nk_find_go)"
  src="$NK_KUBE_CACHE/src/kubernetes-$NK_KUBE_VERSION"
  rm -rf "$src" && mkdir -p "$src"
  minor="v0.${NK_KUBE_VERSION#v1.}"   # staging modules: v1.36.3 -> v0.36.3
  (
    cd "$src"
    "$go" mod init nodekeeper.test/kube >/dev/null 2>&1
    # k8s.io/kubernetes replaces its staging modules with ./staging paths that do not
    # exist in the published module; point each at the matching v0.x release instead.
    local gomod
    gomod="$("$go" mod download -json "k8s.io/kubernetes@$NK_KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    "$go" mod edit -require="k8s.io/kubernetes@$NK_KUBE_VERSION"
    "$go" mod edit -json "$gomod" | node -e '
      const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
      for (const r of m.Replace ?? []) if (r.New.Path.startsWith("./staging/")) console.log(r.Old.Path);
    ' | while read -r mod; do
      "$go" mod edit -replace="$mod=$mod@$minor"
    done
    cat > tools.go <<'GO'
//go:build tools

package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
    GOFLAGS=-mod=mod "$go" mod tidy >&2
    CGO_ENABLED=0 "$go" build -trimpath -ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$NK_KUBE_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$NK_KUBE_VERSION" \
      -o "$dest/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet >&2
  )
}

nk_build_etcd() { # builds etcd from go.etcd.io/etcd/server/v3 (a tiny main calling etcdmain) into $1
  local dest="$1" go src
  go="$(nk_find_go)"
  src="$NK_KUBE_CACHE/src/etcd-$NK_ETCD_VERSION"
  rm -rf "$src" && mkdir -p "$src"
  (
    cd "$src"
    "$go" mod init nodekeeper.test/etcd >/dev/null 2>&1
    cat > main.go <<'GO'
// Command etcd runs the published etcd server (go.etcd.io/etcd/server/v3/etcdmain).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    "$go" get "go.etcd.io/etcd/server/v3@$NK_ETCD_VERSION" >&2
    GOFLAGS=-mod=mod "$go" mod tidy >&2
    CGO_ENABLED=0 "$go" build -trimpath -ldflags="-s -w" -o "$dest/etcd" . >&2
  )
}

nk_ensure_kube() {
  local dir="$NK_KUBE_CACHE/kubernetes-$NK_KUBE_VERSION-etcd-$NK_ETCD_VERSION"
  if [ ! -x "$dir/kube-apiserver" ] || [ ! -x "$dir/kubectl" ] || [ ! -x "$dir/kube-controller-manager" ] || [ ! -x "$dir/kubelet" ] || [ ! -x "$dir/etcd" ]; then
    nk_say "building the reference kube-apiserver $NK_KUBE_VERSION, kube-controller-manager, kubectl, kubelet and etcd $NK_ETCD_VERSION from Go modules (once; takes several minutes)"
    local tmp="$dir.partial"
    rm -rf "$tmp" && mkdir -p "$tmp"
    local started=$SECONDS
    nk_build_etcd "$tmp"
    nk_build_kube "$tmp"
    rm -rf "$dir" && mv "$tmp" "$dir"
    nk_say "reference control plane built in $((SECONDS - started)) s: $dir"
  fi
  export NK_KUBE_BIN="$dir"
}
