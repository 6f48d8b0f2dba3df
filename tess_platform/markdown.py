"""Text placed in a Markdown table (a plan for a pull-request comment): values may hold anything."""

from __future__ import annotations


def cell(text: str) -> str:
    # a bare | would split the table's cell, a newline end its row
    return text.replace("|", "\\|").replace("\n", " ")


def code(text: str) -> str:
    """`text` as inline code in a cell; a backtick in it would end the span."""
    return "`" + cell(text.replace("`", "'")) + "`"
