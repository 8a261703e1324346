"""The command line: `python -m connector run | web | worker | listen | check-config | sandbox`
(docs/architecture.md, "Processes and commands")."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from connector import logs
from connector.settings import PROJECT_ROOT, Settings

SANDBOX_CONFIG_DIR = PROJECT_ROOT / "entrypoints" / "sandbox"


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "sandbox", False):
        overrides["config_dir"] = SANDBOX_CONFIG_DIR
        overrides["sandbox"] = True
    return Settings.from_env(**overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from connector.supervisor import Supervisor

    settings = _settings(args)
    if (code := _check(settings.config_dir, settings.templates_dir)) != 0:
        return code
    # The listener always runs: without a finesse: section (in the files or made on the Finesse page)
    # it waits for one, so a section added later takes effect without a restart.
    supervisor = Supervisor(
        settings, port=args.port, workers=args.workers, sandbox=args.sandbox, wsgi_app=args.app, listen=True
    )
    if args.web_workers:
        supervisor.web_workers = args.web_workers
    return supervisor.run()


def cmd_web(args: argparse.Namespace) -> int:
    """gunicorn serving the app, exactly as `run` starts it, in place of this process (exec): the
    service manager's signals reach gunicorn's master itself, which stops its workers gracefully."""
    from connector.store import connection
    from connector.supervisor import default_web_workers, gunicorn_argv

    settings = Settings.from_env()
    try:
        connection.validate(settings)
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if not connection.configured(settings):
        print(
            "configuration error: the web process needs a Redis: set REDIS_URL (or REDIS_SENTINELS and "
            "REDIS_SENTINEL_MASTER); `python -m connector run` starts an embedded one",
            file=sys.stderr,
        )
        return 2
    if (code := _check(settings.config_dir, settings.templates_dir)) != 0:
        return code
    bind = args.bind or f"{args.host}:{args.port}"
    workers = args.workers or default_web_workers()
    argv = gunicorn_argv(sys.executable, app=args.app, bind=bind, workers=workers, settings=settings)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter running gunicorn, no shell


def cmd_worker(args: argparse.Namespace) -> int:
    from connector.relay.worker import run_worker
    from connector.runtime import Runtime

    settings = Settings.from_env()
    run_worker(Runtime(settings), burst=args.burst, name=args.name)
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    from connector.blending.listener import run_listener
    from connector.runtime import Runtime

    return run_listener(Runtime(Settings.from_env()), wait_for_section=args.wait_for_section)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from connector.sandbox.main import run_sandbox

    return run_sandbox(Settings.from_env())


def _check(directory: Path, templates_dir: Path | None = None) -> int:
    from connector.config.loader import ConfigError, load_config

    try:
        config = load_config(directory, templates_dir=templates_dir)
    except ConfigError as exc:
        print(f"configuration in {directory} is invalid ({len(exc.problems)} problems):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(
        f"configuration in {directory} is valid: {len(config.integrations)} integrations, "
        f"{len(config.assets)} assets, {len(config.rules)} rules"
        + (f", {len(config.hybrid_agents)} hybrid agents" if config.hybrid_agents else "")
        + (", finesse section present" if config.finesse else "")
        + (f", {len(config.flows)} flows" if config.flows else "")
    )
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    directory = Path(args.directory) if args.directory else settings.config_dir
    return _check(directory, settings.templates_dir)


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (the deployment kit's tests parse its commands with it)."""
    parser = argparse.ArgumentParser(
        prog="python -m connector", description="Channel connector for Cisco contact centers"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="the whole stack: Redis (embedded unless REDIS_URL), web, workers")
    run.add_argument("--sandbox", action="store_true", help="start the simulators and use the sandbox configuration")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--workers", type=int, default=2, help="RQ worker processes (default 2)")
    run.add_argument(
        "--web-workers",
        type=int,
        default=None,
        help="gunicorn processes (default: WEB_CONCURRENCY, else the number of cores plus one)",
    )
    run.add_argument("--app", default="wsgi:app", help="the WSGI app gunicorn serves (default wsgi:app)")
    run.set_defaults(handler=cmd_run)

    web = commands.add_parser("web", help="the web process alone (gunicorn, as `run` starts it); needs REDIS_URL")
    web.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)"
    )
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--bind", default=None, help="gunicorn's --bind (host:port or unix:PATH); wins over --host/--port")
    web.add_argument(
        "--workers",
        type=int,
        default=None,
        help="gunicorn processes (default: WEB_CONCURRENCY, else the number of cores plus one)",
    )
    web.add_argument("--app", default="wsgi:app", help="the WSGI app gunicorn serves (default wsgi:app)")
    web.set_defaults(handler=cmd_web)

    worker = commands.add_parser("worker", help="one RQ worker on the connector's queues, with scheduler")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.add_argument("--name", default=None)
    worker.set_defaults(handler=cmd_worker)

    listen = commands.add_parser("listen", help="Finesse notifications and node liveness")
    listen.add_argument(
        "--wait-for-section",
        action="store_true",
        help="without a finesse: section, wait for one (as `run` starts it) instead of exiting with an error",
    )
    listen.set_defaults(handler=cmd_listen)

    check = commands.add_parser("check-config", help="validate the provisioning files")
    check.add_argument("directory", nargs="?", default=None)
    check.add_argument("--sandbox", action="store_true", help="check the sandbox configuration")
    check.set_defaults(handler=cmd_check_config)

    sandbox = commands.add_parser("sandbox", help="the simulators alone")
    sandbox.set_defaults(handler=cmd_sandbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(Settings.from_env().log_level if args.command != "check-config" else "WARNING")
    code: int = args.handler(args)  # the command's exit status
    return code


if __name__ == "__main__":
    sys.exit(main())
