"""Session-wide test settings: generated datasets are cached in a temporary folder, not ~/.cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    old = os.environ.get("HASHGUARD_CACHE")
    os.environ["HASHGUARD_CACHE"] = str(tmp_path_factory.mktemp("hashguard-cache"))
    yield
    if old is None:
        os.environ.pop("HASHGUARD_CACHE", None)
    else:
        os.environ["HASHGUARD_CACHE"] = old
