# pushring container image: a static binary on distroless, running as the
# non-root user 65532.
#
#   make image                    # pushring:<version>, stamped as `make release`
#   docker build -t pushring:dev \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) .
#
# Builds for other platforms cross-compile (docker buildx --platform ...).

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=0.1.0-dev
ARG REVISION=
ARG BRANCH=
ARG BUILD_DATE=
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= \
        -X github.com/prometheus/common/version.Version=${VERSION} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=${BRANCH} \
        -X github.com/prometheus/common/version.BuildDate=${BUILD_DATE}" \
      -o /pushring ./cmd/pushring

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /pushring /pushring
USER 65532:65532
# 9091 HTTP (pushes, scrapes), 9092 gRPC between peers, 7946 gossip.
EXPOSE 9091 9092 7946 7946/udp
ENTRYPOINT ["/pushring"]
