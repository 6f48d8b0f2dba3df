# The control plane's image: this code location, as the Dagster chart runs it (a user-code
# deployment) and as each run's Kubernetes Job. Built and pushed by the bootstrap (README),
# tagged with the git SHA it was built from; the chart's values name that tag.
#
# Every tool pinned, to the versions CI tests with: helm as .ci/setup installs it, terraform
# as infra/versions.tf admits, git-crypt from Debian. Runs as an unprivileged user.
FROM python:3.11.7-slim-bookworm

ARG HELM_VERSION=3.17.1
ARG TERRAFORM_VERSION=1.11.4

# git (the sensors' ls-remote and the snapshots), git-crypt (secrets), the AWS CLI (terraform's
# Kubernetes and Helm providers get their EKS tokens from it), curl/unzip for the installs
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        awscli ca-certificates curl git git-crypt unzip \
    && rm -rf /var/lib/apt/lists/*

# helm and terraform from their release sites, each checked against the release's checksums
RUN set -eux; \
    cd /tmp; \
    curl -fsSLO "https://get.helm.sh/helm-v${HELM_VERSION}-linux-amd64.tar.gz"; \
    curl -fsSL "https://get.helm.sh/helm-v${HELM_VERSION}-linux-amd64.tar.gz.sha256sum" \
        | sha256sum -c -; \
    tar -xzf "helm-v${HELM_VERSION}-linux-amd64.tar.gz" linux-amd64/helm; \
    install -m 0755 linux-amd64/helm /usr/local/bin/helm; \
    tf="terraform_${TERRAFORM_VERSION}_linux_amd64.zip"; \
    curl -fsSLO "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/${tf}"; \
    curl -fsSL "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_SHA256SUMS" \
        | grep " ${tf}\$" | sha256sum -c -; \
    unzip -q "${tf}" terraform -d /usr/local/bin; \
    rm -rf /tmp/*; \
    helm version --short; terraform version

# the package and its pinned dependencies (pyproject.toml), no test extras
WORKDIR /opt/tess-platform
COPY pyproject.toml README.md ./
COPY tess_platform ./tess_platform
COPY tess_dagster ./tess_dagster
RUN pip install --no-cache-dir --disable-pip-version-check . \
    && pip check

# not root: uid 10001, its home the only place it writes besides /tmp
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin tess
USER 10001
ENV HOME=/home/tess \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    PYTHONUNBUFFERED=1

EXPOSE 3030
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "3030", "-m", "tess_dagster.definitions"]
