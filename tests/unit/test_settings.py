"""Settings from an explicit environment mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.platform.settings import Settings


def test_empty_environment_gives_the_embedded_backend() -> None:
    settings = Settings.from_env({})

    assert settings.backend == "embedded"
    assert settings.kafka_bootstrap == ()
    assert settings.database_url == f"sqlite:///{Path('var').resolve()}/deskstream.db"
    assert settings.smtp_url is None
    assert settings.otlp_endpoint is None
    assert settings.log_level == "INFO"
    assert settings.data_dir == Path("var")
    assert settings.maildrop_dir == Path("var") / "maildrop"
    assert settings.secret_key == Settings().secret_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a:1, b:2", ("a:1", "b:2")),
        ("broker:9092", ("broker:9092",)),
        (" a:1 ,, b:2 , ", ("a:1", "b:2")),
    ],
)
def test_kafka_bootstrap_selects_the_kafka_backend(raw: str, expected: tuple[str, ...]) -> None:
    settings = Settings.from_env({"DESKSTREAM_KAFKA_BOOTSTRAP": raw})

    assert settings.kafka_bootstrap == expected
    assert settings.backend == "kafka"


@pytest.mark.parametrize("raw", ["", " , ", ","])
def test_blank_kafka_bootstrap_stays_embedded(raw: str) -> None:
    settings = Settings.from_env({"DESKSTREAM_KAFKA_BOOTSTRAP": raw})
    assert settings.kafka_bootstrap == ()
    assert settings.backend == "embedded"


def test_environment_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "DESKSTREAM_DATABASE_URL": "postgresql+psycopg://u:p@db/desk",
            "DESKSTREAM_SMTP_URL": "smtp://mail:25",
            "DESKSTREAM_SECRET_KEY": "s3cr3t-value",
            "DESKSTREAM_OTLP_ENDPOINT": "http://otel:4318/v1/traces",
            "DESKSTREAM_LOG_LEVEL": "debug",
            "DESKSTREAM_DATA_DIR": "/srv/desk",
            "DESKSTREAM_KAFKA_FETCH_MAX_WAIT_MS": "250",
            "DESKSTREAM_POLL_INTERVAL_S": "0.5",
            "DESKSTREAM_HELPDESK_EMAIL": "help@example.com",
            "UNRELATED": "ignored",
        }
    )

    assert settings.database_url == "postgresql+psycopg://u:p@db/desk"
    assert settings.smtp_url == "smtp://mail:25"
    assert settings.secret_key == "s3cr3t-value"
    assert settings.otlp_endpoint == "http://otel:4318/v1/traces"
    assert settings.log_level == "DEBUG"
    assert settings.data_dir == Path("/srv/desk")
    assert settings.kafka_fetch_max_wait_ms == 250
    assert settings.poll_interval_s == 0.5
    assert settings.helpdesk_email == "help@example.com"


def test_data_dir_moves_the_default_sqlite_file() -> None:
    settings = Settings.from_env({"DESKSTREAM_DATA_DIR": "/srv/desk"})
    assert settings.database_url == "sqlite:////srv/desk/deskstream.db"


def test_empty_values_count_as_unset() -> None:
    settings = Settings.from_env({"DESKSTREAM_SMTP_URL": "", "DESKSTREAM_SECRET_KEY": ""})
    assert settings.smtp_url is None
    assert settings.secret_key == Settings().secret_key


def test_secret_key_is_not_in_repr() -> None:
    settings = Settings.from_env({"DESKSTREAM_SECRET_KEY": "hunter2-very-secret"})
    assert "hunter2-very-secret" not in repr(settings)
    assert "hunter2-very-secret" not in str(settings)


def test_with_data_dir_relocates_sqlite_only(tmp_path: Path) -> None:
    sqlite = Settings().with_data_dir(tmp_path)
    assert sqlite.database_url == f"sqlite:///{(tmp_path / 'deskstream.db').resolve()}"
    assert sqlite.data_dir == tmp_path

    postgres = Settings(database_url="postgresql+psycopg://db/x").with_data_dir(tmp_path)
    assert postgres.database_url == "postgresql+psycopg://db/x"


def test_credential_guessing_limits_are_read_and_zero_turns_locking_off() -> None:
    settings = Settings.from_env(
        {
            "DESKSTREAM_AUTH_FAILURE_LIMIT": "0",
            "DESKSTREAM_AUTH_FAILURE_WINDOW_S": "120",
            "DESKSTREAM_AUTH_LOCKOUT_S": "5",
            "DESKSTREAM_AUTH_LOCKOUT_MAX_S": "900",
            "DESKSTREAM_AUTH_TRACKED_ADDRESSES": "500",
        }
    )
    assert (
        settings.auth_failure_limit,
        settings.auth_failure_window_s,
        settings.auth_lockout_s,
        settings.auth_lockout_max_s,
        settings.auth_tracked_addresses,
    ) == (0, 120, 5, 900, 500)
    assert Settings.from_env({}).auth_failure_limit == 10
