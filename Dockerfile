# One image for the web and the worker processes.
#   docker build -t rfm-clv .
#   docker run --rm -e DATABASE_URL=... rfm-clv rfm-clv migrate          # release step
#   docker run -p 8000:8000 -e DATABASE_URL=... -e SHOPIFY_API_KEY=... rfm-clv
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 app
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY alembic.ini ./
COPY migrations ./migrations
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 APP_ENV=production RFM_MIGRATIONS_DIR=/srv/migrations
USER app
EXPOSE 8000
CMD ["uvicorn", "app.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
