# Image of the example project's web workers, used by docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# The package first, so editing the example does not rebuild this layer.
# uvicorn is not a dependency of djust_dist itself, so the image adds it.
COPY pyproject.toml README.md LICENSE CHANGELOG.md ./
COPY djust_dist ./djust_dist
COPY lua ./lua
RUN pip install . "uvicorn[standard]>=0.30"

COPY example /app
RUN useradd --create-home --uid 1000 app && chown -R app:app /app
USER app
WORKDIR /app

EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && exec uvicorn exampleproject.asgi:application --host 0.0.0.0 --port 8000 --lifespan on --no-proxy-headers"]
