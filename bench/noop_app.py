"""The floor of the POS API's validate: a FastAPI endpoint that parses a similar body and does
nothing, served on the same uvicorn stack as ``edge-agent serve`` (``uvicorn.run`` with its
defaults, which pick httptools and uvloop when installed, and no access log).

Run as ``python -m bench.noop_app PORT``; bench_pos_api drives it with the same client, in the
same run, as the real agent.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Line(BaseModel):
    sku: str
    category: str
    quantity: int
    unit_price: int


class Basket(BaseModel):
    lines: list[Line] = []


class Body(BaseModel):
    codes: list[str]
    cashier_id: str
    member_id: str | None = None
    transaction_id: str | None = None
    basket: Basket = Basket()


class Out(BaseModel):
    ok: bool
    codes: int


app = FastAPI()


@app.post("/v1/validate", response_model=Out)
async def validate(body: Body) -> Out:
    return Out(ok=True, codes=len(body.codes))


@app.get("/v1/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
