"""The README's "Setting up a store box" commands, run as written (the way sqlite-utils tests its
docs), so a retailer's IT person following them gets a working box and the README cannot drift.

The block between ``<!-- readme-setup:begin -->`` and ``<!-- readme-setup:end -->`` runs in
bash (``-euo pipefail``) in an empty directory with the project's commands on the PATH. The one
change made to it: the API port becomes a free one, so the test never collides with a real
agent. Its last command (``serve``) is started as a server; the test then plays the till.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge_agent.issuing import signing_key
from tests.agent_process import free_port, wait_for_health

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent


def setup_block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- readme-setup:begin -->\n```sh\n(.*?)```\n<!-- readme-setup:end -->", text, re.S
    )
    assert found, "README lost its setup block"
    return found.group(1).splitlines()


def env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture
def box(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """Run the setup block up to ``serve``; yield (directory, base URL, till token)."""
    lines = setup_block()
    serve = lines[-1]
    assert serve.startswith("edge-agent --config agent.toml serve"), serve
    port = free_port()
    script = "\n".join(lines[:-1]).replace("port = 8470", f"port = {port}")
    assert f"port = {port}" in script
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"README setup failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    token = re.search(r"token for till-1 .*:\n  (\S+)", done.stdout)
    assert token, done.stdout
    server = subprocess.Popen(
        ["bash", "-c", f"exec {serve}"],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_health(url, server).status_code == 200
        yield tmp_path, url, token.group(1)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_readme_setup_gives_a_working_box(box: tuple[Path, str, str]) -> None:
    where, url, token = box
    with (where / "codes.csv").open(encoding="utf-8") as f:
        codes = {row["member_id"]: row["code"] for row in csv.DictReader(f)}
    basket = {"lines": [{"sku": "tea", "category": "drinks", "quantity": 5, "unit_price": 500}]}
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as till:
        assert till.get("/v1/health").json()["store_id"] == "store-001"
        body = {"codes": [codes["M1001"]], "cashier_id": "c-1", "member_id": "M1001"}
        paid = till.post("/v1/commit", json={**body, "transaction_id": "T-1", "basket": basket})
        assert paid.status_code == 200, paid.text
        assert paid.json()["results"][0]["redemption"]["amount"] == 500
        # The member's next-visit coupon, minted in the namespace HQ assigned the store.
        checkout = {"transaction_id": "T-1", "cashier_id": "c-1", "member_id": "M1001"}
        coupon = till.post("/v1/receipt-coupons", json={**checkout, "basket": basket}).json()
        assert coupon["issued"], coupon
        namespace = coupon["coupon"]["code"][2:4]
        assert namespace != "22"  # HQ's own namespace; the store's came with the snapshot
    # Without the token the box refuses.
    assert httpx.post(f"{url}/v1/validate", json=body).status_code == 401


def test_the_printed_register_line_works_for_a_key_that_starts_with_a_dash(
    tmp_path: Path,
) -> None:
    key = tmp_path / "signing.key"
    for _ in range(2_000):  # about 1 key in 64 starts with "-" (base64url)
        if signing_key.create(key).public_key.startswith("-"):
            break
        key.unlink()
    else:
        pytest.fail("no key starting with '-' in 2000 draws")
    config = tmp_path / "agent.toml"
    config.write_text(f'[signing]\nkey_path = "{key}"\n', encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=tmp_path, env=env(), capture_output=True, text=True, check=False
        )

    shown = run("edge-agent", "--config", str(config), "keys", "show")
    line = next(x for x in shown.stdout.splitlines() if x.startswith("register at HQ: "))
    assert run("storeside-hq", "init").returncode == 0
    registered = run(*shlex.split(line.removeprefix("register at HQ: ")))
    assert registered.returncode == 0, registered.stderr
    listed = run("storeside-hq", "keys", "list").stdout
    assert signing_key.info(key, signing_key.load(key)).public_key in listed
