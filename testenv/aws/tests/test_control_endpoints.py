"""The control endpoints' own behaviour."""

import requests


def test_health_answers_ok(server):
    response = requests.get(f"{server.url}/_fidelity/health", timeout=5)
    assert (response.status_code, response.text) == (200, "ok")


def test_unknown_endpoint_is_404_and_wrong_method_405(server):
    assert requests.get(f"{server.url}/_fidelity/nothing", timeout=5).status_code == 404
    assert requests.post(f"{server.url}/_fidelity/health", timeout=5).status_code == 405


def test_body_must_be_a_json_object(server):
    response = requests.put(f"{server.url}/_fidelity/rate", data="[1]", timeout=5)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "the body must be a JSON object"},
    )
