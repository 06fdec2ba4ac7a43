# syntax=docker/dockerfile:1
# Images of the manager and the webhook receiver: static Go binaries on distroless, as
# UID/GID 65532 (nonroot), no shell, read-only root filesystem friendly.
#
#   make docker-build                      (both; IMG_REGISTRY, IMG_TAG, CONTAINER_TOOL)
#   docker build --target manager          -t ghcr.io/wechat-operator/manager:dev .
#   docker build --target webhook-receiver -t ghcr.io/wechat-operator/webhook-receiver:dev .
#
# Multi-platform: docker buildx build --platform linux/amd64,linux/arm64 --target manager ...

ARG GO_VERSION=1.26

# ---- build: both binaries, cross-compiled on the build machine's platform ----
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/
COPY webhook-receiver/ webhook-receiver/
COPY cmd/ cmd/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -buildvcs=false \
      -ldflags="-s -w" \
      -o /out/ ./cmd/manager ./cmd/webhook-receiver

# ---- manager: talks to the Kubernetes API and WeChat; never exposed ----
FROM gcr.io/distroless/static-debian12:nonroot AS manager
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]

# ---- webhook-receiver: internet-facing; holds no access token ----
FROM gcr.io/distroless/static-debian12:nonroot AS webhook-receiver
COPY --from=build /out/webhook-receiver /webhook-receiver
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/webhook-receiver"]
