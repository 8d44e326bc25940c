"""The hub against the real devcluster: spawn, injection attempts, the port route, isolation
between users, a slurmctld outage, ended jobs, a hub restart, pending information and the
scheduler load of polling."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from sandfill.dev.devcluster import DevCluster
from sandfill.dev.testing import TestSlurm, queue_rpcs
from sandfill.slurm.commands import wait_until

pytestmark = pytest.mark.slurm

Hub = Any  # the conftest's Hub helper (importlib mode: not importable by name)


def test_spawn_reach_log_walltime_and_stop(clean_servers: Hub, slurm: TestSlurm) -> None:
    hub = clean_servers
    job = hub.spawn("sftest-ada", {"profile": "small"})
    job_id = job["job_id"]
    assert job["state"] == "RUNNING" and job["partition"] == "interactive"
    assert 0 < job["time_left"] <= 2 * 3600
    st = slurm.squeue_sync([job_id])[job_id]
    assert st.user == "sftest-ada" and st.partition == "interactive" and st.time_limit == 2 * 3600
    assert hub.reach("sftest-ada") == 200

    status, log = hub.api("GET", "/sandfill/users/sftest-ada/server/log", "sftest-ada")
    assert status == 200 and log["job_id"] == job_id
    assert f"sandfill: notebook server job {job_id}" in log["text"]
    browser = hub.browser_session("sftest-ada")
    status, page = browser.get("/hub/sandfill/job/sftest-ada")
    assert status == 200 and f'id="sandfill-job-id">{job_id}<' in page and "sandfill-time-left" in page

    # the server's walltime extension (what the Lab plugin asks)
    status, body = hub.get("/user/sftest-ada/sandfill/walltime", "sftest-ada")
    assert status == 200, body
    import json

    info = json.loads(body)
    assert info["job_id"] == job_id and 0 < info["seconds_left"] <= 7200 and info["warn_before"] == 600
    assert info["warning"] is False

    hub.stop("sftest-ada")
    wait_until("the job to end", lambda: (s := slurm.squeue_sync([job_id]).get(job_id)) is None or s.ended, timeout=30)
    _, job = hub.job("sftest-ada")
    assert job["job_id"] is None
    assert job["last_end"]["job_id"] == job_id and job["last_end"]["state"] == "CANCELLED" and job["last_end"]["stopped_by_hub"]


BAD_OPTIONS = [
    ({"cpus": "1\n#SBATCH --uid=0"}, "cpus"),
    ({"memory": "1G\n#SBATCH --partition=batch"}, "memory"),
    ({"walltime": "01:00:00; touch /tmp/sandfill-pwned"}, "walltime"),
    ({"partition": "#SBATCH --qos=admin"}, "partition"),
    ({"partition": "gpu"}, "partition"),
    ({"account": "$(id)"}, "account"),
    ({"profile": "`id`"}, "profile"),
    ({"cpus": "-4"}, "cpus"),
    ({"cpus": "100000"}, "cpus"),
    ({"memory": "999999G"}, "memory"),
    ({"walltime": "9999:00:00"}, "walltime"),
    ({"req_options": "--uid=0"}, "req_options"),
    ({"cmd": "/bin/sh -c id"}, "cmd"),
]


def test_injection_attempts_are_rejected_and_submit_nothing(clean_servers: Hub, slurm: TestSlurm) -> None:
    hub = clean_servers
    user = "sftest-bob"
    queue_before, acct_before = slurm.user_job_ids_sync([user], "all"), slurm.sacct_user_ids_sync(user, "now-1days")
    browser = hub.browser_session(user)
    for options, field in BAD_OPTIONS:
        # the REST API (user_options)
        status, body = hub.api("POST", f"/users/{user}/server", user, options)
        assert status == 400, (options, status, body)
        assert body["message"].startswith(f"{field}: "), body
        wait_until("the failed spawn to settle", lambda: hub.server(user) is None or not hub.server(user)["pending"], timeout=20)
        # the HTML form (what the browser posts)
        form = {"profile": "small", "cpus": "1", "memory": "1G", "walltime": "01:00:00", "partition": "interactive"}
        form.update(options)
        status, html = browser.post(f"/hub/spawn/{user}", form)
        assert status == 400, (options, status, html[-800:])
        assert f"{field}: " in html and "sandfill-form" in html  # the form again, with the error
    assert slurm.user_job_ids_sync([user], "all") == queue_before
    assert slurm.sacct_user_ids_sync(user, "now-1days") == acct_before


def test_port_route_accepts_only_the_port_from_the_servers_own_token(clean_servers: Hub, server_token_of: Callable[[str], str]) -> None:
    hub = clean_servers
    hub.spawn("sftest-cy")
    job_before = hub.job("sftest-cy")[1]
    own = server_token_of("sftest-cy")
    post = hub.proc.api
    # not the server's token (the user's own API token): refused
    status, body = post("POST", "/batchspawner", hub.tokens["sftest-cy"], {"port": 1234})
    assert status == 403, body
    # another key next to the port: refused, naming it (the stock handler would set it)
    for payload, words in [
        ({"port": 1234, "ip": "203.0.113.9"}, "rejected key(s): ip"),
        ({"api_token": "x"}, "rejected key(s): api_token"),
        ({"port": 1234, "exec_prefix": "sh -c id"}, "exec_prefix"),
        ({"port": "1234"}, "not a TCP port"),
        ({"port": 0}, "not a TCP port"),
        ({"port": 70000}, "not a TCP port"),
        ({"port": True}, "not a TCP port"),
        ([1234], "JSON object"),
    ]:
        status, body = post("POST", "/batchspawner", own, payload)
        assert status == 400 and words in body["message"], (payload, status, body)
    # a valid port, but the server is running already: nothing may change now
    status, body = post("POST", "/batchspawner", own, {"port": 1234})
    assert status == 409, body
    assert hub.reach("sftest-cy") == 200
    assert hub.server("sftest-cy")["url"] == hub.user_url("sftest-cy")  # on cy's own subdomain
    assert hub.job("sftest-cy")[1]["job_id"] == job_before["job_id"]


def test_port_route_refuses_another_servers_token_and_a_login_cookie_alone(clean_servers: Hub, server_token_of: Callable[[str], str]) -> None:
    """The port route with a token of another user's server, or with a logged-in browser's
    cookie (with and without its XSRF token) and no token: refused, and neither server's
    route, job or reachability changes."""
    hub = clean_servers
    users = ("sftest-cy", "sftest-ada")
    for user in users:
        hub.spawn(user)
    before = {u: (hub.server(u)["url"], hub.job(u)[1]["job_id"]) for u in users}
    # ada's server's token: it can only ever name ada's own server, which is not starting
    status, body = hub.proc.api("POST", "/batchspawner", server_token_of("sftest-ada"), {"port": 1234})
    assert status == 409 and "not starting" in body["message"], body
    browser = hub.browser_session("sftest-cy")
    for xsrf in (True, False):
        status, text = browser.post_json("/hub/api/batchspawner", {"port": 1234}, xsrf=xsrf)
        assert status == 403, (xsrf, status, text)
    assert {u: (hub.server(u)["url"], hub.job(u)[1]["job_id"]) for u in users} == before
    assert all(hub.reach(u) == 200 for u in users)


def test_users_cannot_read_or_touch_each_others_server(clean_servers: Hub) -> None:
    hub = clean_servers
    hub.spawn("sftest-ada")
    assert hub.api("GET", "/sandfill/users/sftest-ada/server/log", "sftest-ada")[0] == 200
    for path in ("/sandfill/users/sftest-ada/server/log", "/sandfill/users/sftest-ada/server/job"):
        status, _ = hub.api("GET", path, "sftest-dee")
        assert status in (403, 404), path
    assert hub.browser_session("sftest-dee").get("/hub/sandfill/job/sftest-ada")[0] in (403, 404)
    assert hub.reach("sftest-ada", as_user="sftest-dee") in (403, 404)
    assert hub.api("DELETE", "/users/sftest-ada/server", "sftest-dee")[0] in (403, 404)
    assert hub.server("sftest-ada") is not None and hub.reach("sftest-ada") == 200


def test_slurmctld_outage_is_unknown_not_gone(clean_servers: Hub, devcluster: DevCluster, slurm: TestSlurm) -> None:
    hub = clean_servers
    users = ("sftest-ada", "sftest-bob")
    jobs = {u: hub.spawn(u)["job_id"] for u in users}
    devcluster.stop_daemon("slurmctld")
    try:
        # the hub notices the outage (the jobs are UNKNOWN) …
        wait_until("the hub to see the outage", lambda: all(hub.job(u)[1]["state"] == "UNKNOWN" for u in users), timeout=30)
        # … and for a minute (30 polls at poll_interval=2 s) keeps listing and reaching them:
        # checked every 2 s until the minute is over (a falsy round is always before t_end,
        # so the wait cannot time out; a failed check fails the test at once)
        t_end = time.monotonic() + 60

        def still_served_and_minute_over() -> bool:
            for u in users:
                s = hub.server(u)
                assert s is not None and s["ready"], f"{u}'s server was dropped during the outage"
                assert hub.reach(u) == 200
            return time.monotonic() >= t_end

        wait_until("a minute of the outage", still_served_and_minute_over, timeout=90, interval=2)
    finally:
        devcluster.start_daemon("slurmctld")
    wait_until("the jobs to be known again", lambda: all(hub.job(u)[1]["state"] == "RUNNING" for u in users), timeout=60)
    for u in users:
        assert hub.server(u) is not None and hub.reach(u) == 200
        assert hub.job(u)[1]["job_id"] == jobs[u]
    assert all(s.running for s in slurm.squeue_sync(list(jobs.values())).values())


def test_ended_jobs_are_reported_with_reason_and_log_tail(clean_servers: Hub, slurm: TestSlurm) -> None:
    hub = clean_servers
    # a 1-minute walltime: the walltime warning (10 min before the end) is on at once
    short = hub.spawn("sftest-cy", {"profile": "custom", "cpus": "1", "memory": "1G", "walltime": "00:01:00"})
    status, body = hub.get("/user/sftest-cy/sandfill/walltime", "sftest-cy")
    import json

    info = json.loads(body)
    assert status == 200 and info["warning"] is True and "Save your work" in info["message"]

    # scancel from outside the hub
    job_id = hub.spawn("sftest-bob")["job_id"]
    slurm.cancel_sync([job_id], check=True)
    wait_until("the hub to report bob's server stopped", lambda: hub.server("sftest-bob") is None, timeout=30)
    last = hub.job("sftest-bob")[1]["last_end"]
    assert last["job_id"] == job_id and last["state"] == "CANCELLED" and not last["stopped_by_hub"]
    assert f"notebook server job {job_id}" in last["log_tail"]

    # the walltime ends
    wait_until("cy's server to reach its walltime", lambda: hub.server("sftest-cy") is None, timeout=150, interval=1)
    last = hub.job("sftest-cy")[1]["last_end"]
    assert last["job_id"] == short["job_id"] and last["state"] == "TIMEOUT"
    assert "notebook server job" in last["log_tail"]
    status, page = hub.browser_session("sftest-cy").get("/hub/sandfill/job/sftest-cy")
    assert status == 200 and "TIMEOUT" in page


def test_node_failure_is_reported_with_reason(clean_servers: Hub, slurm: TestSlurm, devcluster: DevCluster) -> None:
    """The node under a server dies (slurmd and every process on it): once Slurm declares the
    node down the hub reports the server stopped, with NODE_FAIL and the log tail."""
    hub = clean_servers
    job_id = hub.spawn("sftest-dee")["job_id"]
    node = slurm.squeue_sync([job_id])[job_id].nodes
    assert node
    try:
        assert devcluster.kill_node(node) >= 1
        wait_until("the hub to report dee's server stopped", lambda: hub.server("sftest-dee") is None, timeout=150, interval=1)
        last = hub.job("sftest-dee")[1]["last_end"]
        # Slurm says NODE_FAIL once the node is declared down, or FAILED/JobLaunchFailure when
        # the dead stepd is noticed first: the hub reports what Slurm says, with the reason
        assert last["job_id"] == job_id and last["state"] in {"NODE_FAIL", "FAILED"}, last
        assert last["state"] == "NODE_FAIL" or last["reason"], last
        assert "notebook server job" in last["log_tail"]
    finally:
        devcluster.start_daemon(f"slurmd-{node}")
        slurm.resume_node_sync(node)
        wait_until(f"{node} back in service", lambda: slurm.node_state_sync(node) in {"idle", "mix", "alloc"}, timeout=60)


def test_hub_restart_keeps_running_servers(clean_servers: Hub) -> None:
    hub = clean_servers
    users = ("sftest-ada", "sftest-dee")
    jobs = {u: hub.spawn(u)["job_id"] for u in users}
    hub.proc.restart()
    for u in users:
        hub.wait_ready(u, timeout=60)  # the hub's start-up check polled the job through the shared poller
        assert hub.reach(u) == 200
        job = hub.job(u)[1]
        assert job["job_id"] == jobs[u] and job["state"] == "RUNNING"


def test_pending_information_cancel_and_constant_queue_load(
    clean_servers: Hub, rocks: Callable[[], list[str]], slurm: TestSlurm
) -> None:
    hub = clean_servers
    rocks()
    hub.spawn("sftest-dee", wait=False)

    def informative(e: dict[str, Any]) -> bool:
        m = e.get("message", "")
        return "PENDING" in m and "position 1 of 1 pending in interactive" in m and "estimated start" in m and "not yet" not in m

    event, seen = hub.progress("sftest-dee", informative, timeout=60)
    job_id = hub.job("sftest-dee")[1]["job_id"]
    assert f"Job {job_id} is PENDING (Resources)" in event["message"] or f"Job {job_id} is PENDING (Priority)" in event["message"]
    assert 'class="sandfill-start"' in event["html_message"]

    # squeue RPCs per window with 1 pending server, then with 3: the same shared poller
    def window(seconds: float = 15) -> int:
        before = queue_rpcs(slurm.sdiag_rpcs_sync())
        time.sleep(seconds)  # measurement window
        return queue_rpcs(slurm.sdiag_rpcs_sync()) - before

    one = window()
    for u in ("sftest-bob", "sftest-cy"):
        hub.spawn(u, wait=False)
    wait_until("3 servers pending", lambda: all((hub.job(u)[1]["state"] == "PENDING") for u in ("sftest-bob", "sftest-cy", "sftest-dee")), timeout=30)
    three = window()
    assert three <= max(one * 1.5, one + 5), f"squeue RPCs grew with pending servers: {one} → {three} per 15 s"

    # cancel while pending: the Slurm job is cancelled
    hub.stop("sftest-dee")
    wait_until("the pending job to be cancelled", lambda: (s := slurm.squeue_sync([job_id]).get(job_id)) is None or s.state == "CANCELLED", timeout=30)


# ---- hardening (#11) -----------------------------------------------------------------------


def test_sbatch_sees_none_of_the_hubs_secrets_and_the_job_log_is_private(clean_servers: Hub, hub_faults: Any) -> None:
    import os
    import stat

    hub = clean_servers
    secrets = hub_faults.secrets
    user = "sftest-ada"
    job = hub.spawn(user, {"profile": "small"})
    assert hub.reach(user) == 200  # the server started with only the whitelisted variables
    env = hub_faults.sbatch_envs(user)[-1]  # what `sudo -E -u ada sbatch` ran with
    leaked = sorted(k for k, v in env.items() if k in secrets or any(s in v for s in secrets.values()))
    assert not leaked, leaked
    assert env["JUPYTERHUB_API_TOKEN"] and env["SLURM_CONF"] and env["JUPYTERHUB_USER"] == user
    assert not [k for k in env if k.startswith(("CONFIGPROXY", "SANDFILL_HUB"))]
    # the job's log (made by slurmstepd as the user) is private
    status, log = hub.api("GET", f"/sandfill/users/{user}/server/log", user)
    assert status == 200 and log["job_id"] == job["job_id"] and log["path"]
    mode = stat.S_IMODE(os.stat(log["path"]).st_mode)
    assert mode & 0o077 == 0, oct(mode)


def test_a_refused_spawn_does_not_poison_the_next_one_even_after_a_restart(clean_servers: Hub, slurm: TestSlurm) -> None:
    hub = clean_servers
    user = "sftest-bob"
    bad = {"cpus": "1\n#SBATCH --uid=0"}

    def refused() -> None:
        status, body = hub.api("POST", f"/users/{user}/server", user, bad)
        assert status == 400 and body["message"].startswith("cpus: "), body
        wait_until("the failed spawn to settle", lambda: hub.server(user) is None or not hub.server(user)["pending"], timeout=20)

    def spawns_with_defaults() -> None:
        status, body = hub.api("POST", f"/users/{user}/server", user, {})  # no options: the saved ones
        assert status in (201, 202), (status, body)
        hub.wait_ready(user)
        job = hub.job(user)[1]
        assert job["request"]["profile"] == "small" and job["request"]["cpus"] == 1, job
        hub.stop(user)

    refused()
    spawns_with_defaults()
    refused()
    hub.proc.restart()  # JupyterHub keeps user_options in its database
    spawns_with_defaults()


def test_a_failed_scancel_keeps_the_job_tracked_until_it_is_cancelled(clean_servers: Hub, hub_faults: Any, slurm: TestSlurm) -> None:
    hub = clean_servers
    user = "sftest-cy"
    job_id = hub.spawn(user)["job_id"]
    hub_faults.switch("scancel-fail", True)
    hub.stop(user)  # JupyterHub lets the server go …
    job = hub.job(user)[1]
    assert job["orphans"] == [job_id] and "could not be cancelled yet" in job["orphan_message"], job
    assert slurm.squeue_sync([job_id])[job_id].running  # … the job still runs, and is tracked
    # no second server while it runs
    status, body = hub.api("POST", f"/users/{user}/server", user, {"profile": "small"})
    if status in (201, 202):  # the refusal comes from start(): JupyterHub reports it on the server
        wait_until("the refused start to settle", lambda: hub.server(user) is None, timeout=30)
    assert slurm.user_job_ids_sync([user]) == [job_id]
    # … and it is kept across a hub restart, then cancelled once scancel works again
    hub.proc.restart()
    assert hub.job(user)[1]["orphans"] == [job_id]
    hub_faults.switch("scancel-fail", False)
    wait_until("the orphan to be cancelled", lambda: (s := slurm.squeue_sync([job_id]).get(job_id)) is None or s.ended, timeout=90)
    wait_until("the hub to forget the orphan", lambda: hub.job(user)[1]["orphans"] == [], timeout=90)
    hub.spawn(user)  # and the user can start again


def test_a_hub_restart_while_a_spawn_is_pending_cancels_its_job_and_tells_the_user(
    clean_servers: Hub, rocks: Callable[[], list[str]], slurm: TestSlurm
) -> None:
    hub = clean_servers
    user = "sftest-bob"
    rock_ids = rocks()  # the cluster is full: the server job stays PENDING
    hub.spawn(user, wait=False)
    job = wait_until("the server job to be pending", lambda: (j := hub.job(user)[1])["state"] == "PENDING" and j, timeout=30)
    job_id = job["job_id"]
    hub.proc.restart()  # JupyterHub drops a pending spawn at start-up, without stop()
    wait_until("the dropped job to be cancelled", lambda: (s := slurm.squeue_sync([job_id]).get(job_id)) is None or s.ended, timeout=60)
    wait_until("the hub to forget the pending server", lambda: hub.server(user) is None, timeout=30)
    job = hub.job(user)[1]
    assert job["job_id"] is None and job["last_end"]["job_id"] == job_id, job
    assert "hub restarted while your server was starting" in job["last_end"]["why"], job
    wait_until("the hub to have nothing left to cancel", lambda: hub.job(user)[1]["orphans"] == [], timeout=60)
    assert slurm.user_job_ids_sync([user]) == []  # no job of the user's left behind
    slurm.cancel_sync(rock_ids)
    assert hub.spawn(user)["state"] == "RUNNING"  # and the next spawn works
    assert hub.reach(user) == 200


def test_a_job_queued_by_a_timed_out_sbatch_is_adopted(clean_servers: Hub, hub_faults: Any, slurm: TestSlurm) -> None:
    hub = clean_servers
    user = "sftest-dee"
    hub_faults.switch(f"sbatch-hang-{user}", True)  # sbatch queues the job, then never answers
    status, body = hub.api("POST", f"/users/{user}/server", user, {"profile": "small"})
    assert status in (201, 202), body
    hub_faults.switch(f"sbatch-hang-{user}", False)
    hub.wait_ready(user, timeout=120)
    job = hub.job(user)[1]
    assert slurm.user_job_ids_sync([user]) == [job["job_id"]]  # one job, and it is the server's
    assert hub.reach(user) == 200


def test_other_users_get_nothing_of_a_servers_job_or_log(clean_servers: Hub) -> None:
    hub = clean_servers
    job_id = hub.spawn("sftest-ada")["job_id"]
    own = hub.api("GET", "/sandfill/users/sftest-ada/server/log", "sftest-ada")[1]
    # what ada's job would show: its log path and text, its id as the API and the page give it
    marks = [own["path"], "notebook server job", f"'job_id': '{job_id}'", f'sandfill-job-id">{job_id}<', "jupyterhub-sftest-ada"]

    def leaks(body: object) -> bool:
        return any(m in str(body) for m in marks)

    for path in ("/sandfill/users/sftest-ada/server/log", "/sandfill/users/sftest-ada/server/job", "/users/sftest-ada"):
        status, body = hub.api("GET", path, "sftest-dee")
        assert status in (403, 404) and not leaks(body), (path, status, body)
    status, page = hub.browser_session("sftest-dee").get("/hub/sandfill/job/sftest-ada")
    assert status in (403, 404) and not leaks(page)
    status, body = hub.get("/user/sftest-ada/api/status", "sftest-dee")
    assert status in (302, 403, 404) and not leaks(body)


def test_html_in_every_form_field_comes_back_escaped(clean_servers: Hub, slurm: TestSlurm) -> None:
    hub = clean_servers
    user = "sftest-bob"
    before = slurm.user_job_ids_sync([user], "all")
    browser = hub.browser_session(user)
    payload = '<img src=x onerror="alert(1)">'
    for field in ("profile", "cpus", "memory", "walltime", "partition", "account"):
        form = {"profile": "small", "cpus": "1", "memory": "1G", "walltime": "01:00:00", "partition": "interactive"}
        form[field] = payload
        status, html = browser.post(f"/hub/spawn/{user}", form)
        assert status == 400, (field, status, html[-800:])
        assert f"{field}: " in html and "<img src=x" not in html, field
        assert "&lt;img src=x" in html, field
    assert slurm.user_job_ids_sync([user], "all") == before
