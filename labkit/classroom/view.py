"""The instructor's live view of the class: a JupyterHub service.

The hub starts it (``python -m labkit.classroom.view``) and routes ``/services/class-view/`` to
it. It has two sides:

- ``POST .../progress`` receives each learner's checks as a Standard Webhooks message signed
  with that learner's own secret (:mod:`.keys`); a message that does not verify gets a 401 and
  is stored and shown nowhere.
- The page, its live table and the CSV and HTML exports are for the hub's admins only: the
  browser signs in through the hub (OAuth), a script sends ``Authorization: token ...`` of an
  admin or of the kit's ``labkit-admin`` service.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import html
import io
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse

from labkit.classroom.ledger import Ledger, checks_from
from labkit.errors import BadReport, SignatureError
from labkit.paths import setting
from labkit.teaching.reporting import EVENT_TYPE, learner_secret
from labkit.webhooks.serving import with_header_deadline
from labkit.webhooks.signing import verify_standard

NAME = "class-view"
ADMIN_SERVICE = "labkit-admin"
COOKIE = "labkit-class-view"
MAX_BODY = 512 * 1024
REFRESH_SECONDS = 3
#: How long a sign-in lasts (then the hub is asked again, so a removed admin loses access).
COOKIE_SECONDS = 2 * 3600


@dataclass(frozen=True)
class Hub:
    """What the view needs of the hub: its API, the service's token, and the OAuth client."""

    api_url: str  # e.g. http://172.18.0.1:8081/hub/api
    token: str
    client_id: str = f"service-{NAME}"
    callback: str = f"/services/{NAME}/oauth_callback"
    base_url: str = "/"

    @classmethod
    def from_env(cls) -> Hub:
        env = os.environ
        return cls(
            env["JUPYTERHUB_API_URL"].rstrip("/"),
            env["JUPYTERHUB_API_TOKEN"],
            env.get("JUPYTERHUB_CLIENT_ID", f"service-{NAME}"),
            env.get("JUPYTERHUB_OAUTH_CALLBACK_URL", f"/services/{NAME}/oauth_callback"),
            env.get("JUPYTERHUB_BASE_URL", "/"),
        )

    def _get(self, path: str, token: str) -> Any:
        answer = httpx.get(
            self.api_url + path, headers={"Authorization": f"token {token}"}, timeout=10
        )
        if answer.status_code in (401, 403, 404):
            return None
        answer.raise_for_status()
        return answer.json()

    def users(self) -> list[dict[str, Any]]:
        found = self._get("/users", self.token)
        return list(found) if isinstance(found, list) else []

    def is_instructor(self, token: str) -> str | None:
        """The name behind ``token`` when it may see the class (an admin, or the kit's admin
        service); else None."""
        who = self._get("/user", token)
        if not isinstance(who, dict):
            return None
        if who.get("kind") == "service":
            return str(who["name"]) if who.get("name") == ADMIN_SERVICE else None
        user = self._get(f"/users/{who.get('name')}", self.token)
        return str(who["name"]) if isinstance(user, dict) and user.get("admin") else None

    def token_for_code(self, code: str) -> str:
        answer = httpx.post(
            self.api_url + "/oauth2/token",
            data={
                "client_id": self.client_id,
                "client_secret": self.token,
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.callback,
            },
            timeout=10,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])


def _epoch(iso: Any) -> float | None:
    """The hub's ISO 8601 time (``2026-12-04T10:00:00.123Z``) as Unix seconds; None if absent."""
    if not isinstance(iso, str) or not iso:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _age(seconds: float | None, now: float) -> str:
    if seconds is None:
        return "not yet"
    gone = max(0, int(now - seconds))
    if gone < 60:
        return f"{gone} s ago"
    if gone < 3600:
        return f"{gone // 60} min ago"
    return f"{gone // 3600} h {gone % 3600 // 60} min ago"


