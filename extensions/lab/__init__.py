"""sandfill part (work in progress)."""
