# The config file every local hub starts with: it applies the revision's config.json, resolving
# secret references from the revision's 0600 secrets.json. Standard library only.
import json
import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by traitlets when JupyterHub loads this file

_revision = Path(os.environ["TESS_HUB_REVISION"])
_secrets = json.loads((_revision / "secrets.json").read_text())


def _resolve(value):
    if isinstance(value, dict):
        if set(value) == {"$tess-secret"}:
            return _secrets[value["$tess-secret"]]
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


# ports of this process's own, picked free by the supervisor at each start
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{os.environ['TESS_HUB_API_PORT']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['TESS_PROXY_API_PORT']}"

for _cls, _traits in json.loads((_revision / "config.json").read_text()).items():
    for _trait, _value in _traits.items():
        _value = _resolve(_value)
        if _cls == "JupyterHub" and _trait == "cookie_secret":
            _value = bytes.fromhex(_value)
        setattr(c[_cls], _trait, _value)
