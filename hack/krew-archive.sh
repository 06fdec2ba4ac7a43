#!/usr/bin/env bash
# make krew-archive: the kubectl-wechat archives krew installs, and the manifest for them.
# For each platform (KREW_PLATFORMS, default: those of plugins/wechat.yaml) it builds a static
# kubectl-wechat and packs it with plugins/kubectl_complete-wechat into
# bin/krew/kubectl-wechat_<os>_<arch>.tar.gz (both files at the archive's root, as the
# manifest's files: entries expect), reproducibly (fixed mtime, owner and order; gzip -n), then
# writes bin/krew/wechat.yaml: plugins/wechat.yaml with VERSION and each sha256 filled in.
# Platforms not built keep their SHA256_<os>_<arch> placeholder.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
VERSION="${VERSION:-v0.0.0-dev}"
OUT="${KREW_OUT:-bin/krew}"
PLATFORMS="${KREW_PLATFORMS:-$(grep -o 'SHA256_[a-z0-9]*_[a-z0-9]*' plugins/wechat.yaml | sed 's/^SHA256_//; s/_/\//' | tr '\n' ' ')}"
mkdir -p "${OUT}"
manifest="$(sed "/^#/d; s/VERSION/${VERSION}/g" plugins/wechat.yaml)"
for p in ${PLATFORMS}; do
  os="${p%/*}" arch="${p#*/}"
  stage="$(mktemp -d)"
  trap 'rm -rf "${stage}"' EXIT
  echo "==> kubectl-wechat ${VERSION} for ${os}/${arch}"
  CGO_ENABLED=0 GOOS="${os}" GOARCH="${arch}" go build -trimpath -ldflags="-s -w" -o "${stage}/kubectl-wechat" ./cmd/kubectl-wechat
  install -m 0755 plugins/kubectl_complete-wechat "${stage}/kubectl_complete-wechat"
  archive="${OUT}/kubectl-wechat_${os}_${arch}.tar.gz"
  tar -C "${stage}" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - kubectl-wechat kubectl_complete-wechat | gzip -n -9 > "${archive}"
  sum="$(sha256sum "${archive}" | cut -d' ' -f1)"
  manifest="${manifest//SHA256_${os}_${arch}/${sum}}"
  rm -rf "${stage}"
  trap - EXIT
  echo "    ${archive} sha256 ${sum}"
done
printf '%s\n' "${manifest}" > "${OUT}/wechat.yaml"
echo "==> ${OUT}/wechat.yaml"
