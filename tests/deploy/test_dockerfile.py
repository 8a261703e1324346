"""The Dockerfile, checked without a container runtime: read by BuildKit's own parser, its COPY
sources present, its pip step's pins resolved offline against this environment, its user creation
and file layout steps run as scripts in a temporary root, and the image's command and health check
run against that layout."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connector.settings import PROJECT_ROOT
from tests.conftest import CONFIG_DIR
from tests.deploy.conftest import answers, free_port
from tests.deploy.kit import Stage, build_args, connector_command, stages
from tests.helpers import wait_for

APP = "/app"


def final() -> Stage:
    return stages()[-1]


def copies_from_context() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY that reads the build context (not another stage)."""
    found = []
    for stage in stages():
        for copy in stage.all("COPY"):
            if any(flag.startswith("--from=") for flag in copy.flags):
                continue
            *sources, destination = copy.value
            found.append((sources, destination))
    return found


def test_two_stages_on_a_slim_python_of_the_tested_minor_version():
    images = stages()
    assert [s.name for s in images] == ["build", None]
    base = build_args()["PYTHON_IMAGE"]
    assert all(s.base == "${PYTHON_IMAGE}" for s in images)
    assert base == f"python:{sys.version_info.major}.{sys.version_info.minor}-slim", (
        "the pins are tested on this interpreter; the image must run the same minor version"
    )


def test_every_copy_source_exists_and_is_in_the_build_context():
    ignored = [
        line.strip()
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = copies_from_context()
    assert copies, "the Dockerfile copies the application"
    for sources, _ in copies:
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), f"COPY {source}: no such file in the build context"
            assert not any(fnmatch.fnmatch(source.rstrip("/"), pattern) for pattern in ignored), (
                f"COPY {source} is excluded by .dockerignore"
            )


def test_the_image_installs_the_runtime_requirements_only():
    instructions = [i for stage in stages() for i in stage.instructions]
    assert not [i.original for i in instructions if "requirements-dev" in i.original]
    build = stages()[0]
    assert (["requirements.txt"], "/tmp/requirements.txt") in copies_from_context()
    (pip,) = [run for run in build.all("RUN") if "pip install" in run.value[0]]
    assert "-r /tmp/requirements.txt" in pip.value[0]
    assert "--only-binary=:all:" in pip.value[0], "wheels only: the slim image has no compiler"


def test_the_requirements_are_pinned_and_resolve_offline_against_this_environment(tmp_path):
    lines = [line.split("#")[0].strip() for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in lines if line]
    assert requirements
    unpinned = [line for line in requirements if "==" not in line]
    assert not unpinned, f"pin every runtime requirement: {unpinned}"
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--quiet"),
            *("--report", str(report), "-r", str(PROJECT_ROOT / "requirements.txt")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # nothing to install offline: every pin, and every dependency of theirs, is what the tests run on
    assert json.loads(report.read_text())["install"] == []


def test_it_runs_as_a_fixed_unprivileged_user():
    image = final()
    users = image.all("USER")
    assert users and users[-1].value[0] == "10001:10001"
    assert image.instructions.index(users[-1]) > max(image.instructions.index(i) for i in image.all("RUN")), (
        "every RUN before the switch; the service itself never runs as root"
    )


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"), reason="useradd --prefix needs root")
def test_the_user_creation_step_makes_the_user_it_switches_to(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        (root / "etc" / name).write_text("root:x:0:0:root:/root:/bin/sh\n" if name == "passwd" else "")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (step,) = [run for run in final().all("RUN") if "useradd" in run.value[0]]
    script = (
        step.value[0]
        .replace("groupadd ", f"groupadd --prefix {root} ")
        .replace("useradd ", f"useradd --prefix {root} ")
    )
    subprocess.run(["sh", "-ec", script], check=True, timeout=30)
    passwd = dict(line.split(":", 1) for line in (root / "etc/passwd").read_text().splitlines())
    assert passwd["connector"] == "x:10001:10001::/app:/usr/sbin/nologin"
    assert "connector:x:10001:" in (root / "etc/group").read_text()


def lay_out_the_image(root: Path) -> Path:
    """The final stage's COPY and RUN steps into `root` (the venv stays this environment's): returns /app."""
    app = root / APP.lstrip("/")
    app.mkdir(parents=True)
    image = final()
    (workdir,) = image.all("WORKDIR")
    assert workdir.value[0] == APP
    for copy in image.all("COPY"):
        if any(flag.startswith("--from=") for flag in copy.flags):
            continue
        *sources, destination = copy.value
        for source in sources:
            target = app / destination
            if (PROJECT_ROOT / source).is_dir():
                shutil.copytree(PROJECT_ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(PROJECT_ROOT / source, target / Path(source).name if destination.endswith("/") else target)
    (layout,) = [run for run in image.all("RUN") if "compileall" in run.value[0]]
    script = layout.value[0] if os.geteuid() == 0 else layout.value[0].split("&& chown")[0]
    subprocess.run(["sh", "-ec", script.replace("python ", f"{sys.executable} ")], cwd=app, check=True, timeout=120)
    return app


def image_env(app: Path, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "CONNECTOR_", "PYTHON"))}
    for instruction in final().all("ENV"):
        pairs = instruction.value
        env.update({k: v for k, v in zip(pairs[::2], pairs[1::2], strict=True) if k != "PATH"})
    env.update(
        PYTHONPATH=str(app),
        REDIS_URL=redis_url,
        CONNECTOR_SECRET_KEY="image-test-secret",
        # the image's entrypoints/ holds the documented example, whose ${SECRETS} a deployment sets;
        # a deployment mounts its own files there, as this test points at the tests' files
        CONNECTOR_CONFIG_DIR=str(CONFIG_DIR),
    )
    return env


def healthcheck(port: int) -> list[str]:
    (check,) = final().all("HEALTHCHECK")
    assert check.json and check.value[0] == "CMD"
    argv = [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in check.value[1:]]
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


@pytest.mark.e2e
def test_the_image_layout_serves_the_default_command_and_passes_its_health_check(tmp_path, redis_url):
    app = lay_out_the_image(tmp_path / "root")
    assert (app / "var").is_dir()
    assert any((app / "connector").rglob("*.pyc")), "compiled at build time: the code is read-only at run time"
    if os.geteuid() == 0:
        assert (app / "var").stat().st_uid == 10001, "var/ is the service user's"
    env = image_env(app, redis_url)
    where = subprocess.run(
        [sys.executable, "-c", "import connector; print(connector.__file__)"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(app / "connector" / "__init__.py"), "the code runs from the image's files"

    (cmd,) = final().all("CMD")
    assert cmd.json
    argv = list(cmd.value)
    assert connector_command(argv).command == "web"
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    log = tmp_path / "web.log"
    with log.open("wb") as output:
        web = subprocess.Popen(
            [sys.executable, *argv[1:]], cwd=app, env=env, stdout=output, stderr=output, start_new_session=True
        )
    try:
        wait_for(
            lambda: answers(f"http://127.0.0.1:{port}/healthz") == 200 or web.poll() is not None,
            timeout=30,
            interval=0.2,
            what="the image's web command to answer",
        )
        assert web.poll() is None, log.read_text()
        check = subprocess.run(healthcheck(port), env=env, capture_output=True, timeout=10, check=False)
        assert check.returncode == 0, check.stderr
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
            web.wait(20)
    time.sleep(0.2)
    failing = subprocess.run(healthcheck(port), env=env, capture_output=True, timeout=10, check=False)
    assert failing.returncode != 0, "nothing answers: the health check fails"
