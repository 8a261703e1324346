"""The sandbox's one HTTP server for the channel side: the ECE simulator (`/ece`), the provider
send-API simulators (`/twilio`, `/graph`, `/apple`, `/inapp`), the customer emulator (`/customer`)
and the services conversation flows call (`/identity`, `/bot`), on loopback.

`make run` serves them on port 8100, where the sandbox configuration points; tests start the same
pieces on free ports (and the ECE simulator on a server of its own, which a test can stop to refuse
connections). Nothing here is used outside the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, redirect

from connector.config.model import Config, Integration
from connector.sandbox.customer.emulator import CustomerEmulator
from connector.sandbox.customer.page import customer_blueprint
from connector.sandbox.ece import EceSimulator
from connector.sandbox.providers import ProviderSimulators
from connector.sandbox.services.bot import SandboxBot
from connector.sandbox.services.identity import IdentityService


def ece_simulator_for(integration: Integration, callback_url: str | None) -> EceSimulator:
    """An ECE simulator that knows the integration's client app, entry points and callback auth."""
    auth = integration.callback_auth
    callback_auth = {"type": auth.type}
    if auth.type == "bearer":
        callback_auth["token"] = auth.token or ""
    elif auth.type == "basic":
        callback_auth.update(username=auth.username or "", password=auth.password or "")
    return EceSimulator(
        client_key=integration.client_key or "",
        client_secret=integration.client_secret or "",
        entry_points=[ep.id for ep in integration.entry_points],
        callback_url=callback_url,
        callback_auth=callback_auth,
        api_version=integration.api_paths.get("api_version", "v19"),
    )


def ece_app(ece: EceSimulator) -> Flask:
    app = Flask("ece_sandbox")
    app.register_blueprint(ece.blueprint(), url_prefix="/ece")
    return app


@dataclass
class ChannelSandbox:
    providers: ProviderSimulators
    customer: CustomerEmulator
    ece: EceSimulator | None
    app: Flask
    identity: IdentityService
    bot: SandboxBot


def channel_sandbox(
    config: Config,
    base_url: str,
    connector_url: str,
    public_base_url: str,
    *,
    ece: EceSimulator | None = None,
) -> ChannelSandbox:
    """The providers, the customer emulator, the flows' identity service and bot (and the ECE
    simulator when given) on one app."""
    providers = ProviderSimulators(config.assets, base_url)
    identity, bot = IdentityService(), SandboxBot()
    customer = CustomerEmulator(config, connector_url, public_base_url, providers)
    app = Flask("channel_sandbox")
    for prefix, blueprint in providers.blueprints():
        app.register_blueprint(blueprint, url_prefix=prefix)
    app.register_blueprint(customer_blueprint(customer, providers), url_prefix="/customer")
    if ece is not None:
        app.register_blueprint(ece.blueprint(), url_prefix="/ece")
    app.register_blueprint(identity.blueprint(), url_prefix="/identity")
    app.register_blueprint(bot.blueprint(), url_prefix="/bot")

    @app.get("/")
    def home():
        return redirect("/customer/")

    return ChannelSandbox(providers=providers, customer=customer, ece=ece, app=app, identity=identity, bot=bot)
