"""The users service: who may order. A fixed list here; a real one would own a database."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from common import HOSTNAME, service

USERS = {
    1: {"id": 1, "name": "Ada"},
    2: {"id": 2, "name": "Grace"},
    3: {"id": 3, "name": "Linus"},
}

app = service("users")


@app.get("/users")
def list_users() -> dict[str, Any]:
    return {"hostname": HOSTNAME, "users": list(USERS.values())}


@app.get("/users/{user_id}")
def get_user(user_id: int) -> dict[str, Any]:
    if user_id not in USERS:
        raise HTTPException(404, f"no user {user_id}")
    return {"hostname": HOSTNAME, "user": USERS[user_id]}
