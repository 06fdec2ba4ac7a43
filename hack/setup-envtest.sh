#!/usr/bin/env bash
# Builds a local Kubernetes control plane (etcd + kube-apiserver) from Go modules, because this
# project must work without Docker and without downloads from outside the package registries.
# The binaries land in bin/k8s/<version>/ and are reused on the next run.
#
# Usage: hack/setup-envtest.sh            builds (if needed) and prints the assets directory
#        K8S_VERSION=1.37.2 ETCD_VERSION=3.6.16 hack/setup-envtest.sh
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ASSETS="${ROOT}/bin/k8s/${K8S_VERSION}"
WORK="${ROOT}/bin/k8s/build"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

log() { echo "setup-envtest: $*" >&2; }
die() { echo "setup-envtest: error: $*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH; install Go 1.26 first"
mkdir -p "${ASSETS}" "${WORK}"

build_etcd() {
  local out="${ASSETS}/etcd"
  if [ -x "${out}" ] && "${out}" --version 2>/dev/null | grep -q "etcd Version: ${ETCD_VERSION}"; then
    log "etcd ${ETCD_VERSION} already built (${out})"
    return
  fi
  log "building etcd ${ETCD_VERSION} from go.etcd.io/etcd/server/v3 (about a minute)..."
  local dir="${WORK}/etcd-${ETCD_VERSION}"
  rm -rf "${dir}" && mkdir -p "${dir}"
  cat > "${dir}/go.mod" <<MOD
module local/build-etcd

go 1.26

require go.etcd.io/etcd/server/v3 v${ETCD_VERSION}

tool go.etcd.io/etcd/server/v3
MOD
  (cd "${dir}" && go mod tidy && go build -o "${out}.tmp" go.etcd.io/etcd/server/v3) \
    || die "building etcd failed; see the go output above"
  mv "${out}.tmp" "${out}"
  log "etcd ${ETCD_VERSION} built: ${out}"
}

build_apiserver() {
  local out="${ASSETS}/kube-apiserver"
  if [ -x "${out}" ] && "${out}" --version 2>/dev/null | grep -q "v${K8S_VERSION}\$"; then
    log "kube-apiserver v${K8S_VERSION} already built (${out})"
    return
  fi
  log "building kube-apiserver v${K8S_VERSION} from k8s.io/kubernetes (about 5 minutes on 2 cores)..."
  local dir="${WORK}/kube-apiserver-${K8S_VERSION}"
  rm -rf "${dir}" && mkdir -p "${dir}"
  # k8s.io/kubernetes replaces its staging modules with ./staging/...; a module that requires it
  # must point each of those at the published v0.x.y release instead.
  local staging_version="v0.${K8S_VERSION#1.}"
  local kgomod
  kgomod="$(cd "${dir}" && go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  [ -f "${kgomod}" ] || die "could not download k8s.io/kubernetes@v${K8S_VERSION} from the module proxy"
  {
    echo "module local/build-kube-apiserver"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    echo
    echo "tool k8s.io/kubernetes/cmd/kube-apiserver"
    echo
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"${staging_version}"'#p' "${kgomod}"
  } > "${dir}/go.mod"
  grep -q '^replace k8s.io/api ' "${dir}/go.mod" || die "found no staging replaces in k8s.io/kubernetes' go.mod"
  (cd "${dir}" && go mod tidy && go build \
      -ldflags "-X k8s.io/component-base/version.gitVersion=v${K8S_VERSION}" \
      -o "${out}.tmp" k8s.io/kubernetes/cmd/kube-apiserver) \
    || die "building kube-apiserver failed; see the go output above"
  mv "${out}.tmp" "${out}"
  log "kube-apiserver v${K8S_VERSION} built: ${out}"
}

link_kubectl() {
  local out="${ASSETS}/kubectl"
  [ -e "${out}" ] && return
  local found
  found="$(command -v kubectl || true)"
  [ -n "${found}" ] || die "kubectl is not on PATH; install it (it is used by the demo and by envtest)"
  ln -sf "${found}" "${out}"
}

build_etcd
build_apiserver
link_kubectl
echo "${ASSETS}"
