"""Shared test fixtures: every backend-sensitive test runs on both backends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferguard import native_available

FIXTURES = Path(__file__).parent / "fixtures"
UPSTREAM = FIXTURES / "lmcache-0.5.6"

BACKENDS = ["native", "python"]


def pytest_sessionstart(session: pytest.Session) -> None:
    # CI sets this so that a broken build cannot silently test the Python path twice.
    if os.environ.get("INFERGUARD_REQUIRE_NATIVE") == "1" and not native_available():
        raise pytest.UsageError("INFERGUARD_REQUIRE_NATIVE=1 but inferguard._core is not built")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test once per backend; the env switch is set too, as users would set it."""
    name: str = request.param
    if name == "native" and not native_available():
        pytest.skip("native backend not built")
    if name == "python":
        monkeypatch.setenv("INFERGUARD_NO_NATIVE", "1")
    else:
        monkeypatch.delenv("INFERGUARD_NO_NATIVE", raising=False)
    yield name
