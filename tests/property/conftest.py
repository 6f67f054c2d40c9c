"""Hypothesis settings for the property suite.

The "ci" profile (the default) keeps the whole suite well under a minute on
two cores; "thorough" searches much harder. Select one with the
HYPOTHESIS_PROFILE environment variable::

    HYPOTHESIS_PROFILE=thorough python -m pytest tests/property
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import inmemory
import pytest
from hypothesis import settings

# Deadlines measure the machine, not the code: CI runs other jobs alongside.
settings.register_profile("ci", max_examples=30, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module", params=["handshake", "opened"])
def opening(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module (``pytestmark = pytest.mark.usefixtures("opening")``)
    once with connections opened by a handshake and once with connections
    that started open: both ways must behave the same."""
    inmemory.OPENING = request.param
    yield request.param
    inmemory.OPENING = "handshake"
