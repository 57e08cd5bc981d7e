"""Printing figures as a bench runs, and the warnings it collects (shared by every bench)."""

from __future__ import annotations

from bench.procstat import disturbance, format_cpu

WARNINGS: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)


def warn(text: str, indent: str = "      ") -> None:
    WARNINGS.append(text)
    say(f"{indent}{text}")


def say_cpu(what: str, cpu: dict[str, float], indent: str = "      ") -> None:
    say(f"{indent}{what}{format_cpu(cpu)}")
    if (warning := disturbance(cpu)) is not None:
        warn(warning, indent)
