"""The IMAP accounts intake polls, from the mail config file (TOML, `Settings.mail_config`).

Accounts are configuration, not environment: each one is an `[[imap]]` table. A password is
named by `password_env` (the variable holding it) or, discouraged, written as `password`; it
never appears in a repr, a log line or an error message. Every refusal names the account and
the field, so an operator can fix the file from the error alone.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from libs.platform.errors import ValidationFailed
from libs.platform.settings import Settings
from libs.platform.validation import flatten

AFTER_ACTIONS = ("seen", "move", "delete")
After = Literal["seen", "move", "delete"]


class MailConfigError(ValidationFailed):
    """The mail config file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class ImapAccount:
    name: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    ssl: bool = True  # implicit TLS (993); False = plain text, or STARTTLS with `starttls`
    starttls: bool = False
    folder: str = "INBOX"
    interval_seconds: float = 60.0
    # What happens to a message once its effect is committed.
    after: After = "seen"
    archive_folder: str | None = None  # where `after = "move"` puts it
    max_per_poll: int = 30
    timeout_seconds: float = 30.0  # connect and every read/write, so a stuck server can't hang us


_Text = lambda **kw: fields.String(validate=validate.Length(min=1, max=255), **kw)  # noqa: E731


class _ImapAccountSchema(Schema):
    name = _Text(required=True)
    host = _Text(required=True)
    port = fields.Integer(strict=True, validate=validate.Range(min=1, max=65535))
    ssl = fields.Boolean(load_default=True)
    starttls = fields.Boolean(load_default=False)
    username = _Text(required=True)
    password = fields.String(validate=validate.Length(min=1))
    password_env = _Text()
    folder = _Text(load_default="INBOX")
    interval_seconds = fields.Float(
        load_default=60.0, validate=validate.Range(min=0, max=86400, min_inclusive=False)
    )
    after = fields.String(load_default="seen", validate=validate.OneOf(AFTER_ACTIONS))
    archive_folder = _Text(load_default=None)
    max_per_poll = fields.Integer(
        strict=True, load_default=30, validate=validate.Range(min=1, max=10_000)
    )
    timeout_seconds = fields.Float(
        load_default=30.0, validate=validate.Range(min=0, max=600, min_inclusive=False)
    )

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        if ("password" in data) == ("password_env" in data):
            raise ValidationError("give exactly one of password_env or password", "password_env")
        if data["ssl"] and data["starttls"]:
            raise ValidationError(
                "ssl (implicit TLS) and starttls exclude each other; set ssl = false", "starttls"
            )
        if data["after"] == "move" and not data.get("archive_folder"):
            raise ValidationError('required when after = "move"', "archive_folder")
        if data["after"] == "move" and data.get("archive_folder") == data["folder"]:
            raise ValidationError("must differ from folder", "archive_folder")


def load_imap_accounts(path: Path, environ: Mapping[str, str]) -> list[ImapAccount]:
    """Read and validate the accounts in the mail config file; `environ` supplies the
    passwords named by `password_env`."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise MailConfigError(f"mail config {path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise MailConfigError(f"mail config {path}: not valid TOML ({exc})") from None
    return parse_imap_accounts(document, environ, source=f"mail config {path}")


def parse_imap_accounts(
    document: Mapping[str, Any], environ: Mapping[str, str], *, source: str = "mail config"
) -> list[ImapAccount]:
    unknown = sorted(set(document) - {"imap"})
    if unknown:
        raise MailConfigError(
            f"{source}: unknown section {unknown[0]!r} (accounts are [[imap]] tables)",
            field=unknown[0],
        )
    tables = document.get("imap", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise MailConfigError(f"{source}: imap must be a list of [[imap]] tables", field="imap")
    accounts: list[ImapAccount] = []
    for index, table in enumerate(tables):
        name = table.get("name")
        where = f"{source}: imap[{index}]" + (f" ({name})" if isinstance(name, str) else "")

        def refuse(key: str, problem: str, *, where: str = where, index: int = index) -> NoReturn:
            raise MailConfigError(f"{where}: {key}: {problem}", field=f"imap[{index}].{key}")

        account = _account(table, environ, refuse)
        if any(other.name == account.name for other in accounts):
            refuse("name", "already used by another account")
        accounts.append(account)
    return accounts


def _account(
    table: dict[str, Any], environ: Mapping[str, str], refuse: Callable[[str, str], NoReturn]
) -> ImapAccount:
    try:
        data: dict[str, Any] = _ImapAccountSchema().load(table)
    except ValidationError as exc:
        key, messages = next(iter(flatten(exc.messages).items()))
        refuse(key, messages[0])
    password = data.get("password")
    if password is None:
        password = environ.get(data["password_env"])
        if not password:
            refuse("password_env", f"the environment variable {data['password_env']} is not set")
    return ImapAccount(
        name=data["name"],
        host=data["host"],
        port=data.get("port") or (993 if data["ssl"] else 143),
        username=data["username"],
        password=password,
        ssl=data["ssl"],
        starttls=data["starttls"],
        folder=data["folder"],
        interval_seconds=data["interval_seconds"],
        after=data["after"],
        archive_folder=data["archive_folder"],
        max_per_poll=data["max_per_poll"],
        timeout_seconds=data["timeout_seconds"],
    )


def configured_accounts(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> list[ImapAccount]:
    """The accounts of `settings.mail_config` (none when unset). Passwords named by
    `password_env` are read from the process environment unless `environ` is given."""
    if settings.mail_config is None:
        return []
    return load_imap_accounts(settings.mail_config, os.environ if environ is None else environ)
