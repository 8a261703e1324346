"""A sample identity service for the `verify` step: `POST /identity/verify` checks the customer's
answers (an order number or an email) against a small table of demo customers.

    {"answers": {"order_number": "AB100001"}}   -> {"verified": true, "attributes": {"customer_tier": "gold", ...}}
    {"answers": {"email": "nobody@example"}} -> {"verified": false, "reason": "..."}

The request is the contract's (docs/protocols/bots.md, "Identity service"); only `answers` is read.
A call repeated with the same X-Connector-Idempotency-Key gets the first answer (`Replays`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response

from connector.sandbox.services import (
    IDENTITY_SECRET,
    Faults,
    Replays,
    add_control,
    signed_answer,
)


@dataclass(frozen=True)
class DemoCustomer:
    order_number: str
    email: str
    name: str
    tier: str


DEMO_CUSTOMERS = (
    DemoCustomer("AB100001", "ana@example.com", "Ana Lima", "gold"),
    DemoCustomer("AB100002", "ben@example.com", "Ben Weber", "silver"),
    DemoCustomer("AB100003", "chloe@example.com", "Chloé Martin", "standard"),
)
"""The table the sandbox identity service checks (also the orders the sandbox bot knows)."""


@dataclass
class IdentityService:
    secret: str = IDENTITY_SECRET
    customers: tuple[DemoCustomer, ...] = DEMO_CUSTOMERS
    faults: Faults = field(default_factory=Faults)
    replays: Replays = field(default_factory=Replays)
    """Answers by idempotency key: a repeated call is answered from here and verifies nobody again."""

    def check(self, answers: dict[str, Any]) -> dict[str, Any]:
        """The contract's answer for these answers: verified with the customer's attributes, or a reason."""
        order = str(answers.get("order_number") or "").strip().upper()
        email = str(answers.get("email") or "").strip().lower()
        if not order and not email:
            return {"verified": False, "reason": "no order number or email was given"}
        for customer in self.customers:
            if (order and order == customer.order_number) or (email and email == customer.email):
                return {
                    "verified": True,
                    "attributes": {
                        "customer_tier": customer.tier,
                        "customer_name": customer.name,
                        "order_number": customer.order_number,
                    },
                }
        given = f"order {order}" if order else f"email {email}"
        return {"verified": False, "reason": f"no customer with {given}"}

    def blueprint(self) -> Blueprint:
        bp = Blueprint("sandbox_identity", __name__)

        @bp.post("/verify")
        def verify() -> tuple[Response, int] | Response:
            return signed_answer(
                self.secret, self.faults, self.replays, "answers", lambda body: self.check(body["answers"])
            )

        add_control(bp, self.faults, reset=self.replays.reset)
        return bp
