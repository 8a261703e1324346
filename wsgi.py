"""Production entry point: `gunicorn wsgi:app` (REDIS_URL must point at a Redis with AOF on)."""

from connector import create_app

app = create_app()
