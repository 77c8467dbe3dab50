# syntax=docker/dockerfile:1
# dtforward container image: a static binary on distroless, running as a non-root user.
#   docker build --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse --short HEAD) -t dtforward .

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so source edits do not invalidate the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
# Static (no libc), reproducible paths, stripped; version and commit for "dtforward version".
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /dtforward ./cmd/dtforward
# The state directory exists here so it can be copied owned by the non-root user: the final
# image has no shell to create it.
RUN mkdir -p /rootfs/var/lib/dtforward

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="dtforward" \
      org.opencontainers.image.description="Forwards Darktrace model breaches, Antigena actions and AI Analyst incidents to a SIEM as CEF, LEEF or JSON syslog" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/dtforward/dtforward" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /dtforward /dtforward
COPY --from=build --chown=65532:65532 /rootfs/var/lib/dtforward /var/lib/dtforward
USER 65532:65532
ENV STATE_DIR=/var/lib/dtforward \
    HTTP_ADDRESS=:9090
VOLUME /var/lib/dtforward
# /healthz, /readyz and /metrics (HTTP_ADDRESS).
EXPOSE 9090
# Exec form: the image has no shell. "health" asks the local /healthz on HTTP_ADDRESS.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/dtforward", "health"]
ENTRYPOINT ["/dtforward"]
CMD ["run"]
