# The rendezvous CLI in a container, for docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY rendezvous ./rendezvous
# topics.yaml and the bundled models are package data: installed with the package.
RUN pip install --no-cache-dir .
# Not root: the Kubernetes manifests (deploy/kubernetes) run it with runAsNonRoot.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin rendezvous
USER 10001
ENTRYPOINT ["rendezvous"]
