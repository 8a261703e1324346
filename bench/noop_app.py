"""The connector app plus a no-op endpoint, served by the same gunicorn for a fair baseline."""

from flask import Response

from connector import create_app

app = create_app()


@app.post("/bench/noop")
def noop() -> Response:
    return Response("ok", mimetype="text/plain")
