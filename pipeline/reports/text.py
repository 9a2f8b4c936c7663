"""How the values in a report become text: numbers to four significant digits, protos on one line, and values from
the logs (slice values, paths) as markdown that renders as the text it is."""

from __future__ import annotations

import html
import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|])")


def format_number(value) -> str:
    """Counts as integers with thousands separators, other values to 4 significant digits."""
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    return f"{value:.4g}"


def one_line(message) -> str:
    """``message`` (text or a proto) with its whitespace folded to single spaces."""
    return " ".join(str(message).split())


def markdown_text(value) -> str:
    """``value`` as literal text in markdown, also inside a table cell: HTML's special characters as entities, so no
    viewer runs a tag from the logs; markdown's link, code, emphasis and cell characters backslash-escaped; on one
    line."""
    text = html.escape(one_line(value), quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
