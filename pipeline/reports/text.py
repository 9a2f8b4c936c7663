"""How the values in a report become text: numbers to four significant digits, protos on one line."""

from __future__ import annotations


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
