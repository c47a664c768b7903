"""Test parameters for the backends (the node fixtures are in tests/conftest.py)."""

import pytest


def _docker_reason() -> str | None:
    from harness.images import DockerUnavailable, preflight
    from harness.tools import ToolMissing

    try:
        preflight()
    except DockerUnavailable as exc:
        return f"no Docker engine: {exc}"
    except ToolMissing as exc:
        return str(exc)
    return None


_DOCKER = _docker_reason()
DOCKER = pytest.param(
    "docker",
    marks=[pytest.mark.slow, pytest.mark.skipif(_DOCKER is not None, reason=str(_DOCKER))],
)
"""The docker backend as a test parameter: slow, and skipped (with the reason) without an engine
or the tools to build its images."""
BACKEND_PARAMS = ["local", DOCKER]
"""Backends to run a test under."""


def no_fuse() -> str | None:
    """Why losefs cannot mount here (None: it can)."""
    from harness.cluster.power import preflight as power_preflight
    from harness.systems.base import Unsupported

    try:
        power_preflight()
    except Unsupported as exc:
        return str(exc)
    return None
