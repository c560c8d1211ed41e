"""Number formatting with units, and leaderboard cells. The page script formats live values the same way."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

NO_VALUE = "–"


def fmt(value: Any, kind: str) -> str:
    """The one formatting rule per kind of number (mirrored by ``formatValue`` in site.js)."""
    if value is None or value == "":
        return NO_VALUE
    v = float(value)
    if kind == "score":
        return f"{v:.1f}"
    if kind == "fps":
        return f"{v:.1f}"
    if kind == "ratio":
        return f"{v:.3f}"
    if kind == "ms":
        return f"{v:,.0f}"
    if kind == "pct":
        return f"{100 * v:.1f}"
    if kind == "int":
        return f"{v:,.0f}"
    if kind == "eth":
        return f"{v:.4f}"
    if kind == "min":
        return f"{v:,.1f}"
    return f"{v:g}"


UNITS = {"fps": "fps", "ms": "ms", "pct": "%", "eth": "ETH", "min": "min"}


@register.filter(name="fmt")
def fmt_filter(value: Any, kind: str) -> str:
    return fmt(value, kind)


@register.simple_tag
def num(value: Any, kind: str, field: str = "", tooltip: str = "") -> SafeString:
    """A number with its unit and tooltip; ``field`` names it for live updates."""
    unit = UNITS.get(kind, "")
    return format_html(
        '<span class="num"{}{} data-format="{}"{}>{}</span>{}',
        format_html(' data-live="{}"', field) if field else "",
        format_html(' title="{}"', tooltip) if tooltip else "",
        kind,
        format_html(' data-value="{}"', value) if value is not None else "",
        fmt(value, kind),
        format_html('<span class="unit"> {}</span>', unit) if unit and value is not None else "",
    )


def short_address(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


@register.filter(name="short_address")
def short_address_filter(address: str) -> str:
    return short_address(address or "")


def _sort_value(value: Any) -> str:
    return "" if value is None else str(value)


@register.simple_tag
def cell(row: dict[str, Any], col: dict[str, Any], link_target: str = "") -> SafeString:
    key = col["key"]
    if key == "rank":
        text = str(row["rank"]) if row.get("rank") else NO_VALUE
        return format_html(
            '<td data-field="rank" data-sort-value="{}"><span data-live="rank">{}</span></td>',
            _sort_value(row.get("rank")),
            text,
        )
    if key == "name":
        address = row["address"]
        href = reverse("leaderboard:orchestrator", args=[address])
        label = row.get("name") or short_address(address)
        return format_html(
            '<th scope="row" data-field="name" data-sort-value="{}"><a href="{}"{} title="{}">{}</a></th>',
            label.lower(),
            href,
            format_html(' target="{}"', link_target) if link_target else "",
            address,
            label,
        )
    if key == "score":
        sub = format_html_join(
            " ",
            '<span class="sub" title="{} subscore (0–100)">{}&nbsp;{}</span>',
            (
                (name.capitalize(), name[0].upper(), num(row.get(name), "score", name))
                for name in ("latency", "reliability", "performance")
            ),
        )
        if not row.get("sufficient", True):
            main = format_html(
                '<span class="insufficient-label" title="Fewer sessions than the minimum sample of the scoring '
                'version; not ranked">insufficient data</span><span class="num" data-live="score" '
                'data-format="score" hidden></span>'
            )
        else:
            main = num(
                row.get("score"),
                "score",
                "score",
                "SLA score 0–100 (scoring version {})".format(row.get("scoring_version", "?")),
            )
        return format_html(
            '<td data-field="score" data-sort-value="{}">{}<div class="subs">{}</div></td>',
            _sort_value(row.get("score") if row.get("sufficient", True) else None),
            main,
            sub,
        )
    if key == "success":
        lo, hi = row.get("success_lo"), row.get("success_hi")
        interval = (
            format_html(
                '<span class="ci" title="95% Wilson interval">{}–{}&nbsp;%</span>',
                num(lo, "pct", "success_lo"),
                num(hi, "pct", "success_hi"),
            )
            if lo is not None and hi is not None
            else ""
        )
        return format_html(
            '<td data-field="success" data-sort-value="{}">{} {}</td>',
            _sort_value(row.get("success")),
            num(row.get("success"), "pct", "success", col.get("tooltip", "")),
            interval,
        )
    value = row.get(key)
    if col["type"] == "text":
        return format_html(
            '<td class="text" data-field="{}" data-sort-value="{}">{}</td>', key, value or "", value or ""
        )
    return format_html(
        '<td data-field="{}" data-sort-value="{}">{}</td>',
        key,
        _sort_value(value),
        num(value, col["type"], key, col.get("tooltip", "")),
    )
