#!/usr/bin/env bash
# Builds the Go tools no registry ships prebuilt, pinned, into a cache that later runs reuse.
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd <- tools/k8s (wrapper module)
#   kwok                                                            <- sigs.k8s.io/kwok
#   helm                                                            <- helm.sh/helm/v3
#   actionlint (checks the GitHub Actions workflows we ship)          <- github.com/rhysd/actionlint
#   kube-score (checks the rendered service chart and stage policies)  <- github.com/zegl/kube-score
# Cache: ${STAGEFLOW_TOOLS_CACHE:-~/.cache/stageflow/tools}/<pin>/  (one folder per pin; reused
# when present). Go's own caches live in ~/.cache/go-build and ~/.cache/go-mod.
# Prints the bin folder holding every tool on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${STAGEFLOW_TOOLS_CACHE:-$HOME/.cache/stageflow/tools}
export GOMODCACHE=${GOMODCACHE:-$HOME/.cache/go-mod}
export GOCACHE=${GOCACHE:-$HOME/.cache/go-build}
export GOFLAGS=-mod=mod CGO_ENABLED=0
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.19.2
ACTIONLINT_VERSION=v1.7.12
KUBE_SCORE_VERSION=v1.20.0
bin="$cache/bin"
mkdir -p "$bin"

stamp() { printf '%s' "$1" > "$bin/.$2.pin"; }
fresh() { [ -x "$bin/$2" ] && [ "$(cat "$bin/.$2.pin" 2>/dev/null)" = "$1" ]; }
say() { printf '[build-tools] %s\n' "$*" >&2; }

K8S_VERSION=v1.34.4
# Stamp the real version into the binaries: Helm and clients read it from the API server's /version.
k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34 -X k8s.io/component-base/version.gitTreeState=clean"
k8s_pin=$( (cat "$here/tools/k8s/go.mod" "$here/tools/k8s/go.sum"; echo "$k8s_ldflags") | sha256sum | cut -c1-16)
need=()
for t in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd; do
  fresh "$k8s_pin" "$t" || need+=("$t")
done
if [ ${#need[@]} -gt 0 ]; then
  say "building ${need[*]} (Kubernetes $K8S_VERSION, etcd from its go.mod) — the first build takes 5-25 minutes on 2 cores"
  start=$SECONDS
  ( cd "$here/tools/k8s" && go build -trimpath -ldflags "$k8s_ldflags" -o "$bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3 ) &
  pid=$!
  n=0
  while kill -0 $pid 2>/dev/null; do
    sleep 2; n=$((n+1))
    if [ $((n % 15)) -eq 0 ] && kill -0 $pid 2>/dev/null; then say "still compiling the control plane ($((SECONDS-start))s)"; fi
  done
  wait $pid
  mv "$bin/server" "$bin/etcd"   # go names the binary of go.etcd.io/etcd/server/v3 "server"
  for t in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd; do stamp "$k8s_pin" "$t"; done
  say "control plane built in $((SECONDS-start))s"
fi

if ! fresh "$KWOK_VERSION" kwok; then
  say "building kwok $KWOK_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags '-s -w' "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  stamp "$KWOK_VERSION" kwok
fi
if ! fresh "$HELM_VERSION" helm; then
  say "building helm $HELM_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  stamp "$HELM_VERSION" helm
fi
if ! fresh "$ACTIONLINT_VERSION" actionlint; then
  say "building actionlint $ACTIONLINT_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
  stamp "$ACTIONLINT_VERSION" actionlint
fi
if ! fresh "$KUBE_SCORE_VERSION" kube-score; then
  say "building kube-score $KUBE_SCORE_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w -X main.version=$KUBE_SCORE_VERSION" "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION"
  stamp "$KUBE_SCORE_VERSION" kube-score
fi
echo "$bin"
