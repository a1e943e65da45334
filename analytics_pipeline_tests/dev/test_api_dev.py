"""`analytics-pipeline dev` also starts the Dashboard API, prints the dashboard's URL with a demo
tenant's token that the API accepts, and stops the API and the embedded Redis on SIGINT."""

import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from analytics_pipeline.core.settings import PROJECT_DIR

from ..helpers import add_tenant, free_port

STARTUP_SECONDS = 120
SHUTDOWN_SECONDS = 60


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
@pytest.mark.timeout(STARTUP_SECONDS + SHUTDOWN_SECONDS + 60)
def test_dev_serves_the_dashboard_with_a_demo_token(db_url, engine, tmp_path):
    with engine.begin() as conn:
        add_tenant(conn, "demo-org")
    api_port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "ANALYTICS_HOME": str(tmp_path)}
    for name in ("REDIS_URL", "API_JWT_SECRET", "API_JWT_PUBLIC_KEY", "API_JWT_AUDIENCE"):
        env.pop(name, None)  # the embedded Redis and the local secret, as on a fresh checkout
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        command = subprocess.Popen(
            [sys.executable, "-c", "from analytics_pipeline.cli import main; main()",
             "dev", "--no-demo", "--port", str(free_port()), "--api-port", str(api_port)],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    children: list[int] = []
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        url = None
        while time.monotonic() < deadline:
            assert command.poll() is None, log_path.read_text(errors="replace")[-3000:]
            found = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+)/#token=(\S+)", log_path.read_text(errors="replace"))
            if found:
                try:
                    if requests.get(f"{found.group(1)}/readyz", timeout=5).json()["status"] == "ready":
                        url = found
                        break
                except requests.ConnectionError:
                    pass
            time.sleep(1)
        assert url, log_path.read_text(errors="replace")[-3000:]
        assert url.group(1) == f"http://127.0.0.1:{api_port}"
        kpis = requests.get(f"{url.group(1)}/v1/kpis", headers={"Authorization": f"Bearer {url.group(2)}"}, timeout=10)
        assert kpis.status_code == 200 and kpis.json()["tenant_id"] == "demo-org"
        assert (tmp_path / "redis" / "redis.sock").exists()  # the embedded Redis, under ANALYTICS_HOME

        children = [p.pid for p in psutil.Process(command.pid).children(recursive=True)]
        os.kill(command.pid, signal.SIGINT)
        command.wait(timeout=SHUTDOWN_SECONDS)
        deadline = time.monotonic() + 10
        while any(_running(p) for p in children):
            assert time.monotonic() < deadline, "a child of dev still runs"
            time.sleep(0.2)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url.group(1)}/healthz", timeout=5)
        assert not (tmp_path / "redis" / "redis.sock").exists()
    finally:
        for pid in [command.pid, *children]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        command.wait(timeout=30)
