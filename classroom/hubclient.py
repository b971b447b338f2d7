"""A client for one JupyterHub: start it, call its REST API, start a learner's server, run code in a kernel.

The kernel's websocket is a small client of our own (``Kernel``), on tornado's websocket
and jupyter_client's ``Session``, which builds the protocol messages. Why not a ready client:

- jupyter_client (8.10 here) talks to kernels over ZeroMQ only; it has no websocket channel.
- jupyter_server's (2.21) ``gateway.managers.GatewayKernelClient`` is a websocket ``KernelClient``,
  but it is configured through the ``GatewayClient`` singleton (one global URL and endpoint
  for the process, not one per learner), opens its socket with websocket-client without an
  ``Authorization`` header (the hub's token), runs a thread per kernel, and its
  ``ChannelQueue`` waits for a message by polling with ``asyncio.sleep(0)``: a busy loop per
  learner on the very CPUs the load test measures.
- jupyter-kernel-client (Datalayer) is not installed, its documented API is synchronous (a
  thread per learner), and it would be a new dependency for one loop of ``execute_request``.

What ``Kernel.execute`` relies on is the Jupyter Server websocket's JSON form of the
messaging protocol: one JSON text frame per message with a ``channel`` key, as JupyterLab
sends and receives them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

TIMEOUT = 600  # tornado's 20 s connect default is too short while a full room starts


@dataclass
class Execution:
    """What one cell did: whether it raised, its errors (``ename: evalue``) and its stderr text."""

    raised: bool = False
    errors: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


class Kernel:
    """A kernel of a learner's server, reached over its ``/channels`` websocket."""

    def __init__(self, ws: WebSocketClientConnection, session: Session):
        self.ws, self.session = ws, session

    async def execute(self, code: str, timeout: float) -> Execution:
        """Run ``code`` and return what it did, once the kernel replied and went idle."""
        msg = self.session.msg("execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True})
        msg_id = msg["header"]["msg_id"]
        await self.ws.write_message(json.dumps(dict(msg, channel="shell", buffers=[]), default=json_default))
        result = Execution()
        replied = idle = False
        while not (replied and idle):
            raw = await asyncio.wait_for(self.ws.read_message(), timeout)
            if raw is None:
                raise RuntimeError("the kernel's websocket closed")
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = reply["msg_type"], reply["content"]
            if kind == "execute_reply":
                replied = True
                result.raised = result.raised or content.get("status") == "error"
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
            elif kind == "error":
                result.raised = True
                result.errors.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "stream" and content.get("name") == "stderr":
                result.stderr.append(content["text"].strip())
        return result


def hub_message(body: bytes) -> str | None:
    """Return the "message" of a JupyterHub REST error (its own reason), or None when it has none."""
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        return None
    return message if message and message not in ("Internal Server Error", "Unknown Error") else None


class Hub:
    """A JupyterHub subprocess with a service token, and its REST API."""

    def __init__(self, proc: subprocess.Popen, log: IO[str], port: int, token: str):
        self.proc, self.log, self.token = proc, log, token
        self.url = f"http://127.0.0.1:{port}"
        self.http = AsyncHTTPClient(max_clients=200)

    @classmethod
    def start(cls, command: list[str], env: dict[str, str], cwd: Path, log: Path, port: int, token: str) -> Hub:
        """Start ``command`` (jupyterhub -f ...) with ``env``, its output in ``log``; return its client."""
        out = log.open("w")
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        return cls(proc, out, port, token)

    async def api(self, method: str, path: str, body=None, base: str = "/hub/api", timeout: float = TIMEOUT):
        """Call the REST API under ``base`` with the service token; return the decoded answer."""
        req = HTTPRequest(self.url + base + path, method=method, request_timeout=timeout,
                          connect_timeout=timeout, headers={"Authorization": f"token {self.token}"},
                          body=None if body is None else json.dumps(body), allow_nonstandard_methods=True)
        resp = await self.http.fetch(req, raise_error=False)
        if resp.code >= 400:
            raise RuntimeError(f"{method} {path}: {hub_message(resp.body) or f'HTTP {resp.code}'}")
        return json.loads(resp.body) if resp.body else None

    async def spawn_failure(self, name: str) -> str | None:
        """Return the hub's own reason why a learner's server failed to start (its progress events), or None."""
        req = HTTPRequest(f"{self.url}/hub/api/users/{name}/server/progress", request_timeout=30,
                          headers={"Authorization": f"token {self.token}"})
        resp = await self.http.fetch(req, raise_error=False)
        events = [json.loads(line[5:]) for line in (resp.body or b"").decode().splitlines()
                  if line.startswith("data:")]
        return next((e.get("message") for e in reversed(events) if e.get("failed")), None)

    async def wait_up(self, timeout: float = 120) -> None:
        """Return once the hub answers; raise if it exits or stays silent for ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited ({self.proc.returncode}); see {self.log.name}")
            try:
                await self.api("GET", "/")
                return
            except (RuntimeError, OSError, HTTPClientError):
                await asyncio.sleep(0.5)
        raise RuntimeError(f"the hub did not answer within {timeout:.0f} s; see {self.log.name}")

    async def add_users(self, names: list[str]) -> None:
        """Create the hub users among ``names`` that it does not have yet."""
        existing = {u["name"] for u in await self.api("GET", "/users")}  # allowed_users adds them
        if set(names) - existing:
            await self.api("POST", "/users", {"usernames": sorted(set(names) - existing)})

    async def start_server(self, name: str) -> None:
        """Ask for a learner's server and return once it is ready."""
        try:
            await self.api("POST", f"/users/{name}/server")
        except RuntimeError as exc:  # the hub's JSON message, else the reason in its progress events
            raise RuntimeError(await self.spawn_failure(name) or str(exc)) from None
        while True:
            user = await self.api("GET", f"/users/{name}")
            server = user.get("servers", {}).get("")
            if server and server.get("ready"):
                return
            if not server or not server.get("pending"):
                raise RuntimeError(await self.spawn_failure(name) or "the server stopped while starting")
            await asyncio.sleep(0.5)

    async def stop_server(self, name: str) -> None:
        """Stop a learner's server; a server already gone is fine."""
        try:
            await self.api("DELETE", f"/users/{name}/server")
        except RuntimeError:
            pass

    @asynccontextmanager
    async def kernel(self, name: str, path: str = "notebooks") -> AsyncIterator[Kernel]:
        """Start a fresh python3 kernel in a learner's server, yield it, then shut it down."""
        base = f"/user/{name}/api"
        model = await self.api("POST", "/kernels", {"name": "python3", "path": path}, base=base)
        session = Session(username=name)
        ws_url = (f"{self.url.replace('http', 'ws', 1)}{base}/kernels/{model['id']}/channels"
                  f"?session_id={session.session}")
        try:
            ws = await websocket_connect(
                HTTPRequest(ws_url, headers={"Authorization": f"token {self.token}"},
                            connect_timeout=TIMEOUT, request_timeout=TIMEOUT),
                max_message_size=256 * 1024 * 1024)
            try:
                yield Kernel(ws, session)
            finally:
                ws.close()
        finally:
            await self.api("DELETE", f"/kernels/{model['id']}", base=base)

    def stop(self) -> None:
        """Stop the hub (it stops the learners' servers) and close its log."""
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
