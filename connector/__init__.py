"""The channel connector: `create_app()` builds the web application."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from prometheus_client.core import Metric
from redis import Redis
from werkzeug.exceptions import HTTPException

from connector import logs
from connector.json_input import JSONProvider
from connector.runtime import Runtime, install
from connector.settings import Settings
from connector.store import connection, durability


def agent_metrics(redis: Redis) -> Iterable[Metric]:
    from connector.blending.agents import AgentRegistry
    from connector.blending.metrics import families

    return families(AgentRegistry(redis).records())


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """The WSGI app; the configuration is loaded (and validated) here, so a broken file fails fast."""
    from connector import backends, dashboard, health, metrics, webhooks
    from connector.admin import init_admin
    from connector.api import init_api
    from connector.machine_sessions import OperatorOnlySessions
    from connector.survey_report import csat, survey_metrics

    runtime = runtime or Runtime(settings or Settings.from_env())
    install(runtime)
    settings = runtime.settings
    logs.configure(settings.log_level)
    runtime.config  # noqa: B018 - load and validate now, not on the first webhook
    promise = runtime.durability  # a bad CONNECTOR_DURABILITY stops the start, not the first webhook
    if connection.configured(settings):  # does the Redis this process acknowledges on keep the promise?
        promise.check_server(runtime.redis)

    app = Flask(__name__)
    app.json = JSONProvider(app)  # request.get_json refuses over-nested bodies (400), never a RecursionError
    app.session_interface = OperatorOnlySessions()
    app.config["SECRET_KEY"] = settings.secret_key or secrets.token_hex(32)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["connector"] = runtime
    durability.install(app)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(webhooks.blueprint)
    for backend in backends.built_in():
        if backend.blueprint is not None:
            app.register_blueprint(backend.blueprint)
    app.register_blueprint(metrics.blueprint)
    metrics.register_source(survey_metrics)
    dashboard.register_csat(csat)
    if runtime.config.finesse is not None:
        metrics.register_source(agent_metrics)
    init_admin(app, runtime)
    api = init_api(app)

    @app.before_request
    def fresh_configuration_for_operators() -> None:
        """An operator's next page may land on another web process than the one that saved: it must
        see the change, so operator requests re-check the store's version (one GET) instead of
        waiting out CONFIG_CHECK_SECONDS as webhooks and workers do."""
        if request.path.startswith(("/admin/", "/api/")):
            runtime.config_changed()

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        """JSON for machines (webhooks, callbacks, the API's own shape), a page for operators."""
        if request.path.startswith("/api/"):
            answer: ResponseReturnValue = api.handle_http_exception(error)  # flask-smorest is untyped
            return answer
        if request.path.startswith("/admin/") and request.accept_mimetypes.accept_html:
            title = error.name or "Error"
            page = render_template("admin/error.html", code=error.code, title=title, message=error.description)
            return page, error.code or 500
        response = jsonify(error=(error.name or "error").lower().replace(" ", "_"), message=error.description)
        response.status_code = error.code or 500
        return response

    if not settings.secret_key:
        logging.getLogger(__name__).warning("CONNECTOR_SECRET_KEY is not set; sessions end with this process")
    return app
