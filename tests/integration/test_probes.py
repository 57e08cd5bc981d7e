"""/healthz, /readyz and /metrics: readiness says why it is not ready."""

from __future__ import annotations

from pathlib import Path

from libs.platform.settings import Settings
from services import migrations
from services.embedded import embedded_app
from services.platform import Platform


def test_not_ready_until_migrated_then_ready(tmp_path: Path) -> None:
    platform = Platform.build(Settings().with_data_dir(tmp_path))
    client = embedded_app(platform).test_client()
    assert client.get("/healthz").status_code == 200
    before = client.get("/readyz")
    assert before.status_code == 503
    assert "migrations" in before.json["problems"]
    migrations.upgrade(platform.engine)
    after = client.get("/readyz")
    assert after.status_code == 200, after.json
    platform.failures["notify"] = "10 dead letters in a row"
    stopped = client.get("/readyz")
    assert stopped.status_code == 503 and "notify" in stopped.json["problems"]["workers"]
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and b"deskstream_events_appended_total" in metrics.data
    platform.close()


def test_readyz_reports_an_unreachable_broker(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap=("127.0.0.1:1",)).with_data_dir(tmp_path)
    platform = Platform.build(settings)
    migrations.upgrade(platform.engine)
    response = embedded_app(platform).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["problems"]["broker"] == "broker unreachable"
    platform.close()
