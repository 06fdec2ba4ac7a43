#!/usr/bin/env bash
# A one-node Kubernetes cluster of real parts on this machine, without Docker, in the spirit of
# Kubernetes' hack/local-up-cluster.sh: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd, kubelet and kube-proxy run as processes inside one network
# namespace (wechat-cluster), so that nothing they do leaves it. docs/cluster.md explains it.
#
#   hack/cluster.sh up          build what is missing, clean up leftovers, start, wait for Ready
#   hack/cluster.sh down        stop everything `up` started and remove its state
#   hack/cluster.sh kubectl ... kubectl against the cluster (run inside the namespace)
#   hack/cluster.sh exec CMD... run CMD inside the cluster's network namespace
#   hack/cluster.sh import TAR  import an image tarball into the node's containerd
#   hack/cluster.sh status      is it up?
#
# CLUSTER_PROVIDER=kind uses kind (Docker) instead, with hack/cluster-kind.yaml: same ranges,
# same kubeconfig path, images loaded with `kind load image-archive`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CP_ASSETS="${ENVTEST_ASSETS:-${ROOT}/bin/k8s/${K8S_VERSION}}"   # etcd, kube-apiserver
NODE_ASSETS="${NODE_ASSETS:-${ROOT}/bin/node/${K8S_VERSION}}"  # kubelet and the rest
STATE="${ROOT}/bin/cluster"        # certificates, configs, logs, pid files, kubeconfig
RUN=/run/wechat-cluster            # sockets (short paths)
VAR=/var/lib/wechat-cluster        # etcd data, containerd and kubelet roots (overlayfs-capable)
NETNS=wechat-cluster
NETNS_FILE="/run/netns/${NETNS}"
NODE_NAME=wechat-node
# Documentation and benchmarking ranges only (RFC 5737, RFC 2544), never a private range:
NODE_IP=192.0.2.1          # the node (veth end 1); the API server advertises it
GATEWAY_IP=192.0.2.254     # veth end 2, the default route kubelet needs to pick a node IP
SERVICE_CIDR=198.18.0.0/24 # ClusterIPs; the kubernetes Service is 198.18.0.1
POD_CIDR=198.19.0.0/24     # pods, on the bridge wc-br0
PAUSE_IMAGE=localhost/wechat-cluster/pause:1
CONTAINERD_SOCK="${RUN}/containerd.sock"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

log() { echo "cluster: $*" >&2; }
die() { echo "cluster: error: $*" >&2; exit 1; }
in_ns() { nsenter --net="${NETNS_FILE}" "$@"; }
kc() { in_ns "${CP_ASSETS}/kubectl" --kubeconfig "${STATE}/kubeconfig" "$@"; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root: it creates a network namespace, mounts and cgroups"; }

# ---------------------------------------------------------------------------------------------
# Packages and binaries

install_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v nsenter >/dev/null || missing+=(util-linux)
  command -v openssl >/dev/null || missing+=(openssl)
  [ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
  [ "${#missing[@]}" -eq 0 ] && return
  log "installing ${missing[*]} with apt-get..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
  # Debian's package would start containerd under systemd; there is none here, and ours is our own.
}

build_binaries() {
  if [ ! -x "${CP_ASSETS}/kube-apiserver" ] || [ ! -x "${CP_ASSETS}/etcd" ]; then
    K8S_VERSION="${K8S_VERSION}" ETCD_VERSION="${ETCD_VERSION}" "${ROOT}/hack/setup-envtest.sh" >/dev/null
  fi
  K8S_VERSION="${K8S_VERSION}" NODE_ASSETS="${NODE_ASSETS}" "${ROOT}/hack/cluster-build.sh" >/dev/null
  log "building the pause image"
  mkdir -p "${STATE}/images"
  (cd "${ROOT}" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "${STATE}/images/pause" ./hack/cluster-images/pause \
    && go run ./hack/cluster-images --out "${STATE}/images" --base none \
         "pause=${PAUSE_IMAGE}=${STATE}/images/pause") >/dev/null
}

# ---------------------------------------------------------------------------------------------
# Cleanup: everything here was started or created by `up` (pid files, the namespace's processes,
# the pods' cgroups, mounts under our own directories), also after a killed run.

kill_pid() { # pid: TERM, then KILL after 10 s
  local pid=$1 i
  kill "${pid}" 2>/dev/null || return 0
  for i in $(seq 50); do kill -0 "${pid}" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "${pid}" 2>/dev/null || true
}

pod_cgroup_pids() { # processes of the pods kubelet started (cgroupfs driver: /kubepods)
  local d
  for d in /sys/fs/cgroup/pids/kubepods /sys/fs/cgroup/memory/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "${d}" ] && find "${d}" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -u
}

