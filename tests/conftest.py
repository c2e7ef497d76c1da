"""Suite-wide check (serving): no tritonserver or python-backend stub started by the tests may outlive them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def no_triton_process_survives():
    """After the whole session, every process group of a server started in this process must be empty."""
    yield
    from sessrec_course.serving.server import surviving_server_processes

    leftovers = surviving_server_processes()
    assert not leftovers, f"tritonserver / stub processes survived the test suite: {leftovers}"
