"""``python -m bench.mimecost``: CPU per MB of the costliest emails we can build (RELIABILITY S3).

Each shape is built at the email size limit (``Settings().max_email_bytes``; ``--quick``: 1 MB)
and parsed in this process with the default limits (``parse_email``, as intake does), timed in
process CPU seconds. Next to them, the raw limits measured in the same run: copying and scanning
the bytes once, and the stdlib's ``email.message_from_bytes`` on a one-part message of the same
size. A shape far above the stdlib's figure is a cap missing.

Prints a markdown table and writes bench/results/mimecost.json.
"""

from __future__ import annotations

import argparse
import email
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import conclude, run_facts, say
from libs.platform.settings import Settings
from services.intake.domain.mail.parser import parse_email
from services.intake.email_intake import mime_limits

RESULTS = Path(__file__).resolve().parent / "results" / "mimecost.json"
HEAD = (
    b"From: Ada <ada@example.com>\r\nTo: support@deskstream.local\r\nSubject: cost\r\n"
    b"Message-ID: <cost@example.com>\r\nMIME-Version: 1.0\r\n"
)
MB = 1_000_000


def repeat(unit: bytes, size: int) -> bytes:
    return unit * max(1, size // len(unit))


def plain(size: int) -> bytes:
    return HEAD + b"Content-Type: text/plain\r\n\r\n" + repeat(b"Printer on fire.\r\n", size)


def nested_html(size: int) -> bytes:
    n = size // 11
    return HEAD + b"Content-Type: text/html\r\n\r\n" + b"<div>" * n + b"x" + b"</div>" * n


def html_under_caps(size: int) -> bytes:
    """The deepest HTML the caps let through (256 levels), as large as the HTML cap allows."""
    block = b"<div>" * 250 + b"x" + b"</div>" * 250
    body = repeat(block, min(size, Settings().max_html_bytes - 1))
    return HEAD + b"Content-Type: text/html\r\n\r\n" + body


def unclosed_tags(size: int) -> bytes:
    return HEAD + b"Content-Type: text/html\r\n\r\n" + repeat(b"<a", size)


def flat_parts(size: int) -> bytes:
    body = repeat(b"--b\r\n\r\nx\r\n", size)
    return HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + body + b"--b--\r\n"


def html_parts(size: int) -> bytes:
    """As many HTML parts as the part cap reads, each as deep as the HTML cap lets through."""
    part = b"--b\r\nContent-Type: text/html\r\n\r\n" + b"<div>" * 250 + b"x" + b"</div>" * 250
    body = repeat(part + b"\r\n", size)
    return HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + body + b"--b--\r\n"


def nested_multipart(size: int) -> bytes:
    level = b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n"
    n = size // len(level % (10**6, 10**6))
    return HEAD + b"".join(level % (i, i) for i in range(n)) + b"Content-Type: text/plain\r\n\r\nx"


def nested_messages(size: int) -> bytes:
    level = b"Content-Type: message/rfc822\r\n\r\nFrom: b@example.com\r\n"
    return HEAD + repeat(level, size) + b"Content-Type: text/plain\r\n\r\nx"


def encoded_words(size: int) -> bytes:
    words = repeat(b" =?utf-8?q?a?=", size)
    return HEAD.replace(b"Subject: cost\r\n", b"Subject:" + words + b"\r\n") + b"\r\nx"


def many_headers(size: int) -> bytes:
    return HEAD + repeat(b"X-A: b\r\n", size) + b"\r\nx"


def long_header(size: int) -> bytes:
    return HEAD + b"X-Long: " + repeat(b"word\r\n ", size) + b"\r\n\r\nx"


def many_addresses(size: int) -> bytes:
    return HEAD + b"Cc: " + repeat(b"a@b.example, ", size) + b"\r\n\r\nx"


SHAPES: dict[str, Callable[[int], bytes]] = {
    "plain text": plain,
    "nested <div>s": nested_html,
    "HTML at the depth cap": html_under_caps,
    "tags that never close": unclosed_tags,
    "flat MIME parts": flat_parts,
    "HTML parts at the caps": html_parts,
    "nested multiparts": nested_multipart,
    "nested message/rfc822": nested_messages,
    "encoded words": encoded_words,
    "many headers": many_headers,
    "one long folded header": long_header,
    "many Cc addresses": many_addresses,
}


def cpu(work: Callable[[], object]) -> float:
    began = time.process_time()
    work()
    return time.process_time() - began


def raw_limits(size: int) -> dict[str, float]:
    raw = plain(size)
    mb = len(raw) / MB
    copy = cpu(lambda: (bytearray(raw), raw.count(b"\n"), raw.decode("latin-1")))
    stdlib = cpu(lambda: email.message_from_bytes(raw, policy=email.policy.default))
    return {"copy_scan_s_per_mb": copy / mb, "stdlib_parse_s_per_mb": stdlib / mb}


def measure(name: str, size: int, settings: Settings) -> dict[str, Any]:
    raw = SHAPES[name](size)
    limits = mime_limits(settings)
    parsed: list[Any] = []
    seconds = cpu(
        lambda: parsed.append(
            parse_email(raw, max_attachment_bytes=settings.max_attachment_bytes, limits=limits)
        )
    )
    result = parsed[0]
    return {
        "bytes": len(raw),
        "cpu_s": round(seconds, 3),
        "s_per_mb": round(seconds / (len(raw) / MB), 3),
        "cut": list(result.cut),
    }


def summary(results: dict[str, Any]) -> None:
    raw = results["raw_limits"]
    say("\n| input | MB | CPU s | s per MB | what the caps did |")
    say("| --- | ---: | ---: | ---: | --- |")
    for name, figure in results["shapes"].items():
        cut = "; ".join(figure["cut"]) or "-"
        say(
            f"| {name} | {figure['bytes'] / MB:.1f} | {figure['cpu_s']:.2f} | "
            f"{figure['s_per_mb']:.3f} | {cut} |"
        )
    say(f"| raw: copy and scan the bytes | | | {raw['copy_scan_s_per_mb']:.4f} | |")
    say(f"| raw: stdlib message_from_bytes, one part | | | {raw['stdlib_parse_s_per_mb']:.4f} | |")
    worst = max(results["shapes"].items(), key=lambda item: item[1]["s_per_mb"])
    say(f"\n  worst: {worst[0]}, {worst[1]['s_per_mb']:.3f} s of CPU per MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mimecost", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 MB inputs instead of the limit")
    args = parser.parse_args(argv)
    settings = Settings()
    size = MB if args.quick else settings.max_email_bytes - 64 * 1024
    results: dict[str, Any] = {**run_facts(args.quick), "input_bytes": size, "shapes": {}}
    began = time.perf_counter()
    say(f"Deskstream MIME cost bench: inputs of {size / MB:.1f} MB, CPU seconds per MB")
    results["raw_limits"] = raw_limits(size)
    for name in SHAPES:
        figure = measure(name, size, settings)
        results["shapes"][name] = figure
        say(f"  {name}: {figure['cpu_s']:.2f} s ({figure['s_per_mb']:.3f} s/MB)")
    conclude(results, began, summary, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
