"""Apache Kafka as the test broker: one KRaft node (broker and controller) from Maven Central's
jars, on free loopback ports, with its data in a directory that outlives the process.

Same interface as the old Tansu helper (start, stop, kill, restart, pause/resume,
create_topics, admin), so fixtures, contract and fault tests do not care which broker runs.
Records acknowledged with acks=all survive ``kill()``: Kafka writes them to the page cache
before it answers, and a killed process does not take the page cache with it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from tests.support.servers import (
    LOOPBACK,
    STOP_TIMEOUT_S,
    _ManagedProcess,
    _port_accepts,
    _Server,
    free_port,
)

_REPO = Path(__file__).resolve().parents[2]
_JARS_SCRIPT = _REPO / "scripts" / "kafka-jars.sh"
# The JVM on two shared cores: a small fixed heap, the serial collector and the C1 compiler
# only start a node in a few seconds and keep it near 350 MB of RSS.
_JVM_OPTIONS = ("-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
START_TIMEOUT_S = 90.0  # a cold JVM on a loaded two-core machine
_PROBE_TIMEOUT_MS = 2000

# kafka-python consumer-group settings for tests: a group forms and a dead member is noticed
# within seconds, not the 45 s of the defaults. Kafka answers a waiting fetch as soon as data
# arrives, so fetch_max_wait_ms is no latency floor here.
TEST_CONSUMER_SETTINGS: Mapping[str, int] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
    "max_poll_interval_ms": 10000,
    "fetch_max_wait_ms": 100,
}

_jars: str | None = None


def kafka_jars() -> str:
    """The directory of the broker's jars, fetched through Maven once per version."""
    global _jars
    if _jars is None:
        out = subprocess.run(
            ["bash", str(_JARS_SCRIPT)], check=True, capture_output=True, text=True
        ).stdout
        _jars = out.strip().splitlines()[-1]
    return _jars


def random_cluster_id() -> str:
    """What `StorageTool random-uuid` prints, without a JVM start of its own: 16 random bytes,
    base64url without padding, never starting with '-' (the storage tool would read it as an
    option; Kafka's own Uuid.randomUuid draws again in that case too)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaBroker(_Server):
    """One Apache Kafka node. Ports and data directory are kept across restarts, so clients
    reconnect and committed offsets and records are still there."""

    def __init__(self, *, log_dir: Path, start_timeout: float = START_TIMEOUT_S) -> None:
        self.port = free_port()
        self.controller_port = free_port()
        self._start_timeout = start_timeout
        self._data = Path(tempfile.mkdtemp(prefix="kafka-", dir=log_dir))
        self._process = _ManagedProcess("kafka", log_dir / f"kafka-{self.port}.log")
        self._formatted = False

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def marker(self) -> str:
        """A string in the broker process's command line that no other broker's has."""
        return str(self._properties())

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    @property
    def running(self) -> bool:
        return self._process.running

    def start(self) -> float:
        """Launch the node and return the seconds until it answered a Metadata request."""
        if not self._formatted:
            self._format_storage()
        self._process.launch(self._java("kafka.Kafka", str(self._properties())), self._env())
        return self._process.wait_ready(self._answers_metadata, self._start_timeout)

    def stop(self) -> None:
        """Controlled shutdown (SIGTERM), escalating to SIGKILL after a timeout."""
        self._process.terminate(STOP_TIMEOUT_S * 3)

    def kill(self) -> None:
        """Crash the node (SIGKILL)."""
        self._process.kill(STOP_TIMEOUT_S)

    def restart(self, hard: bool) -> float:
        """Stop (SIGKILL when ``hard``) and start on the same ports and data."""
        if hard:
            self.kill()
        else:
            self.stop()
        return self.start()

    def pause(self) -> None:
        """Freeze the node (SIGSTOP): connections stay open but nothing is answered."""
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._process.send_signal(signal.SIGCONT)

    def discard(self) -> None:
        """Stop and delete the data directory."""
        self.stop()
        shutil.rmtree(self._data, ignore_errors=True)

    def create_topics(self, names: Iterable[str], partitions: int = 3) -> None:
        """Create topics, ignoring those that already exist (whatever their partition count)."""
        wanted = {name: {"num_partitions": partitions, "replication_factor": 1} for name in names}
        if not wanted:
            return
        with self.admin() as admin:
            result = admin.create_topics(wanted, timeout_ms=10_000, raise_errors=False)
        failures = [
            topic
            for topic in result["topics"]
            if topic["error_code"] not in (0, TopicAlreadyExistsError.errno)
        ]
        if failures:
            raise RuntimeError(f"creating topics on {self.bootstrap} failed: {failures}")

    @contextlib.contextmanager
    def admin(self, timeout_ms: int = 10_000) -> Iterator[KafkaAdminClient]:
        """A short-lived admin client; ``timeout_ms`` bounds bootstrapping and each request."""
        client = KafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id="deskstream-test-support",
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )
        try:
            yield client
        finally:
            client.close()

    def _java(self, main_class: str, *args: str) -> list[str]:
        return ["java", *_JVM_OPTIONS, "-cp", f"{kafka_jars()}/*", main_class, *args]

    def _env(self) -> dict[str, str]:
        # A developer's KAFKA_OPTS or JAVA_TOOL_OPTIONS must not reconfigure the test broker.
        drop = {"KAFKA_OPTS", "KAFKA_HEAP_OPTS", "JAVA_TOOL_OPTIONS", "CLASSPATH"}
        return {k: v for k, v in os.environ.items() if k not in drop}

    def _properties(self) -> Path:
        path = self._data / "server.properties"
        if not path.exists():
            path.write_text(
                "\n".join(
                    [
                        "process.roles=broker,controller",
                        "node.id=1",
                        f"controller.quorum.voters=1@{LOOPBACK}:{self.controller_port}",
                        f"listeners=PLAINTEXT://{self.bootstrap},"
                        f"CONTROLLER://{LOOPBACK}:{self.controller_port}",
                        f"advertised.listeners=PLAINTEXT://{self.bootstrap}",
                        "controller.listener.names=CONTROLLER",
                        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                        "inter.broker.listener.name=PLAINTEXT",
                        f"log.dirs={self._data / 'log'}",
                        "num.partitions=3",
                        "offsets.topic.replication.factor=1",
                        "offsets.topic.num.partitions=3",
                        "transaction.state.log.replication.factor=1",
                        "transaction.state.log.min.isr=1",
                        # no 3 s wait before a new group's first assignment
                        "group.initial.rebalance.delay.ms=0",
                        # production disables it too: tests create their topics
                        "auto.create.topics.enable=false",
                        "",
                    ]
                )
            )
        return path

    def _format_storage(self) -> None:
        properties = str(self._properties())
        cluster_id = random_cluster_id()
        formatted = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", properties),
            capture_output=True,
            text=True,
            env=self._env(),
        )
        if formatted.returncode != 0:
            output = (formatted.stdout + formatted.stderr)[-2000:]
            raise RuntimeError(f"formatting Kafka storage failed:\n{output}")
        self._formatted = True

    def _answers_metadata(self) -> bool:
        if not _port_accepts(self.port):
            return False
        try:
            with self.admin(timeout_ms=_PROBE_TIMEOUT_MS) as admin:
                admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
