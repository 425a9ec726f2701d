"""The integrator's guide, executed: the example addon in a repository of its own runs its own tests.

docs/addons.md tells a third party to create a virtual environment, install the kernel, ``pip install -e`` the
addon and run ``python -m pytest`` in its folder. This test does exactly that on a clean copy of
docs/examples/crm_loyalty, so the guide, the example's pyproject (pytest settings, entry points, package data)
and its tests cannot drift from the kernel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from importlib.metadata import distributions
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "crm_loyalty"


def _kernel_only_site(target: Path) -> None:
    """Give the fresh venv at ``target`` this venv's libraries and kernel, but none of its addons.

    Installing the kernel's dependencies from an index is not possible offline, and ``--system-site-packages``
    would only reach the base interpreter's packages, not this venv's. Symlinking each entry of this venv's
    site-packages into the new one gives a real venv (its own prefix, so pip installs the example into *it*)
    that sees the kernel as installed (its editable finder, ``.pth`` and dist-info with the ``pytest11`` entry
    point) and every library, while leaving out each distribution that declares a ``crm.addons`` entry point:
    the bundled addons, and a ``crm_loyalty`` another test may have installed here. So the example's tests run
    with only what its manifest depends on, as STYLE.md asks, not with whatever this checkout has installed.
    """
    ours = Path(sysconfig.get_paths()["purelib"])
    skipped = {"__pycache__"}
    for dist in distributions(path=[str(ours)]):
        if any(ep.group == "crm.addons" for ep in dist.entry_points):
            skipped.update(f.parts[0] for f in dist.files or [])
    for entry in ours.iterdir():
        if entry.name not in skipped:
            (target / entry.name).symlink_to(entry)


@pytest.mark.slow
def test_example_addon_installs_in_a_fresh_venv_and_passes_its_own_tests(tmp_path: Path) -> None:
    started = time.monotonic()
    repo = tmp_path / "crm_loyalty"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns(
        "*.egg-info", "__pycache__", "build", "dist", ".pytest_cache"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    _kernel_only_site(site)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "PYTEST_", "PIP_", "VIRTUAL_ENV"))}
    # One backend is enough to prove the packaging: the contract itself runs on both in the bundled addons.
    env |= {"CRM_TEST_BACKENDS": "sqlite", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e",
                          str(repo)], env=env, capture_output=True, text=True, timeout=120)
    assert pip.returncode == 0, pip.stderr[-3000:]
    where = subprocess.run([str(python), "-c", "import crm_loyalty, core; print(crm_loyalty.__file__)"],
                           env=env, cwd=venv, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip() == str(repo / "crm_loyalty" / "__init__.py"), where.stderr[-2000:]

    run = subprocess.run([str(python), "-m", "pytest", "-q"], cwd=repo, env=env, capture_output=True, text=True,
                         timeout=110)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout, output[-2000:]
    assert time.monotonic() - started < 120
