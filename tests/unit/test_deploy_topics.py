"""Kafka topics are created by the deployment, not by the services (auto-creation is off in
production): the compose file and the Kubernetes guide must name every topic the code uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.events.catalog import all_topics

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("document", ["compose.yaml", "deploy/k8s/README.md"])
def test_the_deployment_creates_every_topic(document: str) -> None:
    text = (ROOT / document).read_text()
    if document.endswith("README.md"):  # the guide names each topic once and adds `.dlq`
        missing = [t for t in all_topics() if not t.endswith(".dlq") and f"`{t}`" not in text]
    else:
        missing = [t for t in all_topics() if t not in text.split()]
    assert missing == []
