"""The OpenAPI document tells the truth (security, every error response, reason codes), and the
browsable docs work on a box with no internet."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from edge_agent.domain.decision import Reason
from tests.api.conftest import Server


def _doc(server: Server) -> dict[str, Any]:
    with server.client(None) as anon:
        doc: dict[str, Any] = anon.get("/openapi.json").json()
    return doc


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


EXPECTED_ERRORS = {
    ("post", "/v1/validate"): {"400", "401", "413", "422", "503"},
    ("post", "/v1/reserve"): {"400", "401", "409", "413", "422", "503"},
    ("post", "/v1/commit"): {"400", "401", "409", "413", "422", "503"},
    ("post", "/v1/void"): {"400", "401", "404", "413", "422", "503"},
    ("post", "/v1/reverse"): {"400", "401", "404", "409", "413", "422", "503"},
    ("post", "/v1/links"): {"400", "401", "404", "409", "413", "422", "503"},
    ("get", "/v1/members/{member_id}/linked-codes"): {"401", "422", "503"},
    ("get", "/v1/codes/{code}"): {"401", "404", "422", "503"},
    ("get", "/v1/tills/{till_id}/member"): {"401", "403", "422", "503"},
    ("delete", "/v1/tills/{till_id}/member"): {"401", "403", "422", "503"},
    ("post", "/v1/receipt-coupons"): {"400", "401", "409", "413", "422", "503"},
    ("get", "/v1/receipt-coupons/{transaction_id}/print"): {"401", "404", "422", "503"},
    ("post", "/v1/receipt-coupons/{transaction_id}/reprint"): {"401", "404", "422", "503"},
    ("post", "/v1/points/quote"): {"400", "401", "413", "422", "503"},
    ("post", "/v1/points/checkout"): {"400", "401", "409", "413", "422", "503"},
    ("post", "/v1/points/void"): {"400", "401", "403", "404", "413", "422", "503"},
    ("post", "/v1/points/returns"): {"400", "401", "404", "409", "413", "422", "503"},
    ("get", "/v1/members/{member_id}/points"): {"401", "404", "422", "503"},
}


def test_bearer_scheme_is_declared_and_every_protected_route_lists_it(server: Server) -> None:
    doc = _doc(server)
    schemes = doc["components"]["securitySchemes"]
    [(name, scheme)] = schemes.items()
    assert scheme["type"] == "http" and scheme["scheme"].lower() == "bearer"
    for (method, path), _ in EXPECTED_ERRORS.items():
        op = doc["paths"][path][method]
        assert op.get("security") == [{name: []}], (method, path)
        # the token is the security scheme, not a free-form header parameter
        assert all(p["name"].lower() != "authorization" for p in op.get("parameters", []))
    assert "security" not in doc["paths"]["/v1/health"]["get"]


def test_every_error_a_route_can_give_is_documented_in_the_shape_sent(server: Server) -> None:
    doc = _doc(server)
    operations = {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if path != "/v1/health"
    }
    assert operations == set(EXPECTED_ERRORS)
    for (method, path), errors in EXPECTED_ERRORS.items():
        responses = doc["paths"][path][method]["responses"]
        documented = {s for s in responses if s.startswith(("4", "5"))}
        assert documented == errors, (method, path, documented ^ errors)
        for status in errors:
            schema = responses[status]["content"]["application/json"]["schema"]
            body = _resolve(doc, schema)
            assert set(body["required"]) == {"error", "detail"}, (path, status)
    assert set(doc["paths"]["/v1/health"]["get"]["responses"]) == {"200", "503"}


def test_refusal_reasons_are_an_enum(server: Server) -> None:
    doc = _doc(server)
    decision = doc["components"]["schemas"]["DecisionOut"]
    options = decision["properties"]["reason"]["anyOf"]
    enum = next(_resolve(doc, o) for o in options if "$ref" in o or "enum" in o)
    assert set(enum["enum"]) == {r.value for r in Reason}


def test_docs_use_no_external_host_and_their_assets_are_served(server: Server) -> None:
    with server.client(None) as anon:
        page = anon.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
        assert urls, page.text
        assert not re.search(r"https?://", page.text), "docs page names an external host"
        assets = [u for u in urls if not u.endswith("openapi.json")]
        assert any(u.endswith(".js") for u in assets) and any(u.endswith(".css") for u in assets)
        for url in [*assets, "/openapi.json"]:
            assert not urlsplit(url).netloc, url
            assert anon.get(url).status_code == 200, url
        redoc = anon.get("/redoc")
        if redoc.status_code == 200:
            assert not re.search(r"https?://", redoc.text), "redoc page names an external host"
            for url in re.findall(r"""src=['"]([^'"]+)['"]""", redoc.text):
                assert anon.get(url).status_code == 200, url
        else:
            assert redoc.status_code == 404
