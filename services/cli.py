"""The `deskstream` command: run (embedded), serve SERVICE, migrate, replay, admin helpers."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from libs.platform.settings import Settings

HTTP_SERVICES = ("intake", "query", "gateway")
ALL_SERVICES = ("intake", "routing", "sla", "notify", "query", "gateway", "relay")


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if getattr(args, "data_dir", None):
        settings = settings.with_data_dir(Path(args.data_dir))
    return settings


def _platform(args: argparse.Namespace) -> Any:
    from services.platform import Platform

    settings = _settings(args)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return Platform.build(settings)


def cmd_migrate(args: argparse.Namespace) -> int:
    from services import migrations
    from services.intake.config import seed_defaults

    platform = _platform(args)
    migrations.upgrade(platform.engine)
    seeded = seed_defaults(platform.store)
    print("migrations applied" + ("; default help desk seeded" if seeded else ""))
    return 0


# sysexits.h: what an MTA does with a pipe's exit status.
EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75


def cmd_pipe(args: argparse.Namespace) -> int:
    """One raw email on stdin. 0 once committed (or already received); 65 when it is refused
    for good (the MTA bounces it); 75 when anything went wrong before the commit, so the MTA
    keeps the message and retries."""
    log = logging.getLogger("deskstream.pipe")
    try:
        platform = _platform(args)
        limit = platform.settings.max_email_bytes
        raw = sys.stdin.buffer.read(limit + 1)
        if len(raw) > limit:
            log.warning("email refused: larger than %d bytes", limit)
            return EX_DATAERR
        from services.intake.email_intake import receive_email

        outcome = receive_email(platform, raw, channel="pipe")
    except Exception:  # any failure before the commit: the MTA must retry, never drop
        log.exception("email not taken; the MTA will retry")
        return EX_TEMPFAIL
    if outcome.action == "refused":
        print(f"refused: {outcome.reason}", file=sys.stderr)
        return EX_DATAERR
    print(f"{outcome.action} {outcome.number or ''}".strip())
    return EX_OK


EX_CONFIG = 78  # sysexits.h: the mail config file is missing or wrong


def cmd_fetch_mail(args: argparse.Namespace) -> int:
    """One poll of every IMAP account, a summary line each. 75 when any account could not be
    polled to the end (server unreachable, database down): what is left is taken next time."""
    import functools

    from services.intake.adapters.imap import MAILBOX_ERRORS, describe, poll_account
    from services.intake.email_intake import receive_email
    from services.intake.mail_accounts import MailConfigError, configured_accounts

    platform = _platform(args)
    try:
        accounts = configured_accounts(platform.settings)
    except MailConfigError as exc:
        print(exc.message, file=sys.stderr)
        return EX_CONFIG
    if not accounts:
        print("no IMAP accounts: DESKSTREAM_MAIL_CONFIG names no [[imap]] table", file=sys.stderr)
        return EX_CONFIG
    receive = functools.partial(receive_email, platform, channel="email")
    status = EX_OK
    for account in accounts:
        try:
            result = poll_account(account, receive)
        except MAILBOX_ERRORS as exc:
            print(f"{account.name}: not polled: {describe(exc)}")
            status = EX_TEMPFAIL
            continue
        print(result.summary())
        status = status if result.ok else EX_TEMPFAIL
    platform.close()
    return status


def cmd_apikey_create(args: argparse.Namespace) -> int:
    from libs.platform.access import create_api_key

    platform = _platform(args)
    key_id, key = create_api_key(platform.store, args.ip or [], notes=args.notes or "")
    print(f"API key {key_id} created (allowed from: {', '.join(args.ip) or 'anywhere'})")
    print(key)
    return 0


def cmd_agent_create(args: argparse.Namespace) -> int:
    from libs.platform.access import create_agent

    platform = _platform(args)
    agent_id, token = create_agent(
        platform.store,
        email=args.email,
        name=args.name,
        password=args.password,
        admin=args.admin,
        department_id=args.department,
    )
    print(f"agent {agent_id} <{args.email}> created{' (admin)' if args.admin else ''}; API token:")
    print(token)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from services.replay import replay

    platform = _platform(args)
    count = replay(platform, args.projection)
    print(f"{args.projection}: rebuilt from {count} events")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from libs.platform import tracing
    from libs.platform.serving import serve_gunicorn, serve_probes_in_thread
    from services.workers import start_runner

    platform = _platform(args)
    tracing.configure(args.service, platform.settings.otlp_endpoint)
    if args.service in HTTP_SERVICES:
        background = _background_workers(args.service, platform)
        companion = _spawn_workers(args, background) if background else None
        owner = os.getpid()
        try:
            serve_gunicorn(
                _http_app(args.service, platform),
                args.host,
                args.port,
                workers=args.workers,
                threads=args.threads,
                post_worker_init=lambda _w: platform.engine.dispose(close=False),
            )
        finally:
            # gunicorn forks its web workers from inside serve_gunicorn, so this block also runs
            # in them on exit: only the process that spawned the workers may stop them.
            if companion is not None and os.getpid() == owner:
                companion.terminate()
                companion.join(20)
        return 0
    if args.service == "relay" and platform.settings.backend != "kafka":
        print("relay needs DESKSTREAM_KAFKA_BOOTSTRAP", file=sys.stderr)
        return 2
    from libs.platform.http import create_base_app
    from services.platform import install

    app = create_base_app(args.service, platform.readiness())
    install(app, platform)
    stop_probes = serve_probes_in_thread(app, args.host, args.port)
    runner = start_runner(platform, [args.service])
    _wait_for_signal()
    runner.stop()
    stop_probes()
    platform.close()
    return 0


def _background_workers(service: str, platform: Any) -> list[str]:
    """What an HTTP service also runs: query its projections, intake its IMAP pollers (only
    when accounts are configured; a broken mail config stops the service here, at start) and,
    in Kafka mode, its consumer of deskstream.inbound.v1."""
    if service == "query":
        return ["query"]
    if service == "intake":
        from services.intake.mail_accounts import configured_accounts

        kafka = platform.settings.backend == "kafka"
        return ["intake"] if kafka or configured_accounts(platform.settings) else []
    return []


def _spawn_workers(args: argparse.Namespace, services: list[str]) -> Any:
    """Workers run beside an HTTP service's web workers, never inside them: a spawned child
    process (no threads or connections inherited) that stops with the service."""
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(
        target=_run_workers,
        args=(getattr(args, "data_dir", None), services),
        name=f"{args.service}-workers",
    )
    process.start()
    return process


def _run_workers(data_dir: str | None, services: list[str]) -> None:
    from services.workers import start_runner

    platform = _platform(argparse.Namespace(data_dir=data_dir))
    runner = start_runner(platform, services)
    _wait_for_signal()
    runner.stop()
    platform.close()


def _http_app(service: str, platform: Any) -> Any:
    if service == "intake":
        from services.intake.entrypoints.http import create_app
    elif service == "query":
        from services.query.entrypoints.http import create_app
    else:
        from services.gateway.entrypoints.http import create_app
    return create_app(platform)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def cmd_run(args: argparse.Namespace) -> int:
    """The embedded platform: every service in one process on SQLite, no broker."""
    from libs.platform.serving import serve_gunicorn
    from services import migrations
    from services.embedded import embedded_app, first_start
    from services.intake.mail_accounts import configured_accounts
    from services.workers import WORKER_SERVICES, start_runner

    platform = _platform(args)
    if platform.settings.backend != "embedded":
        print(
            "run is the embedded mode; unset DESKSTREAM_KAFKA_BOOTSTRAP or use serve",
            file=sys.stderr,
        )
        return 2
    migrations.upgrade(platform.engine)
    configured_accounts(platform.settings)  # a broken mail config stops here, not in a worker
    first_start(platform, print)
    app = embedded_app(platform)
    # One worker process holds the subscriptions (started after fork, never in the master).
    state: dict[str, Any] = {}

    def post_worker_init(_worker: Any) -> None:
        platform.engine.dispose(close=False)  # never share the master's connections after fork
        state["runner"] = start_runner(platform, [*WORKER_SERVICES, "intake"])  # + IMAP

    def on_exit(_worker: Any) -> None:
        if "runner" in state:
            state["runner"].stop()

    print(f"Deskstream is running on http://{args.host}:{args.port}", flush=True)
    serve_gunicorn(
        app,
        args.host,
        args.port,
        workers=1,
        threads=args.threads,
        post_worker_init=post_worker_init,
        on_exit=on_exit,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deskstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", help="embedded mode: where the SQLite store and maildrop live")

    run = sub.add_parser("run", help="the embedded platform (one process, SQLite, no broker)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8080)
    run.add_argument("--threads", type=int, default=8)
    run.add_argument("--data-dir", default="var")
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="one service, configured by DESKSTREAM_* variables")
    serve.add_argument("service", choices=ALL_SERVICES)
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--threads", type=int, default=8)
    data_dir(serve)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser(
        "migrate", help="apply database migrations and seed the default help desk"
    )
    data_dir(migrate)
    migrate.set_defaults(func=cmd_migrate)

    replay = sub.add_parser("replay", help="rebuild a projection from the event log")
    replay.add_argument("projection", choices=("query", "routing", "sla", "notify"))
    data_dir(replay)
    replay.set_defaults(func=cmd_replay)

    pipe = sub.add_parser(
        "pipe", help="take one raw email from stdin (exit 0 done, 65 refused, 75 retry later)"
    )
    data_dir(pipe)
    pipe.set_defaults(func=cmd_pipe)

    fetch_mail = sub.add_parser(
        "fetch-mail", help="poll every IMAP account once (exit 0 done, 75 retry later)"
    )
    data_dir(fetch_mail)
    fetch_mail.set_defaults(func=cmd_fetch_mail)

    apikey = sub.add_parser("apikey", help="API keys").add_subparsers(dest="action", required=True)
    create_key = apikey.add_parser(
        "create", help="create an API key (printed once, on the last line)"
    )
    create_key.add_argument(
        "--ip", action="append", help="allowed source IP or network (repeatable)"
    )
    create_key.add_argument("--notes")
    data_dir(create_key)
    create_key.set_defaults(func=cmd_apikey_create)

    agent = sub.add_parser("agent", help="agents").add_subparsers(dest="action", required=True)
    create_agent = agent.add_parser(
        "create", help="create an agent (token printed on the last line)"
    )
    create_agent.add_argument("--email", required=True)
    create_agent.add_argument("--name", required=True)
    create_agent.add_argument("--password")
    create_agent.add_argument("--admin", action="store_true")
    create_agent.add_argument("--department", type=int)
    data_dir(create_agent)
    create_agent.set_defaults(func=cmd_agent_create)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
