from __future__ import annotations

from pathlib import Path

import pytest

ATLAS = Path("/work/shared/traces/LLNL-Atlas-2006-2.1-cln.swf.gz")


@pytest.fixture(scope="session")
def atlas():
    if not ATLAS.exists():
        pytest.skip("Atlas trace not available")
    from sandfill.policies.sim.trace import read_swf

    return read_swf(ATLAS)
