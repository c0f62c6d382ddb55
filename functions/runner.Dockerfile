# The Helm runner image: helm + the store chart + the runner entrypoint.
# Build from the repository root:
#   docker build -f functions/runner.Dockerfile -t storeplatform/helm-runner:dev .
# helm is built from its Go module, pinned (the same release the tests use).
FROM golang:1.26 AS helm
ARG HELM_VERSION=v4.1.4
RUN CGO_ENABLED=0 GOBIN=/out go install "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/app HOME=/tmp
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY --from=helm /out/helm /usr/local/bin/helm
COPY functions/storeplatform ./storeplatform
COPY store-chart /opt/store-chart

USER 65532:65532
ENTRYPOINT ["python", "-m", "storeplatform.runner"]
