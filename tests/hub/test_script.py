"""The batch script's own safety lines (the rendering itself is tested in test_form.py)."""

from __future__ import annotations

from sandfill.hub.script import DEFAULT_TEMPLATE


def test_the_script_makes_every_file_of_the_job_private() -> None:
    lines = DEFAULT_TEMPLATE.splitlines()
    assert "umask 077" in lines
    assert lines.index("umask 077") < next(i for i, line in enumerate(lines) if line.startswith("exec "))
