"""Suite-wide test settings.

Hypothesis runs a lean profile by default (the machine has two cores shared by the whole
suite); HYPOTHESIS_PROFILE=thorough asks for more examples. Every test gets its own data
directory so nothing is written to the user's real ledger.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The local Bluesky network fixture (`localnet`) for the bot's end-to-end tests.
pytest_plugins = ["tests.localnet.plugin"]

settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def isolated_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point KLIPPFISK_DATA_DIR at a fresh directory for each test."""
    data_dir = tmp_path_factory.mktemp("klippfisk-data")
    monkeypatch.setenv("KLIPPFISK_DATA_DIR", str(data_dir))
    yield data_dir
