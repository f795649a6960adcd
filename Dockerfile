# SIS Sync: one image for the web app, the Celery worker and Celery beat (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY . .
# constraints.txt pins every dependency, so the image installs what CI tested.
RUN pip install -c constraints.txt . \
    && useradd --create-home --uid 1000 app \
    && mkdir -p /app/var/data \
    && chown -R app:app /app/var

USER app
EXPOSE 8000

CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py runserver 0.0.0.0:8000"]
