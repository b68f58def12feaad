"""The orders service: asks users and products (found by name) and stores each order in MariaDB."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import pymysql
import pymysql.cursors
from fastapi import HTTPException
from pydantic import BaseModel, Field

from common import HOSTNAME, service


def connect() -> pymysql.connections.Connection[Any]:
    # The password comes from the Compose secret file; it is never logged or returned.
    with open(os.environ["DB_PASSWORD_FILE"]) as f:
        password = f.read().strip()
    return pymysql.connect(host=os.environ.get("DB_HOST", "db"), user=os.environ["DB_USER"],
                           password=password, database=os.environ["DB_NAME"], connect_timeout=3,
                           autocommit=True, cursorclass=pymysql.cursors.DictCursor)


def database_ready() -> None:
    """Health: the database answers and has the orders table (created here on first success)."""
    with connect() as db, db.cursor() as cur:
        cur.execute("""CREATE TABLE IF NOT EXISTS orders (
                         id INT AUTO_INCREMENT PRIMARY KEY,
                         user_id INT NOT NULL,
                         product_id INT NOT NULL,
                         quantity INT NOT NULL,
                         created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)""")


app = service("orders", check=database_ready)


class NewOrder(BaseModel):
    user_id: int
    product_id: int
    quantity: int = Field(1, ge=1, le=100)


def ask(service_name: str, path: str) -> dict[str, Any]:
    """GET another service by its Compose service name: Docker's DNS resolves it on our network."""
    try:
        with urllib.request.urlopen(f"http://{service_name}:8000{path}", timeout=3) as response:
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
    with connect() as db, db.cursor() as cur:
        cur.execute("INSERT INTO orders (user_id, product_id, quantity) VALUES (%s, %s, %s)",
                    (order.user_id, order.product_id, order.quantity))
        order_id = cur.lastrowid
    return {"hostname": HOSTNAME,
            "order": {"id": order_id, **order.model_dump(),
                      "total_cents": product["product"]["price_cents"] * order.quantity},
            "checked_with": {"users": user["hostname"], "products": product["hostname"]}}


@app.get("/orders")
def list_orders(limit: int = 20) -> dict[str, Any]:
    with connect() as db, db.cursor() as cur:
        cur.execute("SELECT id, user_id, product_id, quantity FROM orders "
                    "ORDER BY id DESC LIMIT %s", (max(1, min(limit, 100)),))
        rows = cur.fetchall()
    return {"hostname": HOSTNAME, "orders": list(rows)}

