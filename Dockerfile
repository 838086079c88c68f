# syntax=docker/dockerfile:1
# One image for every planstream process: `serve`, `worker <service>`, `db migrate`,
# `topics ensure`, `model-server`. Every setting comes from PLANSTREAM_* variables.

FROM python:3.11-slim AS build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# .dockerignore lets in only what the package is built from.
COPY . /src
# Every dependency ships a manylinux wheel for CPython 3.11, so no compiler is needed.
RUN --mount=type=cache,target=/root/.cache/pip pip install /src

FROM python:3.11-slim
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
EXPOSE 18000
ENTRYPOINT ["planstream"]
CMD ["serve"]
