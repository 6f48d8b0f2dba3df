"""rfc3987-syntax builds 39 lark grammars as it is imported (0.9 to 2.8 s of CPU on this 2-core
machine), and jsonschema imports it only to offer an "iri" format checker: nothing of ours,
JupyterHub's or Jupyter Server's validates an "iri". Every process that imports jsonschema
(the code location, a hub through jupyter_events) pays it at its start unless it is marked
absent first, which jsonschema takes as the checker's library not being installed."""

from __future__ import annotations

import sys


def skip_iri_grammar() -> None:
    """Mark rfc3987-syntax absent, unless something imported it already. Call it before
    importing jsonschema, or a library that imports it."""
    sys.modules.setdefault("rfc3987_syntax", None)
