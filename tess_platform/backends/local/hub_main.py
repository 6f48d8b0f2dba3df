"""A local hub's process: JupyterHub's own `main`, run as `python -m jupyterhub` runs it, once
rfc3987-syntax is marked absent (a hub imports jsonschema through jupyter_events: each hub
revision's start would build the grammar, ~2.8 s of CPU here), with what it imported frozen
out of the garbage collector's full collections (the modules live as long as the hub: walking
them again and again as the hub starts cost two hubs' start and checks 5% of their time)."""

import gc
import sys

from tess_platform.iri_grammar import skip_iri_grammar

if __name__ == "__main__":
    skip_iri_grammar()
    from jupyterhub.app import main

    gc.freeze()
    sys.exit(main())
