"""`python -m connector.sandbox.customer --channel whatsapp --customer 15551230001 "hello"`

Sends one customer message (or `--file PATH`) to a running connector, signed the provider's way
with the asset's secrets from the configuration, and prints the connector's answer. Files go to
the provider simulators first (`POST {sandbox-url}/providers/files`), so the sandbox must be
running for `--file` (`make run` starts it on port 8100).
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
from pathlib import Path

import requests

from connector.config.loader import ConfigError, load_config
from connector.sandbox.customer.emulator import DEFAULT_SANDBOX_URL, CustomerEmulator, SandboxUnavailable
from connector.settings import PROJECT_ROOT

CHANNELS = ("sms", "messenger", "whatsapp", "apple", "inapp")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m connector.sandbox.customer",
        description="Send a message to the connector as a customer on a channel (sandbox).",
    )
    p.add_argument("text", nargs="?", help="the message text (the caption with --file)")
    p.add_argument("--channel", choices=CHANNELS, help="the channel; the first asset of it is used")
    p.add_argument("--asset", help="the asset name (default: the first asset of --channel)")
    p.add_argument("--customer", required=True, help="E.164 number, PSID, wa_id, Apple opaque id or app user id")
    p.add_argument("--file", type=Path, help="send this file (needs the sandbox simulators running)")
    p.add_argument("--mime-type", help="the file's MIME type (default: guessed from its name)")
    p.add_argument("--connector-url", default="http://localhost:8000", help="where the connector listens")
    p.add_argument(
        "--public-base-url", help="the connector's PUBLIC_BASE_URL (Twilio signs it; default: --connector-url)"
    )
    p.add_argument(
        "--config-dir", type=Path, default=PROJECT_ROOT / "entrypoints" / "sandbox", help="the provisioning files"
    )
    p.add_argument("--sandbox-url", default=DEFAULT_SANDBOX_URL, help="where the provider simulators listen")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.channel and not args.asset:
        print("give --channel or --asset", file=sys.stderr)
        return 2
    if not args.text and not args.file:
        print("give the message text, or --file PATH", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config_dir)
    except ConfigError as exc:
        print(f"the configuration in {args.config_dir} is invalid:\n{exc}", file=sys.stderr)
        return 2
    asset_name = args.asset
    if asset_name is None:
        asset = next((a for a in config.assets if a.channel == args.channel), None)
        if asset is None:
            print(f"no {args.channel} asset in {args.config_dir}", file=sys.stderr)
            return 2
        asset_name = asset.name
    emulator = CustomerEmulator(
        config,
        args.connector_url,
        args.public_base_url or args.connector_url,
        sandbox_url=args.sandbox_url,
    )
    try:
        if args.file:
            mime_type = args.mime_type or mimetypes.guess_type(args.file.name)[0] or "application/octet-stream"
            data = args.file.read_bytes()
            response = emulator.send_file(
                asset_name, args.customer, data, mime_type, args.file.name, caption=args.text, check=False
            )
        else:
            response = emulator.send_text(asset_name, args.customer, args.text, check=False)
    except SandboxUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except requests.RequestException as exc:  # before OSError, which it subclasses
        print(
            f"could not reach the connector at {args.connector_url} ({exc}); is it running (make run)?", file=sys.stderr
        )
        return 2
    except (ValueError, OSError) as exc:  # unknown asset, bad customer id, unreadable file
        print(str(exc), file=sys.stderr)
        return 2
    print(f"{response.status_code} {response.reason}")
    if response.text:
        print(response.text)
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
