"""Stand-ins for what this machine cannot reach, recording what they were asked."""

import json
import sys
from pathlib import Path

from conftest import PLANTED

from tess_platform.backends.helm import Helm

FAKE_HELM = """\
#!{python}
# a stand-in for helm: records each call, answers status/history from a release history kept
# in a state file, seeded by FAKE_HELM_SCENARIO
import json, os, stat, sys
from pathlib import Path

SCENARIOS = {scenarios}
argv = sys.argv[1:]
files = []
for flag, value in zip(argv, argv[1:]):
    if flag == "-f":
        path = Path(value)
        files.append({{
            "path": value,
            "mode": stat.S_IMODE(path.stat().st_mode),
            "content": path.read_text(),
        }})
kubeconfig = argv[argv.index("--kubeconfig") + 1] if "--kubeconfig" in argv else None
names = ("HOME", "HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME", "KUBECACHEDIR",
         "TMPDIR", "KUBECONFIG", "HELM_DEBUG", "HELM_DRIVER")
with open(os.environ["FAKE_HELM_LOG"], "a") as log:
    log.write(json.dumps({{
        "argv": argv,
        "files": files,
        "env": {{k: os.environ.get(k) for k in names}},
        "credentials": sorted(k for k in os.environ if k.startswith("TESS_") and "KEY" in k),
        "kubeconfig_exists": bool(kubeconfig) and Path(kubeconfig).exists(),
    }}) + "\\n")

state_path = Path(os.environ["FAKE_HELM_STATE"])
if state_path.exists():
    revisions = json.loads(state_path.read_text())
else:
    revisions = SCENARIOS[os.environ["FAKE_HELM_SCENARIO"]]
command = argv[0]
secret = os.environ.get("FAKE_HELM_SECRET", "")

if command == os.environ.get("FAKE_HELM_FAIL"):
    # as helm does on a schema error: it quotes the values it was given
    quoted = " ".join(f["content"].strip() for f in files)
    sys.exit(f"Error: UPGRADE FAILED: values don't meet the specifications: {{quoted}}")
if command in ("status", "history") and not revisions:
    sys.exit("Error: release: not found")
if command == "status":
    last = revisions[-1]
    print(json.dumps({{
        "name": argv[1], "namespace": argv[argv.index("--namespace") + 1],
        "version": last["revision"],
        "info": {{"status": last["status"], "description": last["description"]}},
        "chart": {{"metadata": {{"name": "jupyterhub", "version": "4.4.0",
                                 "appVersion": "5.5.0"}}, "templates": ["..."]}},
        "config": {{"hub": {{"cookieSecret": secret}}}},
        "manifest": "kind: Secret\\ndata:\\n  token: " + secret,
    }}))
elif command == "history":
    print(json.dumps([
        dict(r, chart="jupyterhub-4.4.0", app_version="5.5.0", updated="2025-01-01")
        for r in revisions
    ]))
elif command == "upgrade":
    for r in revisions:
        r["status"] = "superseded" if r["status"] == "deployed" else r["status"]
    n = revisions[-1]["revision"] + 1 if revisions else 1
    described = argv[argv.index("--description") + 1] if "--description" in argv else ""
    revisions.append({{"revision": n, "status": "deployed",
                       "description": described or "Upgrade complete"}})
    print("NOTES: your hub is up")
elif command == "rollback":
    for r in revisions:
        if r["status"] == "deployed":
            r["status"] = "superseded"
        elif r["status"].startswith("pending-"):
            r["status"] = "failed"
    revisions.append({{"revision": revisions[-1]["revision"] + 1, "status": "deployed",
                       "description": "Rollback to " + argv[2]}})
    print("Rollback was a success! Happy Helming!")
elif command == "uninstall":
    revisions = []
    print("release uninstalled")
state_path.write_text(json.dumps(revisions))
"""


def revision(n: int, status: str, description: str = "") -> dict:
    return {"revision": n, "status": status, "description": description or status}


SCENARIOS = {
    "fresh": [],
    "deployed": [revision(1, "superseded"), revision(2, "deployed", "Upgrade complete")],
    "pending-install": [revision(1, "pending-install", "Initial install underway")],
    "pending-upgrade": [
        revision(1, "superseded"),
        revision(2, "deployed"),
        revision(3, "pending-upgrade", "Preparing upgrade"),
    ],
    "pending-rollback": [
        revision(1, "superseded"),
        revision(2, "deployed"),
        revision(3, "failed", "Upgrade failed"),
        revision(4, "pending-rollback", "Rollback to 2"),
    ],
    "pending-upgrade-after-failures": [
        revision(1, "superseded"),
        revision(2, "failed"),
        revision(3, "pending-upgrade"),
    ],
    "stuck-with-nothing-good": [revision(1, "failed"), revision(2, "pending-upgrade")],
    "failed-with-secret": [revision(1, "failed", f"Upgrade failed: bad value {PLANTED}")],
}


class FakeHelm:
    def __init__(self, folder: Path, monkeypatch) -> None:
        folder.mkdir()
        self.binary = folder / "helm"
        self.binary.write_text(
            FAKE_HELM.format(python=sys.executable, scenarios=json.dumps(SCENARIOS))
        )
        self.binary.chmod(0o755)
        self.log = folder / "calls.jsonl"
        self.kubeconfig = folder / "kubeconfig.yaml"
        self.kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("FAKE_HELM_LOG", str(self.log))
        monkeypatch.setenv("FAKE_HELM_STATE", str(folder / "state.json"))
        monkeypatch.setenv("FAKE_HELM_SECRET", PLANTED)
        self.scenario("fresh")

    def scenario(self, name: str, fail: str | None = None) -> None:
        self.monkeypatch.setenv("FAKE_HELM_SCENARIO", name)
        if fail:
            self.monkeypatch.setenv("FAKE_HELM_FAIL", fail)

    def helm(self, **kw) -> Helm:
        return Helm(self.kubeconfig, binary=str(self.binary), timeout="7m", **kw)

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        return [call["argv"][0] for call in self.calls()]

    def tail(self, *args: str) -> list[str]:
        """The arguments every call ends with."""
        return [*args, "--kubeconfig", str(self.kubeconfig)]


class RecordingApi:
    """A stand-in for an HTTP API on 127.0.0.1 (a cluster's Kubernetes API, a chat webhook,
    GitHub's): records each request exactly (method, path, headers, body) and answers it with
    `status` and what `answers` holds for (method, path), else the body it got (a GET: an
    empty list); nothing beyond this machine answers here."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.requests: list[dict] = []
        self.status = 201
        self.answers: dict[tuple[str, str], object] = {}
        recorded, api = self.requests, self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                recorded.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                default = [] if self.command == "GET" else body
                answer = json.dumps(api.answers.get((self.command, self.path), default)).encode()
                self.send_response(api.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PATCH = _answer  # noqa: N815 (the http.server API)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "fake", "user": {"token": "not-a-real-token"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                    "current-context": "fake",
                }
            )
        )
        return path

    def stop(self) -> None:
        self.server.shutdown()
