"""`make bench`: run every benchmark, print one table, end with the summary lines the issues ask for.

python -m benchmarks            # everything
python -m benchmarks ingest     # one part (ingest, sla, api, pages)
"""

from __future__ import annotations

import importlib
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "naap_site.settings")

from benchmarks.common import Report  # noqa: E402

PARTS = {
    "ingest": (
        "benchmarks.ingest",
        "ingest_events_per_s={ingest_events_per_s:.0f} copy_ratio={copy_ratio:.2f} "
        "peak_rss_mb={peak_rss_mb:.0f}",
    ),
    "sla": (
        "benchmarks.sla",
        "api_p95_ms={api_p95_ms:.1f} freshness_p95_s={freshness_p95_s:.2f} "
        "rebuild_events_per_s={rebuild_events_per_s:.0f}",
    ),
    "pages": ("benchmarks.pages", "page_p95_ms={page_p95_ms:.1f} ws_update_p95_ms={ws_update_p95_ms:.1f}"),
}


def main(argv: list[str]) -> int:
    wanted = argv[1:] or list(PARTS)
    report = Report()
    lines = []
    for name in wanted:
        if name not in PARTS:
            print(f"unknown benchmark {name!r}; choose from {', '.join(PARTS)}", file=sys.stderr)
            return 2
        module_name, template = PARTS[name]
        print(f"== {name}", file=sys.stderr, flush=True)
        figures = importlib.import_module(module_name).run(report)
        lines.append(template.format(**figures))
    print()
    report.print_table()
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
