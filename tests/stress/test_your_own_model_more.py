"""The families of tests/integration/test_your_own_model.py that `make test` leaves out (a
multiclass LightGBM; a regressor; an onnx.helper graph with its own output name), through
the very same test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rendezvous.settings import Settings
from tests import families
from tests.integration.test_your_own_model import (
    IN_MAKE_TEST,
    Project,
    running_project,
    test_a_users_model_from_onnx_file_to_live_results,
)

pytestmark = pytest.mark.integration

__all__ = ["test_a_users_model_from_onnx_file_to_live_results"]


@pytest.fixture(params=[b.__name__ for b in families.ALL if b.__name__ not in IN_MAKE_TEST])
def project(request: pytest.FixtureRequest, settings: Settings,
            tmp_path: Path) -> Iterator[Project]:
    """A family's primary and canary imported into a fresh project, and ``up`` running."""
    yield from running_project(request.param, settings, tmp_path)
