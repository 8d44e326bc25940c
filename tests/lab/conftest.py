from __future__ import annotations

import pytest


@pytest.fixture
def jp_server_config(dask_cfg: dict[str, object]) -> dict[str, object]:
    return {"ServerApp": {"jpserver_extensions": {"sandfill.lab": True}}}
