"""Shared pytest fixtures.

Every test session gets its own cache folder for regenerated built-in inputs (met episode, inventory,
regridded emissions), so tests never read or write the user's ~/.cache/airshed.
"""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_airshed_cache(tmp_path_factory):
    old = os.environ.get("AIRSHED_CACHE_DIR")
    os.environ["AIRSHED_CACHE_DIR"] = str(tmp_path_factory.mktemp("airshed_cache"))
    yield
    if old is None:
        os.environ.pop("AIRSHED_CACHE_DIR", None)
    else:
        os.environ["AIRSHED_CACHE_DIR"] = old
