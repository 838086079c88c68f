# syntax=docker/dockerfile:1
# One image for every planstream process: `serve`, `worker <service>`, `db migrate`,
# `topics ensure`. Every setting comes from PLANSTREAM_* variables. It holds the product only:
# the wheel leaves out planstream.dev. The `dev` target adds the dev tools, for the scripted
# model server (`planstream model-server`) that docker-compose.yml runs as a stand-in.

FROM python:3.11-slim AS build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# .dockerignore lets in only what the package is built from.
COPY . /src
# Every dependency ships a manylinux wheel for CPython 3.11, so no compiler is needed.
RUN --mount=type=cache,target=/root/.cache/pip pip install /src

# The dev tools, never the product image: the repository installed editable, so planstream.dev
# (left out of the wheel) is imported from /src. `docker build --target dev`.
FROM build AS dev
RUN --mount=type=cache,target=/root/.cache/pip pip install --no-deps -e /src \
    && useradd --system --uid 10001 --user-group --no-log-init \
        --home-dir /var/lib/planstream --create-home planstream
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /var/lib/planstream
ENTRYPOINT ["planstream"]
CMD ["model-server"]

# The product: the last stage, so a build without --target makes it.
FROM python:3.11-slim AS product
RUN useradd --system --uid 10001 --user-group --no-log-init \
        --home-dir /var/lib/planstream --create-home planstream
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Numeric so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# Writable working directory: Faust keeps its table data under the current directory.
WORKDIR /var/lib/planstream
# The ingress (PLANSTREAM_INGRESS_PORT) and every process's /metrics and /healthz (the port compose
# and the chart give PLANSTREAM_METRICS_PORT).
EXPOSE 18000 9102
ENTRYPOINT ["planstream"]
CMD ["serve"]
