#!/usr/bin/env bash
# Builds the node components of a local Kubernetes cluster (kubelet, kube-controller-manager,
# kube-scheduler, kube-proxy) from Go modules, the way hack/setup-envtest.sh builds
# kube-apiserver: one throw-away module with a `tool` line per command and k8s.io/kubernetes'
# staging modules replaced by their published releases. The binaries land in
# bin/node/<version>/ and are reused on the next run (a version check, like setup-envtest.sh).
#
# Usage: hack/cluster-build.sh         builds what is missing, prints the binaries' directory
# kubelet is the long one: ~12 minutes on 2 busy cores the first time, the other three ~1.5
# minutes after it (they share Go's build cache with it and with kube-apiserver).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${NODE_ASSETS:-${ROOT}/bin/node/${K8S_VERSION}}"
WORK="${ROOT}/bin/node/build/node-${K8S_VERSION}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
COMMANDS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

log() { echo "cluster-build: $*" >&2; }
die() { echo "cluster-build: error: $*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH; install Go 1.26 first"
mkdir -p "${OUT}"

built() { [ -x "${OUT}/$1" ] && "${OUT}/$1" --version 2>/dev/null | grep -q "v${K8S_VERSION}\$"; }

missing=()
for c in "${COMMANDS[@]}"; do
  if built "$c"; then log "$c v${K8S_VERSION} already built (${OUT}/$c)"; else missing+=("$c"); fi
done
if [ "${#missing[@]}" -eq 0 ]; then echo "${OUT}"; exit 0; fi

write_module() {
  mkdir -p "${WORK}"
  local staging_version="v0.${K8S_VERSION#1.}" kgomod
  kgomod="$(cd "${WORK}" && [ -f go.mod ] || printf 'module local/probe\n\ngo 1.26\n' > go.mod
            go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  [ -f "${kgomod}" ] || die "could not download k8s.io/kubernetes@v${K8S_VERSION} from the module proxy"
  {
    echo "module local/build-kube-node"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    echo
    for c in "${COMMANDS[@]}"; do echo "tool k8s.io/kubernetes/cmd/$c"; done
    echo
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"${staging_version}"'#p' "${kgomod}"
  } > "${WORK}/go.mod.new"
  grep -q '^replace k8s.io/api ' "${WORK}/go.mod.new" || die "found no staging replaces in k8s.io/kubernetes' go.mod"
  # Keep a tidied module (and its go.sum) when nothing changed: tidy is the slow part after a download.
  if ! cmp -s "${WORK}/go.mod.new" "${WORK}/go.mod.in" 2>/dev/null; then
    cp "${WORK}/go.mod.new" "${WORK}/go.mod"
    rm -f "${WORK}/go.sum"
    log "resolving k8s.io/kubernetes v${K8S_VERSION}'s modules (go mod tidy)..."
    (cd "${WORK}" && go mod tidy) || die "go mod tidy failed; see the go output above"
    cp "${WORK}/go.mod.new" "${WORK}/go.mod.in"
  fi
}

# go build prints nothing while it compiles; say every minute that it is still going.
heartbeat() {
  local start=$SECONDS
  while sleep 60; do log "still building ${missing[*]} ($(( (SECONDS - start) / 60 )) min so far)"; done
}

write_module
log "building ${missing[*]} v${K8S_VERSION} from k8s.io/kubernetes (kubelet ~12 minutes on 2 cores the first time)..."
heartbeat & hb=$!
trap 'kill ${hb} 2>/dev/null || true' EXIT
pkgs=()
for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
tmp="${OUT}/.tmp"
rm -rf "${tmp}" && mkdir -p "${tmp}"
(cd "${WORK}" && go build -ldflags "-X k8s.io/component-base/version.gitVersion=v${K8S_VERSION}" \
    -o "${tmp}/" "${pkgs[@]}") || die "building ${missing[*]} failed; see the go output above"
for c in "${missing[@]}"; do mv "${tmp}/$c" "${OUT}/$c"; log "$c v${K8S_VERSION} built: ${OUT}/$c"; done
rmdir "${tmp}"
echo "${OUT}"
