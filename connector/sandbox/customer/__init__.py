"""The sandbox's customer: a Python API (`CustomerEmulator`), a page (`customer_blueprint`) and a CLI
(`python -m connector.sandbox.customer`) that send the connector exactly what each provider would."""

from __future__ import annotations

from connector.sandbox.customer.emulator import CustomerEmulator, SandboxUnavailable
from connector.sandbox.customer.page import customer_blueprint

__all__ = ["CustomerEmulator", "SandboxUnavailable", "customer_blueprint"]
