"""Code run in a kernel of a user's server, as a notebook runs it: the Jupyter server's REST API
starts the kernel, its websocket carries the execute request and what the code printed or
raised (the Jupyter messaging protocol, over the server's default JSON framing)."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass

import requests

HTTP_TIMEOUT = 30


class KernelError(RuntimeError):
    pass


@dataclass
class Execution:
    output: str  # what the code printed, and the value of its last expression
    error: str | None  # the error's last line ("NameError: name 'x' is not defined"), or None


class Kernel:
    """A kernel of the server at `server_url` (ending in /), reached with `token`."""

    def __init__(self, server_url: str, token: str, kernel_id: str) -> None:
        self.server_url, self.token, self.id = server_url, token, kernel_id

    @classmethod
    def start(cls, server_url: str, token: str, timeout: float = HTTP_TIMEOUT) -> Kernel:
        response = requests.post(
            f"{server_url}api/kernels", headers=_auth(token), json={}, timeout=timeout
        )
        if response.status_code != 201:
            raise KernelError(f"the server did not start a kernel: HTTP {response.status_code}")
        return cls(server_url, token, response.json()["id"])

    def alive(self) -> bool:
        url = f"{self.server_url}api/kernels/{self.id}"
        return requests.get(url, headers=_auth(self.token), timeout=HTTP_TIMEOUT).status_code == 200

    def execute(self, code: str, timeout: float = 60.0) -> Execution:
        """Run `code`; KernelError when the kernel did not answer within `timeout` seconds."""
        try:
            return asyncio.run(asyncio.wait_for(self._execute(code, timeout), timeout))
        except TimeoutError:
            raise KernelError(f"the kernel did not finish the code in {timeout:.0f} s") from None

    async def _execute(self, code: str, timeout: float) -> Execution:
        # imported here: every process that loads the code location imports this module
        from tornado.httpclient import HTTPClientError, HTTPRequest
        from tornado.websocket import WebSocketClosedError, websocket_connect

        ws_url = "ws" + self.server_url.removeprefix("http") + f"api/kernels/{self.id}/channels"
        try:
            # the server answers the upgrade once the new kernel answers it (seconds of imports
            # on a loaded node): tornado's own 20 s would cut the kernel's time short
            request = HTTPRequest(
                ws_url, headers=_auth(self.token), connect_timeout=timeout, request_timeout=timeout
            )
            connection = await websocket_connect(request)
        except (HTTPClientError, OSError) as e:
            raise KernelError(f"the kernel's websocket did not open: {e}") from None
        msg_id = uuid.uuid4().hex
        request = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "session": uuid.uuid4().hex,
                "username": "",
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "channel": "shell",
            "buffers": [],
            "content": {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        }
        output, error, replied, idle = [], None, False, False
        try:
            await connection.write_message(json.dumps(request))
            while not (replied and idle):  # the reply and the last output, in either order
                raw = await connection.read_message()
                if raw is None:
                    raise KernelError("the server closed the kernel's connection")
                msg = json.loads(raw)
                kind, content = msg["msg_type"], msg["content"]
                if kind == "status" and content["execution_state"] in ("restarting", "dead"):
                    raise KernelError(  # killed: by the memory limit, most often
                        f"the kernel died while running the code ({content['execution_state']})"
                    )
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if kind == "stream":
                    output.append(content["text"])
                elif kind in ("execute_result", "display_data"):
                    output.append(content["data"].get("text/plain", "") + "\n")
                elif kind == "error":
                    error = f"{content['ename']}: {content['evalue']}"
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status":
                    idle = content["execution_state"] == "idle"
        except WebSocketClosedError:
            raise KernelError("the server closed the kernel's connection") from None
        finally:
            connection.close()
        return Execution("".join(output), error)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}
