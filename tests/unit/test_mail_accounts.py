"""The mail config file: IMAP accounts, their defaults, and refusals that say where and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from libs.platform.errors import ValidationFailed
from libs.platform.settings import Settings
from services.intake.mail_accounts import (
    MailConfigError,
    configured_accounts,
    load_imap_accounts,
    parse_imap_accounts,
)

EXAMPLE = """
[[imap]]
name = "support"
host = "imap.example.org"
port = 993
ssl = true
username = "support@example.org"
password_env = "SUPPORT_IMAP_PASSWORD"
folder = "INBOX"
interval_seconds = 60
after = "move"
archive_folder = "Processed"
max_per_poll = 30

[[imap]]
name = "billing"
host = "mail.example.org"
ssl = false
starttls = true
username = "billing"
password = "written-in-the-file"
"""

ENV = {"SUPPORT_IMAP_PASSWORD": "s3cret-from-env"}


def account(**fields: Any) -> dict[str, Any]:
    base = {
        "name": "support",
        "host": "imap.example.org",
        "username": "support@example.org",
        "password_env": "SUPPORT_IMAP_PASSWORD",
    }
    return {**base, **fields}


def refusal(*tables: dict[str, Any], environ: dict[str, str] = ENV) -> MailConfigError:
    with pytest.raises(MailConfigError) as caught:
        parse_imap_accounts({"imap": list(tables)}, environ)
    return caught.value


def test_the_documented_example_loads_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mail.toml"
    path.write_text(EXAMPLE)

    support, billing = load_imap_accounts(path, ENV)

    assert (support.name, support.host, support.port, support.ssl) == (
        "support", "imap.example.org", 993, True,
    )  # fmt: skip
    assert support.password == "s3cret-from-env"
    assert (support.after, support.archive_folder, support.max_per_poll) == (
        "move",
        "Processed",
        30,
    )
    assert support.interval_seconds == 60.0
    # Unset fields: plain IMAP's port, INBOX, mark seen, 30 a poll, once a minute.
    assert (billing.port, billing.starttls, billing.folder) == (143, True, "INBOX")
    assert (billing.after, billing.max_per_poll, billing.interval_seconds) == ("seen", 30, 60.0)
    assert billing.password == "written-in-the-file"


def test_a_password_never_shows_in_a_repr() -> None:
    (loaded,) = parse_imap_accounts({"imap": [account()]}, ENV)

    assert "s3cret-from-env" not in repr(loaded)
    assert "s3cret-from-env" not in str([loaded])


def test_no_mail_config_means_no_accounts() -> None:
    assert configured_accounts(Settings(mail_config=None)) == []


def test_configured_accounts_reads_the_file_named_by_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "mail.toml"
    path.write_text(EXAMPLE)

    accounts = configured_accounts(Settings(mail_config=path), ENV)

    assert [a.name for a in accounts] == ["support", "billing"]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"port": 0}, "imap[0] (support): port:"),
        ({"port": "993"}, "imap[0] (support): port:"),
        ({"after": "archive"}, "imap[0] (support): after:"),
        ({"after": "move"}, "imap[0] (support): archive_folder: required when after"),
        ({"after": "move", "archive_folder": "INBOX"}, "archive_folder: must differ from folder"),
        ({"max_per_poll": 0}, "imap[0] (support): max_per_poll:"),
        ({"interval_seconds": 0}, "imap[0] (support): interval_seconds:"),
        ({"host": ""}, "imap[0] (support): host:"),
        ({"ssl": True, "starttls": True}, "imap[0] (support): starttls: ssl (implicit TLS)"),
        ({"intervall_seconds": 5}, "imap[0] (support): intervall_seconds: Unknown field"),
        ({"password": "x"}, "imap[0] (support): password_env: give exactly one"),
    ],
)
def test_a_bad_field_is_refused_naming_the_account_and_the_field(
    fields: dict[str, Any], where: str
) -> None:
    error = refusal(account(**fields))

    assert where in error.message
    assert isinstance(error, ValidationFailed)


def test_an_account_without_a_name_is_named_by_its_position() -> None:
    unnamed = account()
    del unnamed["name"]

    error = refusal(account(), unnamed)

    assert error.message.startswith("mail config: imap[1]: name:")


def test_neither_password_nor_password_env_is_refused() -> None:
    no_password = account()
    del no_password["password_env"]

    assert "password_env: give exactly one" in refusal(no_password).message


def test_a_password_env_that_is_not_set_is_refused_without_any_secret() -> None:
    error = refusal(account(password_env="MISSING_PASSWORD"))

    assert error.message == (
        "mail config: imap[0] (support): password_env: "
        "the environment variable MISSING_PASSWORD is not set"
    )
    assert error.details["field"] == "imap[0].password_env"


def test_two_accounts_with_one_name_are_refused() -> None:
    error = refusal(account(), account(host="other.example.org"))

    assert "imap[1] (support): name: already used by another account" in error.message


def test_a_refusal_never_carries_a_password_from_the_file() -> None:
    in_file = account(password="hunter2-in-file", port="x")
    del in_file["password_env"]

    error = refusal(in_file)

    assert "hunter2" not in error.message
    assert "hunter2" not in str(error.details)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[imap]\nname = 1", "not valid TOML"),
        ("[[imaps]]\nname = 'typo'", "unknown section 'imaps'"),
        ("imap = 'support'", "imap must be a list of [[imap]] tables"),
    ],
)
def test_a_file_that_is_not_a_mail_config_is_refused_with_its_path(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "mail.toml"
    path.write_text(text)

    with pytest.raises(MailConfigError) as caught:
        load_imap_accounts(path, ENV)

    assert caught.value.message.startswith(f"mail config {path}: ")
    assert expected in caught.value.message


def test_a_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(MailConfigError, match="cannot read it"):
        load_imap_accounts(tmp_path / "absent.toml", ENV)
