"""Number formatting with units, and leaderboard cells. The page script formats live values the same way."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

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


def _n(value: Any, kind: str, field: str) -> str:
    """Fast path of ``num`` for table bodies (hundreds of rows): plain string building, escaped."""
    unit = UNITS.get(kind, "")
    data_value = "" if value is None else f' data-value="{escape(str(value))}"'
    unit_html = f'<span class="unit"> {unit}</span>' if unit and value is not None else ""
    return f'<span class="num" data-live="{field}" data-format="{kind}"{data_value}>{fmt(value, kind)}</span>{unit_html}'


def _sv(value: Any) -> str:
    return "" if value is None else escape(str(value))


def _row_html(row: dict[str, Any], columns: list[dict[str, Any]], link_target: str) -> str:
    cells = []
    address = escape(row["address"])
    for col in columns:
        key = col["key"]
        if key == "rank":
            cells.append(
                f'<td data-field="rank" data-sort-value="{_sv(row.get("rank"))}">'
                f'<span data-live="rank">{row["rank"] or NO_VALUE}</span></td>'
            )
        elif key == "name":
            label = escape(row.get("name") or short_address(row["address"]))
            target = f' target="{escape(link_target)}"' if link_target else ""
            cells.append(
                f'<th scope="row" data-field="name" data-sort-value="{label.lower()}">'
                f'<a href="/orchestrators/{address}"{target} title="{address}">{label}</a></th>'
            )
        elif key == "score":
            subs = " ".join(
                f'<span class="sub">{name[0].upper()}&nbsp;{_n(row.get(name), "score", name)}</span>'
                for name in ("latency", "reliability", "performance")
            )
            if row.get("sufficient", True):
                main = _n(row.get("score"), "score", "score")
                sort_value = _sv(row.get("score"))
            else:
                main = (
                    '<span class="insufficient-label" title="Fewer sessions than the minimum sample; not ranked">'
                    'insufficient data</span><span class="num" data-live="score" data-format="score" hidden></span>'
                )
                sort_value = ""
            cells.append(
                f'<td data-field="score" data-sort-value="{sort_value}">{main}'
                f'<div class="subs" title="Latency, reliability and performance subscores (0–100)">{subs}</div></td>'
            )
        elif key == "success":
            lo, hi = row.get("success_lo"), row.get("success_hi")
            interval = (
                (
                    f'<span class="ci" title="95% Wilson interval">{_n(lo, "pct", "success_lo").replace(UNIT_PCT, "")}'
                    f"–{_n(hi, 'pct', 'success_hi')}</span>"
                )
                if lo is not None and hi is not None
                else ""
            )
            cells.append(
                f'<td data-field="success" data-sort-value="{_sv(row.get("success"))}">'
                f"{_n(row.get('success'), 'pct', 'success')} {interval}</td>"
            )
        elif col["type"] == "text":
            text = escape(row.get(key) or "")
            cells.append(f'<td class="text" data-field="{key}" data-sort-value="{text}">{text}</td>')
        else:
            cells.append(
                f'<td data-field="{key}" data-sort-value="{_sv(row.get(key))}">{_n(row.get(key), col["type"], key)}</td>'
            )
    css = "" if row.get("sufficient", True) else ' class="insufficient"'
    live_key = escape(row.get("live_key") or row["address"])
    return f'<tr data-address="{address}" data-row="{live_key}"{css}>{"".join(cells)}</tr>'


UNIT_PCT = '<span class="unit"> %</span>'


@register.simple_tag
def leaderboard_rows(
    rows: list[dict[str, Any]], columns: list[dict[str, Any]], link_target: str = ""
) -> SafeString:
    """All rows of the leaderboard table body (plain HTML: readable and sortable without JavaScript)."""
    return mark_safe("\n".join(_row_html(row, columns, link_target) for row in rows))  # noqa: S308  (escaped above)