down() {
  need_root
  local name pid ours=""
  # Every process `up` started runs in our namespace, so that is where we look (pid files
  # alone could name a reused pid after a crash).
  [ -e "${NETNS_FILE}" ] && ours=" $(ip netns pids "${NETNS}" 2>/dev/null | tr '\n' ' ')"
  # kubelet first, so that it restarts nothing; then the pods; then the rest.
  for name in kubelet kube-proxy kube-scheduler kube-controller-manager; do
    pid="$(cat "${STATE}/pids/${name}" 2>/dev/null || true)"
    if [ -n "${pid}" ] && [[ "${ours}" == *" ${pid} "* ]]; then kill_pid "${pid}"; fi
  done
  for pid in $(pod_cgroup_pids); do kill -9 "${pid}" 2>/dev/null || true; done
  # containerd, its shims, the API server and etcd: what is left in the namespace.
  if [ -e "${NETNS_FILE}" ]; then
    for pid in $(ip netns pids "${NETNS}" 2>/dev/null); do kill_pid "${pid}"; done
  fi
  rm -rf "${STATE}/pids"
  # Mounts under our directories (Secret volumes, rootfs, shm), deepest first; pod namespaces.
  local m
  for m in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^(${VAR}|${RUN})/" | sort -r); do
    umount -l "${m}" 2>/dev/null || true
  done
  for m in /run/netns/cni-*; do
    [ -e "${m}" ] || continue
    umount -l "${m}" 2>/dev/null || true
    rm -f "${m}"
  done
  # The pods' cgroups (empty now), deepest first, in every hierarchy.
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "${d}" ] && find "${d}" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  [ -e "${NETNS_FILE}" ] && ip netns del "${NETNS}"
  rm -rf "${VAR}" "${RUN}" "${STATE}/certs" "${STATE}/config" "${STATE}/kubeconfig" "${STATE}/kubeconfigs"
  log "down: nothing of the cluster is left running"
}

# ---------------------------------------------------------------------------------------------
# Network namespace: a veth pair with both ends inside, so there is a default route.

