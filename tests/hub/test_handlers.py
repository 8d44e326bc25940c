"""``sandfill.hub.handlers``' scope rule for "My jobs", on a stand-in handler with the
scopes JupyterHub derives: the owner and an admin pass, another user gets 403 and the
handler's body never runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from jupyterhub.scopes import Scope, parse_scopes
from tornado import web

from sandfill.hub.handlers import refused_as_403


class FakeHandler:
    db = None
    request = type("R", (), {"path": "/hub/api/sandfill/users/x/jobs/7"})()

    def __init__(self, name: str, scopes: set[str]) -> None:
        self.current_user = type("U", (), {"name": name})()
        self.parsed_scopes = parse_scopes(scopes)
        self.expanded_scopes = scopes
        self.ran: list[str] = []

    @refused_as_403("servers")
    async def delete(self, user_name: str, job_id: str) -> str:
        self.ran.append(job_id)
        return f"cancelled {job_id}"


def call(h: FakeHandler, user: str, job: str = "7") -> Any:
    return asyncio.run(h.delete(user, job))


def test_the_owner_and_an_admin_pass() -> None:
    assert call(FakeHandler("sftest-ada", {"servers!user=sftest-ada"}), "sftest-ada") == "cancelled 7"
    admin = FakeHandler("root-admin", {"servers"})
    assert admin.parsed_scopes["servers"] == Scope.ALL
    assert call(admin, "sftest-bob") == "cancelled 7"


def test_another_user_gets_403_and_nothing_runs() -> None:
    bob = FakeHandler("sftest-bob", {"servers!user=sftest-bob"})
    for user in ("sftest-ada", "no-such-user"):  # the same answer whether the user exists or not
        with pytest.raises(web.HTTPError) as exc:
            call(bob, user)
        assert exc.value.status_code == 403 and f"{user}'s jobs" in (exc.value.log_message or "")
    assert bob.ran == []
