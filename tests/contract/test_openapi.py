"""``/api/v1/openapi.json`` and ``/api/v1/docs``: public, valid, and a complete description of
the app's routes (every route, method, success answer, error code, summary and example).

The route list comes from the app's own ``url_map``, so a route added without documentation
fails here rather than going unnoticed.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import schemathesis
from quart_schema.openapi import QUART_SCHEMA_HIDDEN_ATTRIBUTE
from quart_trio import QuartTrio
from schemathesis.core.result import Err
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from runlater.web.openapi import DOCS_PATH, SPEC_PATH
from tests.contract.conftest import Client
from tests.contract.spec_tools import (
    CONTRACT_ERROR_CODES,
    api_operations,
    data_models,
    error_codes,
    json_bodies,
    operations,
    resolve,
    schema_errors,
)

AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}  # answered by the framework for every route


def documented_rules(app: QuartTrio) -> list[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every HTTP route of the app, except the spec and docs routes
    themselves (hidden) and the dashboard's pages (for browsers, not the API's contract).
    Websocket routes are not HTTP operations and cannot be in the spec."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("pages."):
            continue
        view = app.view_functions[rule.endpoint]
        if getattr(view, QUART_SCHEMA_HIDDEN_ATTRIBUTE, False) or rule.websocket:
            continue
        path = re.sub(r"<(?:[^:<>]*:)?([^<>]+)>", r"{\1}", rule.rule)
        assert rule.methods is not None, rule  # None would mean "any method"; Quart sets them
        found += [(method, path) for method in sorted(rule.methods - AUTOMATIC_METHODS)]
    return found


def all_schemas(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema object in the spec (under a ``schema`` key or in components)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}/{key}"
            if (key == "schema" and isinstance(value, dict)) or where == "/components/schemas":
                found.append((here, value))
            found += all_schemas(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += all_schemas(value, f"{where}/{index}")
    return found


async def test_spec_is_public_valid_openapi_and_loads_in_schemathesis(app: QuartTrio) -> None:
    reply = await Client(app, None).call("GET", SPEC_PATH)
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    spec = reply.body
    assert spec["openapi"].startswith("3.1")
    OPENAPI_31_VALIDATOR.validate(spec)
    for where, schema in all_schemas(spec):
        assert jsonschema_rs.meta.is_valid(schema), f"invalid JSON Schema at {where}: {schema}"
    loaded = schemathesis.openapi.from_dict(spec)
    loaded.validate()
    results = list(loaded.get_all_operations())
    invalid = [result.err() for result in results if isinstance(result, Err)]
    assert not invalid, invalid
    assert len(results) == len(operations(spec))


async def test_docs_render_from_local_assets(app: QuartTrio) -> None:
    anonymous = Client(app, None)
    page = await anonymous.call("GET", DOCS_PATH)
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert f'"{SPEC_PATH}"' in page.text and "SwaggerUIBundle(" in page.text
    assert "validatorUrl: null" in page.text  # no call out to validator.swagger.io
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    assert "//" not in page.text.replace("://", ""), "no protocol-relative URLs"
    for asset in assets:
        assert asset.startswith(DOCS_PATH + "/"), f"{asset} is not served by the app itself"
        served = await anonymous.call("GET", asset)
        assert served.status == 200, asset
        kind = "javascript" if asset.endswith(".js") else "css"
        assert kind in served.headers["Content-Type"], (asset, served.headers["Content-Type"])
        assert len(served.text) > 10_000, asset


async def test_every_route_and_method_is_in_the_spec_with_a_success_answer(
    app: QuartTrio, spec: dict[str, Any]
) -> None:
    rules = documented_rules(app)
    assert ("POST", "/api/v1/tasks") in rules and ("GET", "/health") in rules
    missing = [(m, p) for m, p in rules if m.lower() not in spec["paths"].get(p, {})]
    assert not missing, f"routes the spec does not describe: {missing}"
    for method, path in rules:
        statuses = spec["paths"][path][method.lower()]["responses"]
        assert any(200 <= int(s) < 300 for s in statuses), f"{method} {path}: no 2xx documented"
    described = {(m, p) for m, p, _ in operations(spec)}
    assert described == set(rules), f"operations without a route: {described - set(rules)}"


async def test_every_error_code_of_the_contract_is_documented(spec: dict[str, Any]) -> None:
    documented: dict[str, set[int]] = {}
    for _, _, operation in operations(spec):
        for code, status in error_codes(spec, operation).items():
            documented.setdefault(code, set()).add(status)
    for code, status in CONTRACT_ERROR_CODES.items():
        assert documented.get(code) == {status}, (code, documented.get(code))
    for method, path, operation in api_operations(spec):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                codes = error_codes(spec, {"responses": {status: response}})
                assert codes, f"{method} {path} {status}: no error code documented"
                assert all(c in response["description"] for c in codes), response


async def test_retry_after_and_www_authenticate_are_documented(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        for status, header in (("429", "Retry-After"), ("503", "Retry-After")):
            if status in operation["responses"]:
                assert header in operation["responses"][status]["headers"], (method, path)
        if "401" in operation["responses"]:
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], (method, path)


async def test_every_operation_has_a_summary_and_unique_id(spec: dict[str, Any]) -> None:
    ids = []
    for method, path, operation in operations(spec):
        assert operation.get("summary", "").strip(), f"{method} {path}: no summary (docstring)"
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids)), ids


async def test_every_body_has_an_example_that_matches_its_schema(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        for where, media in json_bodies(operation):
            assert "example" in media, f"{method} {path} {where}: no example"
            problems = schema_errors(spec, media["schema"], media["example"])
            assert not problems, (method, path, where, problems)
            for model in data_models(spec, media["schema"]):
                examples = resolve(spec, {"$ref": f"#/components/schemas/{model}"}).get("examples")
                assert examples, f"{method} {path} {where}: model {model} has no examples"
                for example in examples:
                    schema = {"$ref": f"#/components/schemas/{model}"}
                    assert not schema_errors(spec, schema, example), (model, example)


async def test_id_path_parameters_are_uuids_and_query_parameters_are_not_null(
    spec: dict[str, Any],
) -> None:
    for method, path, operation in operations(spec):
        for parameter in operation.get("parameters", ()):
            schema = parameter["schema"]
            if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                assert schema.get("format") == "uuid", (method, path, parameter)
            if parameter["in"] == "query":
                assert "null" not in str(schema.get("anyOf", "")), (method, path, parameter)
                assert schema.get("default", "") is not None, (method, path, parameter)
