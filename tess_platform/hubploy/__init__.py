"""Adopting a hubploy repository: `tess-platform import-hubploy PATH`.

The contract: `source` reads a hubploy repository as it is (nothing run, nothing decrypted
without its key); `chart_keys` translates one values file from an old jupyterhub chart to the
pinned one, saying what it did; `adopt` decides the files of this repository's layout and
writes them; `report` is what the operator reads. Nothing is dropped silently: every key that
is not carried over is a finding with its file and key, and no finding quotes a value.
"""
