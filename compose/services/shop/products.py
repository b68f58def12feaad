"""The products service: the catalogue. Scale it to watch the gateway spread requests."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from common import HOSTNAME, service

PRODUCTS = {
    1: {"id": 1, "name": "webhook mug", "price_cents": 1200},
    2: {"id": 2, "name": "compose t-shirt", "price_cents": 2500},
    3: {"id": 3, "name": "container stickers", "price_cents": 300},
}

app = service("products")


@app.get("/products")
def list_products() -> dict[str, Any]:
    return {"hostname": HOSTNAME, "products": list(PRODUCTS.values())}


@app.get("/products/{product_id}")
def get_product(product_id: int) -> dict[str, Any]:
    if product_id not in PRODUCTS:
        raise HTTPException(404, f"no product {product_id}")
    return {"hostname": HOSTNAME, "product": PRODUCTS[product_id]}