def make_app(folder: Path, hub: Hub | None, *, prefix: str = f"/services/{NAME}/") -> FastAPI:
    """The view's ASGI app; ``hub`` None serves the exports to nobody (tests of the receiver)."""
    folder = Path(folder)
    key = (folder / "classroom.key").read_bytes()
    ledger = Ledger(folder / "class-progress.db")
    cookie_key = hmac.new(key, b"labkit-class-view-cookie", hashlib.sha256).digest()
    prefix = "/" + prefix.strip("/") + "/"
    app = FastAPI(title="labkit class view", docs_url=None, redoc_url=None, openapi_url=None)

    def learners() -> list[dict[str, Any]]:
        if hub is None:
            return [{"name": n} for n in ledger.learners()]
        return [u for u in hub.users() if not u.get("admin") and u.get("kind", "user") == "user"]

    def snapshot() -> dict[str, Any]:
        users = learners()
        servers = {u["name"]: bool(u.get("server")) for u in users}
        # The hub's own idea of activity (browser, kernels), next to the last check.
        seen = {u["name"]: _epoch(u.get("last_activity")) for u in users}
        rows = ledger.rows(servers)
        return {
            "learners": [
                {
                    "learner": r.learner,
                    "server": "running" if servers.get(r.learner) else "stopped",
                    "lesson": r.lesson,
                    "last_check": r.last_check,
                    "last_activity": max(
                        (t for t in (r.last_check, seen.get(r.learner)) if t is not None),
                        default=None,
                    ),
                    "passed": r.passed,
                    "tried": r.tried,
                    "stuck_on": r.stuck_on,
                    "stuck_tries": r.stuck_tries,
                }
                for r in rows
            ],
            "most_failed": [f.__dict__ for f in ledger.most_failed()],
        }

    def signed_cookie(name: str) -> str:
        expires = str(int(time.time()) + COOKIE_SECONDS)
        mac = hmac.new(cookie_key, f"{name}|{expires}".encode(), hashlib.sha256).hexdigest()
        return f"{name}|{expires}|{mac}"

    def cookie_user(value: str | None) -> str | None:
        if not value or value.count("|") != 2:
            return None
        name, expires, mac = value.split("|")
        want = hmac.new(cookie_key, f"{name}|{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, mac) or int(expires or 0) < time.time():
            return None
        return name

    def instructor(request: Request) -> str | None:
        if hub is None:
            return None
        name = cookie_user(request.cookies.get(COOKIE))
        if name:
            return name
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() in ("token", "bearer") and token:
            return hub.is_instructor(token.strip())
        return None

    def guarded(render: Callable[[], Response]) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            if instructor(request) is None:
                if hub is None or request.headers.get("authorization"):
                    return PlainTextResponse(
                        "The class view is for the workshop's instructors (hub admins).", 403
                    )
                state = secrets.token_urlsafe(16)
                query = urlencode(
                    {
                        "client_id": hub.client_id,
                        "redirect_uri": hub.callback,
                        "response_type": "code",
                        "state": state,
                    }
                )
                go = RedirectResponse(f"{hub.base_url}hub/api/oauth2/authorize?{query}", 302)
                go.set_cookie(
                    COOKIE + "-state",
                    state + "|" + request.url.path,
                    httponly=True,
                    samesite="lax",
                    path=prefix,
                )
                return go
            return render()

        return handler

    @app.post(prefix + "progress")
    async def progress(request: Request) -> Response:
        too_big = JSONResponse({"error": f"a report holds at most {MAX_BODY} bytes"}, 413)
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return too_big
        body = b""
        async for chunk in request.stream():  # never more than MAX_BODY in memory
            body += chunk
            if len(body) > MAX_BODY:
                return too_big
        try:
            message = json.loads(body)
            if not isinstance(message, dict) or message.get("type") != EVENT_TYPE:
                raise BadReport(f"type must be {EVENT_TYPE!r}")
            data = message.get("data")
            who, checks = checks_from(data if isinstance(data, dict) else {})
        except (ValueError, BadReport, RecursionError) as exc:
            return JSONResponse({"error": f"not a progress report: {exc}"}, 422)
        try:
            verify_standard(
                learner_secret(key, who),
                request.headers.get("webhook-id"),
                request.headers.get("webhook-timestamp"),
                request.headers.get("webhook-signature"),
                body,
            )
        except SignatureError as exc:
            return JSONResponse({"error": f"signature: {exc}"}, 401)
        added = await run_in_threadpool(
            ledger.add, who, str(request.headers.get("webhook-id")), checks
        )
        return JSONResponse({"learner": who, "received": len(checks), "new": added}, 202)

    def table_html() -> str:
        snap, now = snapshot(), time.time()
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    r["learner"],
                    r["server"],
                    r["lesson"] or "-",
                    _age(r["last_activity"], now),
                    f"{r['passed']} / {r['tried']}",
                    f"{r['stuck_on']} ({r['stuck_tries']} tries)" if r["stuck_on"] else "-",
                )
            )
            + "</tr>"
            for r in snap["learners"]
        )
        failed = "".join(
            f"<tr><td>{html.escape(f['exercise'])}</td><td>{f['failures']}</td>"
            f"<td>{f['learners_tried']}</td><td>{f['learners_not_passed']}</td></tr>"
            for f in snap["most_failed"]
        )
        return (
            f"<p>{len(snap['learners'])} learners, as of {time.strftime('%H:%M:%S')}</p>"
            "<table><tr><th>learner</th><th>server</th><th>lesson</th><th>last activity</th>"
            f"<th>passed / tried</th><th>stuck on</th></tr>{rows}</table>"
            "<h2>Checks most failed across the class</h2>"
            "<table><tr><th>exercise</th><th>failed checks</th><th>learners who tried</th>"
            f"<th>not passed yet</th></tr>{failed}</table>"
        )

    style = (
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}</style>"
    )

    def page() -> Response:
        script = (
            # A session that has ended answers with a redirect to the hub: reload to sign in.
            "<script>setInterval(async()=>{const r=await fetch('table',"
            "{credentials:'same-origin',redirect:'manual'});if(r.ok){document.getElementById("
            "'class').innerHTML=await r.text();}else{location.reload();}}"
            f",{REFRESH_SECONDS * 1000});</script>"
        )
        return HTMLResponse(
            f"<!doctype html><title>Class view</title>{style}<h1>Class view</h1>"
            '<p><a href="class.csv">CSV</a> · <a href="class.html">HTML export</a></p>'
            f'<div id="class">{table_html()}</div>{script}'
        )

    def export_csv() -> Response:
        out = io.StringIO()
        fields = [
            "learner",
            "server",
            "lesson",
            "last_check",
            "last_activity",
            "passed",
            "tried",
            "stuck_on",
        ]
        writer = csv.DictWriter(out, fields, extrasaction="ignore")
        writer.writeheader()
        for r in snapshot()["learners"]:
            writer.writerow(
                {
                    **r,
                    **{
                        k: "" if r[k] is None else time.strftime("%F %T", time.gmtime(r[k]))
                        for k in ("last_check", "last_activity")
                    },
                }
            )
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"content-disposition": 'attachment; filename="class.csv"'},
        )

    def export_html() -> Response:
        return HTMLResponse(f"<!doctype html><title>Class</title>{style}{table_html()}")

    app.get(prefix)(guarded(page))
    app.get(prefix + "table")(guarded(lambda: HTMLResponse(table_html())))
    app.get(prefix + "class.csv")(guarded(export_csv))
    app.get(prefix + "class.html")(guarded(export_html))
    app.get(prefix + "class.json")(guarded(lambda: JSONResponse(snapshot())))

    @app.get(prefix + "oauth_callback")
    def oauth_callback(request: Request, code: str = "", state: str = "") -> Response:
        saved = request.cookies.get(COOKIE + "-state", "")
        want, _, back = saved.partition("|")
        if hub is None or not code or not state or not hmac.compare_digest(want, state):
            return PlainTextResponse("Sign-in failed: start again from the class view.", 400)
        try:
            name = hub.is_instructor(hub.token_for_code(code))
        except httpx.HTTPError:
            name = None
        if name is None:
            return PlainTextResponse(
                "The class view is for the workshop's instructors (hub admins).", 403
            )
        go = RedirectResponse(back if back.startswith(prefix) else prefix, 302)
        secure = request.headers.get("x-forwarded-proto", request.url.scheme) == "https"
        go.set_cookie(
            COOKIE,
            signed_cookie(name),
            httponly=True,
            samesite="lax",
            path=prefix,
            secure=secure,
            max_age=COOKIE_SECONDS,
        )
        go.delete_cookie(COOKIE + "-state", path=prefix)
        return go

    return app


def main() -> None:
    """Run as the hub's managed service (the hub sets the ``JUPYTERHUB_*`` variables)."""
    import uvicorn

    where = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    # On Kubernetes the service's URL names the hub's Service, not an address of this pod.
    host = setting("LABKIT_CLASSROOM_BIND") or where.hostname or "127.0.0.1"
    app = make_app(
        Path(setting("LABKIT_CLASSROOM_DIR")),
        Hub.from_env(),
        prefix=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{NAME}/"),
    )
    uvicorn.run(
        app,
        host=host,
        port=where.port or 80,
        http=with_header_deadline(),
        log_level="warning",
    )


if __name__ == "__main__":
    main()
