"""`make docs`: regenerate the documents that come from registries."""

from __future__ import annotations

from pathlib import Path

from libs.events import metrics
from libs.events.docs import asyncapi, events_markdown, metrics_markdown
from libs.events.types import CATALOG

DOCS = Path(__file__).resolve().parents[1] / "docs"


def generated() -> dict[str, str]:
    return {
        "events.md": events_markdown(CATALOG),
        "asyncapi.json": asyncapi(CATALOG),
        "metrics.md": metrics_markdown(metrics),
    }


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    for name, text in generated().items():
        (DOCS / name).write_text(text)
        print(f"wrote docs/{name}")


if __name__ == "__main__":
    main()
