"""Driving a workshop hub the way a test must: through the hub's REST API as the kit's admin
service, each learner's Jupyter Server API through the hub's proxy, and their kernels over the
kernel WebSocket protocol (the same messages JupyterLab sends)."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websocket

from labkit.classroom.hub import Classroom


def process_group(pgid: int) -> list[int]:
    """The pids of every process in group ``pgid`` (the hub starts its proxy, view and local
    learners in its own group)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.getpgid(int(proc.name)) == pgid:
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def wait_until(what: str, ready: Any, timeout: float, every: float = 0.5) -> Any:
    """Poll ``ready()`` until it returns something true; fail saying ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)


def start_server(room: Classroom, name: str, timeout: float = 300) -> None:
    answer = room.request("POST", f"/users/{name}/server")
    assert answer.status_code in (201, 202, 400), answer.text  # 400: already running

    def running() -> bool:
        user = room.request("GET", f"/users/{name}").json()
        return bool(user.get("server")) and not user.get("pending")

    wait_until(f"{name}'s server", running, timeout)


@dataclass
class Kernel:
    """One kernel in a learner's server, driven over its WebSocket channels."""

    room: Classroom
    learner: str
    id: str = ""
    ws: Any = field(default=None, repr=False)

    def _base(self) -> str:
        return f"{self.room.url}user/{self.learner}/api"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.room.admin_token()}"}

    def start(self) -> Kernel:
        answer = httpx.post(
            self._base() + "/kernels", json={"name": "python3"}, headers=self._headers(), timeout=60
        )
        answer.raise_for_status()
        self.id = answer.json()["id"]
        url = self._base().replace("http://", "ws://") + f"/kernels/{self.id}/channels"
        self.ws = websocket.create_connection(
            url, header=[f"{k}: {v}" for k, v in self._headers().items()], timeout=300
        )
        return self

    def run(self, code: str) -> tuple[str, str]:
        """Execute ``code``; returns (status, output text): status is "ok" or "error"."""
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": self.learner,
                        "session": uuid.uuid4().hex,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        out: list[str] = []
        status = ""
        idle = False
        while not (status and idle):
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                out.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                out.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "execute_reply":
                status = content["status"]
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        return status, "\n".join(out)

    def stop(self) -> None:
        if self.ws is not None:
            self.ws.close()
        httpx.delete(self._base() + f"/kernels/{self.id}", headers=self._headers(), timeout=30)
