"""How text from outside (a run tag, a key, a CLI argument) is echoed in a message: cut to a
bounded length that says how long it was, so that a megabyte of input never becomes a
megabyte of error, log and run record."""

from __future__ import annotations

LIMIT = 60


def clipped(text: str, limit: int = LIMIT) -> str:
    """`text` itself if short, else its start and how long it was; a character that a terminal
    would act on (a carriage return, an escape) shown as its escape, never sent."""
    if len(text) > limit:  # clipped first: a megabyte is never walked character by character
        text = f"{text[: limit - 1]}… ({len(text)} characters)"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def quoted(value: object, limit: int = LIMIT) -> str:
    """`value` quoted (repr: control characters shown, not acted on) and clipped, its length
    told as its own (not its quotes')."""
    text = str(value)
    if len(text) > limit:
        return f"{text[: limit - 1] + '…'!r} ({len(text)} characters)"
    return repr(value)
