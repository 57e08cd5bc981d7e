"""Start Deskstream for real, as separate processes: the embedded `deskstream run`, or the
distributed set (`deskstream serve ...` per service on PostgreSQL + a Kafka-protocol broker).
Used by the e2e tests and by bench/."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.servers import free_port, log_tail

ROOT = Path(__file__).resolve().parents[2]


def deskstream(*args: str, env: dict[str, str], cwd: Path) -> str:
    """Run a one-shot CLI command; returns its last output line (keys and tokens are printed there)."""
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"deskstream {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout.strip().splitlines()[-1]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Deployment:
    """A running Deskstream: where to send tickets, where to read, credentials, processes."""

    env: dict[str, str]
    workdir: Path
    intake_url: str = ""
    query_url: str = ""
    api_key: str = ""
    agent_token: str = ""
    processes: dict[str, Process] = field(default_factory=dict)

    def start(self, name: str, args: list[str], port: int | None = None) -> Process:
        port = port or free_port()
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "services.cli",
                    *args,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, popen, log, port)
        self.processes[name] = process
        wait_ready(process)
        return process

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent_token}"}


def wait_ready(process: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited with {process.popen.returncode}:\n{log_tail(process.log)}"
            )
        try:
            if requests.get(f"{process.url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} not ready after {timeout}s:\n{log_tail(process.log)}")


def base_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKSTREAM_")}
    env["PYTHONPATH"] = str(ROOT)
    env["DESKSTREAM_LOG_LEVEL"] = os.environ.get("TEST_LOG_LEVEL", "WARNING")
    env.update({f"DESKSTREAM_{k.upper()}": v for k, v in settings.items()})
    return env


def _create_credentials(deployment: Deployment, *options: str) -> None:
    """An API key allowed from loopback and an admin agent's token, via the real CLI."""
    env, cwd = deployment.env, deployment.workdir
    deployment.api_key = deskstream(
        "apikey", "create", "--ip", "127.0.0.1", *options, env=env, cwd=cwd
    )
    admin = ("--email", "lead@example.com", "--name", "Lead", "--admin")
    deployment.agent_token = deskstream("agent", "create", *admin, *options, env=env, cwd=cwd)


def start_embedded(workdir: Path, *, smtp_url: str | None = None) -> Deployment:
    env = base_env(**({"smtp_url": smtp_url} if smtp_url else {}))
    data = str(workdir / "var")
    deployment = Deployment(env, workdir)
    deskstream("migrate", "--data-dir", data, env=env, cwd=workdir)
    _create_credentials(deployment, "--data-dir", data)
    process = deployment.start("embedded", ["run", "--data-dir", data])
    deployment.intake_url = deployment.query_url = process.url
    return deployment


DISTRIBUTED = ("intake", "query", "gateway", "routing", "sla", "notify", "relay")


def start_distributed(
    workdir: Path,
    *,
    database_url: str,
    bootstrap: str,
    smtp_url: str | None = None,
    fetch_max_wait_ms: int = 100,
) -> Deployment:
    settings = {
        "database_url": database_url,
        "kafka_bootstrap": bootstrap,
        "kafka_fetch_max_wait_ms": str(fetch_max_wait_ms),
    }
    if smtp_url:
        settings["smtp_url"] = smtp_url
    env = base_env(**settings)
    deployment = Deployment(env, workdir)
    deskstream("migrate", env=env, cwd=workdir)
    _create_credentials(deployment)
    for service in DISTRIBUTED:
        deployment.start(service, ["serve", service])
    deployment.intake_url = deployment.processes["intake"].url
    deployment.query_url = deployment.processes["query"].url
    return deployment
