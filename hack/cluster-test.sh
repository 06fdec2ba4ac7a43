#!/usr/bin/env bash
# make test-cluster: the suite of test/cluster on real pods, from nothing to nothing.
# A fresh local cluster (hack/cluster.sh up), the images (make images), the operator deployed
# with config/local (make deploy), the suite (go test -tags cluster ./test/cluster, run inside
# the cluster's network namespace, where the API server, the Services and the pods are; its last
# step reinstalls the operator with the Helm chart, using bin/helm of `make helm`), and the
# cluster torn down again however any step ends. On failure it prints what the pods did first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
CLUSTER=hack/cluster.sh
TIMEOUT="${CLUSTER_TEST_TIMEOUT:-40m}"
# CLUSTER_TEST_RUN: a -test.run pattern to run only some steps, e.g. 'TestCluster/^(1|2|5|6|helm)_'
# (a step left out is skipped, and the later ones still run).
RUN="${CLUSTER_TEST_RUN:-.}"
t0=$SECONDS
stamp() { echo "==> [$(( (SECONDS - t0) / 60 ))m$(( (SECONDS - t0) % 60 ))s] $*"; }

diagnose() {
  echo "==> what the cluster looked like:"
  ${CLUSTER} kubectl get nodes,pods -A -o wide 2>&1 || true
  ${CLUSTER} kubectl get events -A --sort-by=.lastTimestamp 2>&1 | tail -40 || true
  for ns in wechat-operator-system wechat-sim default; do
    for p in $(${CLUSTER} kubectl -n "${ns}" get pods -o name 2>/dev/null); do
      echo "--- logs of ${ns}/${p} (last 40 lines)"
      ${CLUSTER} kubectl -n "${ns}" logs "${p}" --all-containers --tail 40 2>&1 || true
    done
  done
  echo "--- last lines of the node's logs (bin/cluster/logs)"
  tail -n 15 bin/cluster/logs/kubelet.log bin/cluster/logs/containerd.log 2>/dev/null || true
}

finish() {
  local rc=$?
  [ "${rc}" -ne 0 ] && diagnose
  stamp "tearing the cluster down"
  ${CLUSTER} down || rc=1
  stamp "done (exit ${rc})"
  exit "${rc}"
}
trap finish EXIT

stamp "make cluster"
make --no-print-directory cluster
stamp "make images"
make --no-print-directory images
stamp "make deploy"
make --no-print-directory deploy DEPLOY_TARGET=local
stamp "building the suite (go test -c -tags cluster ./test/cluster) and the Helm CLI (make helm)"
go test -c -tags cluster -o bin/cluster.test ./test/cluster
make --no-print-directory helm
stamp "running the suite inside the cluster's network namespace"
${CLUSTER} exec env CLUSTER_KUBECONFIG="${ROOT}/bin/cluster/kubeconfig" CLUSTER_ROOT="${ROOT}" HELM="${ROOT}/bin/helm" \
  bin/cluster.test -test.v -test.timeout "${TIMEOUT}" -test.run "${RUN}" 2>&1 | tee bin/cluster-test.log
