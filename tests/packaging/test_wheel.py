"""The wheel built from exactly what the Dockerfile copies works in a fresh venv.

The Dockerfile's ``COPY`` sources (before its ``pip install``) are copied into an
empty build context (honouring ``.dockerignore``'s cache patterns), a wheel is
built from it, and installed with the pinned ``requirements.lock`` into a new
virtualenv. From a directory outside the checkout, that venv must run
``streamseg check --offline`` (settings, schemas compiled from package data)
and ``streamseg replay`` of the packaged sample events, which must publish
exactly what the development checkout publishes for the same file.

Run for every interpreter streamseg supports that is on the machine
(3.11 always: the venv's own; 3.12 and 3.13 when installed, e.g. by pyenv;
Debian bookworm packages only 3.11).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPPORTED = ((3, 11), (3, 12), (3, 13))
STEP_TIMEOUT_S = 600


def interpreter(version: tuple[int, int]) -> str | None:
    """A python of this minor version: this venv's, on PATH, or a pyenv install."""
    if sys.version_info[:2] == version:
        return sys.executable
    minor = "{}.{}".format(*version)
    pyenv = os.path.expanduser(f"~/.pyenv/versions/{minor}.*/bin/python{minor}")
    found = [shutil.which(f"python{minor}"), *sorted(glob.glob(pyenv))]
    for candidate in found:
        if candidate and subprocess.run([candidate, "-c", "import venv, ensurepip"],
                                        capture_output=True).returncode == 0:
            return candidate
    return None


def docker_copies(dockerfile: str) -> list[tuple[str, str]]:
    """(source, destination) of each ``COPY`` before the first ``RUN``.

    >>> docker_copies("FROM x\\nCOPY a b ./\\nCOPY pkg ./pkg\\nRUN pip install .\\nCOPY c d\\n")
    [('a', './'), ('b', './'), ('pkg', './pkg')]
    """
    copies: list[tuple[str, str]] = []
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["RUN"]:
            break
        if words[:1] == ["COPY"]:
            *sources, dest = [w for w in words[1:] if not w.startswith("--")]
            copies += [(src, dest) for src in sources]
    return copies


def build_context(tmp: Path) -> Path:
    ctx = tmp / "context"
    ctx.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc", "build", "dist")
    copies = docker_copies((ROOT / "Dockerfile").read_text())
    assert {src for src, _ in copies} >= {"pyproject.toml", "streamseg", "requirements.lock"}
    for src, dest in copies:
        target = ctx / dest / src if dest.endswith("/") else ctx / dest
        if (ROOT / src).is_dir():
            shutil.copytree(ROOT / src, target, ignore=ignore, symlinks=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / src, target)
    return ctx


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
                          **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    ctx = build_context(tmp)
    links = [p for p in ctx.rglob("*") if p.is_symlink()]
    assert links == [], f"symlinks in the build context: {links}"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"),
         str(ctx)])
    (built,) = (tmp / "dist").glob("streamseg-*.whl")
    return built, ctx / "requirements.lock"


@pytest.mark.parametrize("version", SUPPORTED, ids=lambda v: "py{}.{}".format(*v))
def test_wheel_from_the_docker_inputs_runs_in_a_fresh_venv(
    version: tuple[int, int], wheel: tuple[Path, Path], tmp_path: Path,
) -> None:
    python = interpreter(version)
    if python is None:
        pytest.skip("no Python {}.{} on this machine".format(*version))
    built, lock = wheel
    venv = tmp_path / "venv"
    run([python, "-m", "venv", str(venv)])
    vpy = str(venv / "bin" / "python")
    run([vpy, "-m", "pip", "install", "-q", "--no-compile", "--require-hashes", "-r", str(lock)])
    run([vpy, "-m", "pip", "install", "-q", "--no-compile", "--no-deps", str(built)])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STREAMSEG_", "PYTHON", "VIRTUAL_ENV"))}
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    check = run([str(venv / "bin" / "streamseg"), "check", "--offline"], cwd=outside, env=env)
    shipped = len(list((ROOT / "streamseg" / "schemas").glob("*.schema.json")))
    assert shipped >= 6
    assert re.search(rf"^schemas: {shipped} in \S+/site-packages/streamseg/schemas ",
                     check.stdout, re.M), check.stdout
    assert "broker: not checked (--offline)" in check.stdout

    where = run([vpy, "-c", "import streamseg.resources as r; print(r.SAMPLE_EVENTS)"],
                cwd=outside, env=env).stdout.strip()
    assert "/site-packages/streamseg/samples/" in where
    installed = run([vpy, "-m", "streamseg", "replay", where, "--quiet", "--dead-letters",
                     str(tmp_path / "dl.jsonl")], cwd=outside, env=env).stdout
    here = run([sys.executable, "-m", "streamseg", "replay",
                str(ROOT / "streamseg" / "samples" / "events.jsonl"), "--quiet",
                "--dead-letters", str(tmp_path / "dl-here.jsonl")], cwd=ROOT, env=env).stdout
    assert installed.count("\n") > 10
    assert installed == here
