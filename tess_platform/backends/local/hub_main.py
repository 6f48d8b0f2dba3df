"""A local hub's process: JupyterHub's own `main`, run as `python -m jupyterhub` runs it, once
rfc3987-syntax is marked absent (a hub imports jsonschema through jupyter_events: each hub
revision's start would build the grammar, ~2.8 s of CPU here)."""

import sys

from tess_platform.iri_grammar import skip_iri_grammar

if __name__ == "__main__":
    skip_iri_grammar()
    from jupyterhub.app import main

    sys.exit(main())
