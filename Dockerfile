# The rendezvous CLI in a container, for docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY rendezvous ./rendezvous
RUN pip install --no-cache-dir .
COPY topics.yaml ./
COPY models ./models
ENTRYPOINT ["rendezvous"]
