"""The orders service: asks users and products (found by name) and stores each order in MariaDB.

With DB_URL=sqlite:///PATH (what labkit's local stand-in sets, having no MariaDB to run) the
orders go into that SQLite file instead; every other line is the same on both.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.error
import urllib.request
from contextlib import closing
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, Field

from common import HOSTNAME, pick, service

SQLITE = "sqlite:///"
DB_URL = os.environ.get("DB_URL", "")
CREATE = """CREATE TABLE IF NOT EXISTS orders (
              id {key},
              user_id INT NOT NULL,
              product_id INT NOT NULL,
              quantity INT NOT NULL,
              created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"""


def run(sql: str, params: tuple[Any, ...] = ()) -> tuple[list[dict[str, Any]], int | None]:
    """Run one statement (``%s`` placeholders); returns its rows and the id it inserted."""
    if DB_URL.startswith(SQLITE):
        with closing(sqlite3.connect(DB_URL[len(SQLITE):], timeout=5,
                                     isolation_level=None)) as db:
            cur = db.execute(sql.replace("%s", "?"), params)
            columns = [c[0] for c in cur.description or ()]
            return [dict(zip(columns, row)) for row in cur.fetchall()], cur.lastrowid
    import pymysql
    import pymysql.cursors

    # The password comes from the Compose secret file; it is never logged or returned.
    with open(os.environ["DB_PASSWORD_FILE"]) as f:
        password = f.read().strip()
    with pymysql.connect(host=os.environ.get("DB_HOST", "db"), user=os.environ["DB_USER"],
                         password=password, database=os.environ["DB_NAME"], connect_timeout=3,
                         autocommit=True, cursorclass=pymysql.cursors.DictCursor) as db, \
            db.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall()), cur.lastrowid


def database_ready() -> None:
    """Health: the database answers and has the orders table (created here on first success)."""
    run(CREATE.format(key="INTEGER PRIMARY KEY AUTOINCREMENT" if DB_URL.startswith(SQLITE)
                      else "INT AUTO_INCREMENT PRIMARY KEY"))


app = service("orders", check=database_ready)


class NewOrder(BaseModel):
    user_id: int
    product_id: int
    quantity: int = Field(1, ge=1, le=100)


def ask(service_name: str, path: str) -> dict[str, Any]:
    """GET another service found by its Compose service name (see common.addresses)."""
    try:
        with urllib.request.urlopen(f"http://{pick(service_name)}{path}", timeout=3) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise HTTPException(422, f"{service_name} says: {path} does not exist") from exc
        raise HTTPException(502, f"{service_name} answered HTTP {exc.code}") from exc
    except OSError as exc:
        raise HTTPException(502, f"{service_name} is not answering: {exc}") from exc


@app.post("/orders", status_code=201)
def create_order(order: NewOrder) -> dict[str, Any]:
    user = ask("users", f"/users/{order.user_id}")
    product = ask("products", f"/products/{order.product_id}")
    _, order_id = run("INSERT INTO orders (user_id, product_id, quantity) VALUES (%s, %s, %s)",
                      (order.user_id, order.product_id, order.quantity))
    return {"hostname": HOSTNAME,
            "order": {"id": order_id, **order.model_dump(),
                      "total_cents": product["product"]["price_cents"] * order.quantity},
            "checked_with": {"users": user["hostname"], "products": product["hostname"]}}


@app.get("/orders")
def list_orders(limit: int = 20) -> dict[str, Any]:
    rows, _ = run("SELECT id, user_id, product_id, quantity FROM orders ORDER BY id DESC LIMIT %s",
                  (max(1, min(limit, 100)),))
    return {"hostname": HOSTNAME, "orders": rows}

