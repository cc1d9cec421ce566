# One image for the web and the worker processes (docs/deployment.md).
#   docker build -t rfm-clv .
#   docker run --rm --env-file prod.env rfm-clv rfm-clv migrate            # release step
#   docker run -p 8000:8000 --env-file prod.env rfm-clv                     # web
#   docker run --env-file prod.env rfm-clv python -m app.worker             # worker
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies come from uv.lock, pinned and hash-checked (docs/deployment.md: updating the lock);
# `--frozen` installs the lock as it is, never re-resolving. The app itself goes in without deps.
COPY pyproject.toml uv.lock README.md ./
RUN pip install 'uv==0.13.9' \
 && uv export --frozen --no-dev --no-emit-project --format requirements.txt -o /tmp/requirements.txt \
 && pip install --require-hashes -r /tmp/requirements.txt \
 && pip uninstall --yes uv
COPY app ./app
RUN pip install --no-deps . && pip check

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 app
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY alembic.ini ./
COPY migrations ./migrations
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 APP_ENV=production RFM_MIGRATIONS_DIR=/srv/migrations
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# uvicorn stops gracefully on SIGTERM (in-flight requests finish); so does the worker (the job in hand).
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
