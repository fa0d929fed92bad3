# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Self-contained HTML report pages: inline CSS, PNG plots embedded as base64 ``data:`` URIs, no external assets.

One file that can be mailed, archived or opened offline shows exactly what the run produced. Every text that comes
from the caller (titles, method names, settings) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .tables import NA

__all__ = ["html_table", "image_data_uri", "render_study_html", "write_html"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.data-label { font-weight: bold; font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; }
th { background: #f2f4f7; text-align: center; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child { text-align: left; font-weight: 600; }
td.na { color: #999; font-style: italic; }
table.settings td { text-align: left; font-weight: normal; }
table.settings td:first-child { font-weight: 600; }
figure { margin: 1em 0 1.6em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
.note { font-size: 0.9em; color: #444; }
footer { margin-top: 2em; font-size: 0.8em; color: #888; }
"""

_BANNER_CSS = """
.demo-banner { background: #fff3cd; border: 3px solid #d39e00; color: #6b4e00; padding: 0.9em 1.2em;
               font-size: 1.15em; font-weight: bold; margin: 1em 0; border-radius: 4px; }
"""

_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def image_data_uri(path: str | os.PathLike) -> str:
    """``data:`` URI of a PNG or JPEG file (base64).

    Raises:
        ValueError: the file is neither PNG nor JPEG.
    """
    with open(path, "rb") as f:
        data = f.read()
    for magic, mime in _MAGIC.items():
        if data.startswith(magic):
            return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    raise ValueError(f"{os.fspath(path)!r} is not a PNG or JPEG image.")


def _is_na(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x == NA


def html_table(table: pd.DataFrame, css_class: str = "results") -> str:
    """An HTML table of a (string) DataFrame; undefined cells print ``n/a`` with class ``na``."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for row in table.itertuples(index=False):
        cells = "".join(f'<td class="na">{NA}</td>' if _is_na(x) else f"<td>{html.escape(str(x))}</td>" for x in row)
        rows.append(f"<tr>{cells}</tr>")
    return (
        f'<table class="{html.escape(css_class)}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _setting_text(value: Any) -> str:
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def render_study_html(
    title: str,
    *,
    tables: Mapping[str, pd.DataFrame] | None = None,
    images: Sequence[tuple[str, str | os.PathLike]] = (),
    settings: Mapping[str, Any] | None = None,
    demo: bool = False,
    data_label: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The HTML text of a self-contained study report.

    Args:
        title: page title.
        tables: ``{section heading: display table}`` (e.g. from
            :func:`~monai_fair.report.tables.summary_display_table`), in order.
        images: ``(caption, PNG path)`` pairs; each PNG is embedded as a ``data:`` URI.
        settings: run settings shown as a two-column table (dataset, epsilon, seeds, attribute, ...).
        demo: show the prominent demo-data banner.
        data_label: line naming the data the numbers ran on (shown under the title).
        notes: paragraphs shown under the tables (plain text, escaped).

    Returns:
        the HTML document.
    """
    from monai_fair import __version__

    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}{_BANNER_CSS if demo else ''}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if demo:
        parts.append(
            '<div class="demo-banner" role="alert">DEMO DATA: these results come from a generated synthetic dataset '
            "with a planted bias, not from the real study data. They show that the pipeline runs; they say nothing "
            "about the real study.</div>"
        )
    if data_label:
        parts.append(f'<p class="data-label">{esc(data_label)}</p>')
    if settings:
        rows = pd.DataFrame(
            {"setting": [str(k) for k in settings], "value": [_setting_text(v) for v in settings.values()]}
        )
        parts += ["<h2>Run settings</h2>", html_table(rows, "settings")]
    for heading, table in (tables or {}).items():
        parts += [f"<h2>{esc(heading)}</h2>", html_table(table)]
    for note in notes:
        parts.append(f'<p class="note">{esc(note)}</p>')
    if images:
        parts.append("<h2>Plots</h2>")
        for caption, path in images:
            uri = image_data_uri(path)
            parts.append(
                f'<figure><img src="{uri}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'
            )
    parts.append(f"<footer>monai_fair {esc(__version__)}: self-contained report, no external assets.</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(text: str, path: str | os.PathLike) -> str:
    """Write an HTML document (UTF-8); returns the path."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)
