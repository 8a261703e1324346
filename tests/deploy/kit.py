"""Reading the deployment kit the way its tools would: the Dockerfile with BuildKit's parser, Compose
variables with Compose's interpolation rules, commands with the connector's own argparse."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass

import dockerfile

from connector.__main__ import build_parser
from connector.settings import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
COMPOSE = PROJECT_ROOT / "compose.yaml"
SYSTEMD = PROJECT_ROOT / "deploy" / "systemd"


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    instructions: tuple[dockerfile.Command, ...]

    def all(self, cmd: str) -> list[dockerfile.Command]:
        return [i for i in self.instructions if i.cmd.upper() == cmd.upper()]


def stages() -> list[Stage]:
    """The Dockerfile's build stages, in order, each with its instructions (BuildKit's parser)."""
    found: list[Stage] = []
    current: list[dockerfile.Command] = []
    base, name = "", None
    for instruction in dockerfile.parse_file(str(DOCKERFILE)):
        if instruction.cmd.upper() == "FROM":
            if base:
                found.append(Stage(base, name, tuple(current)))
            value = instruction.value
            base, name, current = value[0], (value[2] if len(value) > 2 else None), []
        elif base:
            current.append(instruction)
    found.append(Stage(base, name, tuple(current)))
    return found


def build_args() -> dict[str, str]:
    """ARG defaults declared before the first FROM."""
    args: dict[str, str] = {}
    for instruction in dockerfile.parse_file(str(DOCKERFILE)):
        if instruction.cmd.upper() == "FROM":
            break
        if instruction.cmd.upper() == "ARG":
            key, _, value = instruction.value[0].partition("=")
            args[key] = value
    return args


def connector_command(argv: list[str]) -> argparse.Namespace:
    """`python -m connector …` parsed by the connector's own parser (SystemExit if it is not valid)."""
    assert argv[1:3] == ["-m", "connector"], f"not a connector command: {argv}"
    assert argv[0] == "python" or argv[0].endswith("/python"), argv
    return build_parser().parse_args(argv[3:])


_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(KeyError):
    pass


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; $$ is $."""

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        present = name in env
        empty = not env.get(name)
        if (op in (":-", ":?") and empty) or (op in ("-", "?") and not present):
            if op.endswith("?"):
                raise MissingVariable(f"{name}: {arg}")
            return arg or ""
        return env.get(name, "")

    return _VARIABLE.sub(value, text)
