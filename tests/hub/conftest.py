"""The live hub's fixtures (``hub``, ``clean_servers``, ``browser_login``, ``rocks``, ...) are in
``tests/fixtures_hub.py``, a plugin of ``tests/conftest.py``, so that the lab extension's
browser tests (``tests/lab/``) use the same session hub."""
