"""The web app the pipeline lessons change, push, build, ship and deploy: a greeting and its version."""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.responses import JSONResponse

# Lesson 06 changes this line, commits and pushes it.
GREETING = "Hello from the lab's web app!"

# Lesson 07 sets this to False to ship a version that never becomes healthy.
HEALTHY = True

# The runtime says which build this process runs (the short commit id it was tagged with).
VERSION = os.environ.get("APP_VERSION", "dev")
COMMIT = os.environ.get("APP_COMMIT", "")

app = FastAPI(title="lab web app", version=VERSION)


@app.get("/")
def hello() -> dict[str, str]:
    return {"message": GREETING, "version": VERSION}


@app.get("/version")
def version() -> dict[str, str]:
    return {"version": VERSION, "commit": COMMIT}


@app.get("/healthz")
def healthz() -> JSONResponse:
    if not HEALTHY:
        return JSONResponse({"status": "unhealthy", "version": VERSION}, status_code=503)
    return JSONResponse({"status": "ok", "version": VERSION})


@app.get("/visits")
def visits() -> JSONResponse:
    """Count this visit in the stack's MariaDB (``DB_HOST`` set by compose.yaml), if there is one."""
    if not os.environ.get("DB_HOST"):
        return JSONResponse({"detail": "no database here: this deploy has no DB_HOST"},
                            status_code=404)
    import pymysql  # only where a database is configured

    with open(os.environ["DB_PASSWORD_FILE"]) as f:
        password = f.read().strip()
    db = pymysql.connect(host=os.environ["DB_HOST"], user=os.environ["DB_USER"],
                         password=password, database=os.environ["DB_NAME"], connect_timeout=3,
                         autocommit=True)
    with db, db.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS visits (n BIGINT PRIMARY KEY AUTO_INCREMENT)")
        cursor.execute("INSERT INTO visits VALUES ()")
        cursor.execute("SELECT COUNT(*), VERSION() FROM visits")
        count, server = cursor.fetchone()
    return JSONResponse({"visits": count, "database": f"MariaDB {server}", "version": VERSION})


try:  # Prometheus scrapes /metrics where the Docker runtime runs it; optional elsewhere.
    from prometheus_client import make_asgi_app
except ImportError:  # pragma: no cover - the local runtime's monitor probes /healthz instead
    pass
else:
    app.mount("/metrics", make_asgi_app())
