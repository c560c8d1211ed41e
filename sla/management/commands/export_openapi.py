"""Write the OpenAPI schema of /v1 to docs/openapi.json (checked by tests/sla/test_api_openapi.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

DEFAULT_PATH = Path(settings.BASE_DIR) / "docs" / "openapi.json"


def openapi_text() -> str:
    """The schema as committed: sorted keys, two-space indent, trailing newline."""
    from naap_site.api import api

    schema = api.get_openapi_schema(path_prefix="/v1")
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class Command(BaseCommand):
    help = "Write the /v1 OpenAPI schema to docs/openapi.json (or --out); --check fails if it differs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
        parser.add_argument("--check", action="store_true", help="exit non-zero if the file is stale")

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out"]
        text = openapi_text()
        if options["check"]:
            current = out.read_text() if out.exists() else ""
            if current != text:
                self.stderr.write(f"{out} is out of date: run python manage.py export_openapi")
                raise SystemExit(1)
            self.stdout.write(f"{out} is up to date")
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        self.stdout.write(f"wrote {out} ({len(text)} bytes)")
