"""Gating for the Python smoke tests, the same rule as internal/testenv.

A test asks for its service with the `service_url` fixture factory:
GREY_TEST_<NAME>_URL unset -> the test is skipped, or fails when CI=true.
"""
import os
import subprocess
from urllib.parse import urlparse

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def env_var(name: str) -> str:
    return "GREY_TEST_" + name.upper().replace("-", "_") + "_URL"


def service_url(name: str) -> str:
    var = env_var(name)
    url = os.environ.get(var, "").strip()
    if url:
        return url
    msg = (f"{var} is not set: service {name} is not running "
           f"(start it with `scripts/services.sh up {name}` and "
           f"`eval \"$(scripts/services.sh env)\"`)")
    if in_ci():
        pytest.fail("CI=true and " + msg, pytrace=False)
    pytest.skip(msg)


def interpreter(name: str) -> str:
    """The Python interpreter named by a file:// service URL."""
    url = service_url(name)
    u = urlparse(url)
    if u.scheme != "file" or not u.path:
        pytest.fail(f"{env_var(name)}={url!r} is not a file:// URL of a Python interpreter")
    return u.path


def run_python(python: str, code: str, timeout: float = 300) -> str:
    """Run code in that interpreter; return stdout, fail with stderr."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    p = subprocess.run([python, "-c", code], capture_output=True, text=True,
                       timeout=timeout, env=env)
    if p.returncode != 0:
        pytest.fail(f"{python} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return p.stdout