setup_netns() {
  ip netns add "${NETNS}"
  ip -n "${NETNS}" link set lo up
  ip -n "${NETNS}" link add wc0 type veth peer name wc1
  ip -n "${NETNS}" addr add "${NODE_IP}/24" dev wc0
  ip -n "${NETNS}" addr add "${GATEWAY_IP}/24" dev wc1
  ip -n "${NETNS}" link set wc0 up
  ip -n "${NETNS}" link set wc1 up
  ip -n "${NETNS}" route add default via "${GATEWAY_IP}" dev wc0
  in_ns sysctl -qw net.ipv4.ip_forward=1
  in_ns sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# Certificates (openssl): one CA for clients and the API server, one key pair for ServiceAccounts.

cert() { # name CN [O]
  local dir="${STATE}/certs" name=$1 cn=$2 org=${3:-}
  local subj="/CN=${cn}"
  [ -n "${org}" ] && subj="/O=${org}${subj}"
  openssl req -new -newkey rsa:2048 -nodes -keyout "${dir}/${name}.key" -subj "${subj}" \
    -out "${dir}/${name}.csr" 2>/dev/null
  openssl x509 -req -in "${dir}/${name}.csr" -CA "${dir}/ca.crt" -CAkey "${dir}/ca.key" \
    -CAcreateserial -days 30 -out "${dir}/${name}.crt" -extfile "${dir}/${name}.ext" 2>/dev/null
}

make_certs() {
  local dir="${STATE}/certs"
  mkdir -p "${dir}"
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "${dir}/ca.key" -subj "/CN=wechat-cluster-ca" \
    -days 30 -out "${dir}/ca.crt" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:%s,IP:198.18.0.1,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' \
    "${NODE_IP}" > "${dir}/apiserver.ext"
  cert apiserver kube-apiserver
  local client='basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'
  local n
  for n in admin kubelet controller-manager scheduler proxy apiserver-kubelet-client; do printf "${client}" > "${dir}/${n}.ext"; done
  cert admin admin system:masters
  cert kubelet "system:node:${NODE_NAME}" system:nodes
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert proxy system:kube-proxy
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  openssl genrsa -out "${dir}/sa.key" 2048 2>/dev/null
  openssl rsa -in "${dir}/sa.key" -pubout -out "${dir}/sa.pub" 2>/dev/null
}

kubeconfig() { # file cert-name
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: wechat-cluster
  cluster:
    server: https://${NODE_IP}:6443
    certificate-authority: ${STATE}/certs/ca.crt
users:
- name: $2
  user:
    client-certificate: ${STATE}/certs/$2.crt
    client-key: ${STATE}/certs/$2.key
contexts:
- name: wechat-cluster
  context: {cluster: wechat-cluster, user: $2}
current-context: wechat-cluster
EOF
}

# ---------------------------------------------------------------------------------------------
# Configuration files

write_configs() {
  local c="${STATE}/config"
  mkdir -p "${c}/cni" "${STATE}/kubeconfigs"
  kubeconfig "${STATE}/kubeconfig" admin
  local n
  for n in kubelet controller-manager scheduler proxy; do kubeconfig "${STATE}/kubeconfigs/${n}" "${n}"; done
  # Pods resolve nothing: the host's resolv.conf names a nameserver outside, which pods must not try.
  printf '# wechat-cluster: no name server; pods reach Services by their environment variables\nnameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:1\n' > "${c}/resolv.conf"
  cat > "${c}/cni/10-wechat-cluster.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "wechat-cluster",
  "plugins": [
    {"type": "bridge", "bridge": "wc-br0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "${POD_CIDR}"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "${VAR}/cni"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat > "${c}/containerd.toml" <<EOF
version = 2
root = "${VAR}/containerd"
state = "${RUN}/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${CONTAINERD_SOCK}"
[ttrpc]
  address = "${RUN}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # This sandbox forbids lowering oom_score_adj, even as root; kubelet asks -998 for sandboxes.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${c}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
EOF
  cat > "${c}/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This host has cgroup v1 and no systemd: kubelet 1.37 refuses v1 unless told not to.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
resolvConf: ${c}/resolv.conf
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${STATE}/certs/ca.crt}
authorization:
  mode: Webhook
serializeImagePulls: false
# The disk is shared with other work: evict only when it is really full.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  imagefs.available: 2%
imageGCHighThresholdPercent: 98
imageGCLowThresholdPercent: 97
EOF
  cat > "${c}/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: ${POD_CIDR}
hostnameOverride: ${NODE_NAME}
clientConnection:
  kubeconfig: ${STATE}/kubeconfigs/proxy
# Replies from a Service's pods on the same bridge must come back through the node's NAT.
iptables:
  masqueradeAll: true
# Leave the host's conntrack sysctls as they are (this sandbox may forbid changing them).
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# ---------------------------------------------------------------------------------------------
# Processes

start() { # name command... : runs in the namespace, logs to logs/<name>.log, pid in pids/<name>
  local name=$1; shift
  mkdir -p "${STATE}/logs" "${STATE}/pids"
  setsid nsenter --net="${NETNS_FILE}" "$@" >"${STATE}/logs/${name}.log" 2>&1 < /dev/null &
  echo $! > "${STATE}/pids/${name}"
}

wait_for() { # what seconds command...
  local what=$1 secs=$2 i; shift 2
  for i in $(seq $((secs * 2))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "${what} did not come up within ${secs}s; see ${STATE}/logs/"
}

alive() { local p; for p in "$@"; do kill -0 "$(cat "${STATE}/pids/${p}")" 2>/dev/null || die "${p} exited; see ${STATE}/logs/${p}.log"; done; }

start_control_plane() {
  local certs="${STATE}/certs"
  mkdir -p "${VAR}/etcd"
  log "starting etcd and kube-apiserver"
  start etcd "${CP_ASSETS}/etcd" --data-dir "${VAR}/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --unsafe-no-fsync
  start kube-apiserver "${CP_ASSETS}/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --secure-port 6443 --advertise-address "${NODE_IP}" \
    --service-cluster-ip-range "${SERVICE_CIDR}" \
    --tls-cert-file "${certs}/apiserver.crt" --tls-private-key-file "${certs}/apiserver.key" \
    --client-ca-file "${certs}/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "${certs}/sa.pub" --service-account-signing-key-file "${certs}/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "${certs}/apiserver-kubelet-client.crt" \
    --kubelet-client-key "${certs}/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP
  wait_for "kube-apiserver" 120 kc get --raw /readyz
  alive etcd kube-apiserver
  log "starting kube-controller-manager and kube-scheduler"
  start kube-controller-manager "${NODE_ASSETS}/kube-controller-manager" \
    --kubeconfig "${STATE}/kubeconfigs/controller-manager" \
    --authentication-kubeconfig "${STATE}/kubeconfigs/controller-manager" \
    --authorization-kubeconfig "${STATE}/kubeconfigs/controller-manager" \
    --service-account-private-key-file "${certs}/sa.key" --root-ca-file "${certs}/ca.crt" \
    --use-service-account-credentials --leader-elect=false --bind-address 127.0.0.1
  start kube-scheduler "${NODE_ASSETS}/kube-scheduler" \
    --kubeconfig "${STATE}/kubeconfigs/scheduler" \
    --authentication-kubeconfig "${STATE}/kubeconfigs/scheduler" \
    --authorization-kubeconfig "${STATE}/kubeconfigs/scheduler" \
    --leader-elect=false --bind-address 127.0.0.1
}

start_node() {
  log "starting containerd"
  mkdir -p "${RUN}" "${VAR}/kubelet"
  start containerd containerd --config "${STATE}/config/containerd.toml"
  wait_for "containerd" 60 ctr -a "${CONTAINERD_SOCK}" version
  ctr -a "${CONTAINERD_SOCK}" -n k8s.io images import "${STATE}/images/pause.tar" >/dev/null
  log "starting kubelet and kube-proxy"
  start kubelet "${NODE_ASSETS}/kubelet" --config "${STATE}/config/kubelet.yaml" \
    --kubeconfig "${STATE}/kubeconfigs/kubelet" --root-dir "${VAR}/kubelet" \
    --hostname-override "${NODE_NAME}" --node-ip "${NODE_IP}"
  start kube-proxy "${NODE_ASSETS}/kube-proxy" --config "${STATE}/config/kube-proxy.yaml"
  wait_for "node ${NODE_NAME} Ready" 180 kc wait --for=condition=Ready "node/${NODE_NAME}" --timeout=5s
  alive containerd kubelet kube-proxy kube-controller-manager kube-scheduler
  # Pods need their namespace's default ServiceAccount and the kube-root-ca.crt ConfigMap.
  wait_for "the default ServiceAccount" 60 kc -n default get serviceaccount default
  wait_for "the kube-root-ca.crt ConfigMap" 60 kc -n default get configmap kube-root-ca.crt
}

up() {
  need_root
  local t0=$SECONDS
  install_packages
  build_binaries
  log "cleaning up what an earlier run left"
  down 2>/dev/null
  setup_netns
  make_certs
  write_configs
  start_control_plane
  start_node
  log "up in $((SECONDS - t0))s: node ${NODE_NAME} Ready"
  log "kubeconfig: ${STATE}/kubeconfig (the API server is ${NODE_IP}:6443 inside namespace ${NETNS}):"
  log "  hack/cluster.sh kubectl get pods -A      or   nsenter --net=${NETNS_FILE} kubectl --kubeconfig ${STATE}/kubeconfig ..."
}

status() {
  [ -e "${NETNS_FILE}" ] && [ -f "${STATE}/kubeconfig" ] && kc get --raw /readyz >/dev/null 2>&1 \
    && { echo "up: kubeconfig ${STATE}/kubeconfig"; return 0; }
  echo "down"; return 1
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0  # sourced (for debugging): functions only
cmd="${1:-}"; shift || true

if [ "${CLUSTER_PROVIDER:-}" = kind ]; then
  KIND_NAME=wechat-cluster
  kk() { kubectl --kubeconfig "${STATE}/kubeconfig" "$@"; }
  case "${cmd}" in
    up) mkdir -p "${STATE}"
        kind delete cluster --name "${KIND_NAME}" >/dev/null 2>&1 || true
        kind create cluster --name "${KIND_NAME}" --config "${ROOT}/hack/cluster-kind.yaml" \
          --kubeconfig "${STATE}/kubeconfig" --wait 180s
        log "kubeconfig: ${STATE}/kubeconfig" ;;
    down) kind delete cluster --name "${KIND_NAME}"; rm -f "${STATE}/kubeconfig" ;;
    status) kk get --raw /readyz >/dev/null 2>&1 && echo "up (kind): kubeconfig ${STATE}/kubeconfig" ;;
    kubectl) kk "$@" ;;
    exec) "$@" ;;
    import) for f in "$@"; do kind load image-archive --name "${KIND_NAME}" "${f}"; done ;;
    *) die "unknown command ${cmd}" ;;
  esac
  exit
fi

case "${cmd}" in
  up) up ;;
  down) down ;;
  status) status ;;
  kubectl) kc "$@" ;;
  exec) in_ns "$@" ;;
  import)
    for f in "$@"; do ctr -a "${CONTAINERD_SOCK}" -n k8s.io images import "${f}" >/dev/null; log "imported ${f}"; done ;;
  *) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
