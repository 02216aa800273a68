"""Broken answers: partial, empty and truncated answers of the parameter
reads, which a client must never take for "the parameter is gone"."""

import pytest

from conftest import ACCOUNT, allow, assume, client, create_role, failure

READER = f"arn:aws:iam::{ACCOUNT}:role/reader"


@pytest.fixture
def parameters(admin):
    for name in ("/app/a", "/app/b", "/app/c"):
        admin.ssm.put_parameter(Name=name, Value=f"value of {name}", Type="String")


@pytest.fixture
def listing(admin):
    """Twelve parameters under /big/: two pages of GetParametersByPath."""
    for i in range(12):
        admin.ssm.put_parameter(Name=f"/big/p{i:02}", Value=str(i), Type="String")


def names_of(answer) -> list[str]:
    return [p["Name"] for p in answer["Parameters"]]


def list_all(ssm, path="/big"):
    """Every page of the listing, following NextToken; (names, pages)."""
    names, pages, token = [], 0, None
    while True:
        kwargs = {"Path": path, "Recursive": True}
        if token:
            kwargs["NextToken"] = token
        answer = ssm.get_parameters_by_path(**kwargs)
        names += names_of(answer)
        pages += 1
        token = answer.get("NextToken")
        if not token:
            return names, pages


def fault(server, **body):
    server.control("POST", "faults", body)


def test_partial_answer_leaves_the_last_name_out_of_both_lists(server, admin, parameters):
    fault(server, action="ssm:GetParameters", kind="partial")
    answer = admin.ssm.get_parameters(Names=["/app/a", "/app/missing", "/app/b"])
    assert names_of(answer) == ["/app/a"]
    assert answer["InvalidParameters"] == ["/app/missing"]
    # Only the next call.
    answer = admin.ssm.get_parameters(Names=["/app/a", "/app/b"])
    # GetParameters promises no order of its Parameters.
    assert sorted(names_of(answer)) == ["/app/a", "/app/b"]


def test_partial_answer_can_leave_out_chosen_names_found_or_missing(server, admin, parameters):
    fault(server, action="ssm:GetParameters", kind="partial", names=["/app/b", "/app/missing"])
    answer = admin.ssm.get_parameters(Names=["/app/a", "/app/b", "/app/missing"])
    assert names_of(answer) == ["/app/a"]
    assert answer["InvalidParameters"] == []


def test_partial_answer_of_a_caller_spares_the_others(server, admin, parameters):
    create_role(admin, "reader", allow("ssm:GetParameters"))
    reader = client(server, "ssm", assume(admin, READER))
    fault(server, action="ssm:GetParameters", kind="partial", caller=READER)
    assert names_of(admin.ssm.get_parameters(Names=["/app/a"])) == ["/app/a"]
    assert names_of(reader.get_parameters(Names=["/app/a"])) == []


def test_empty_answer_is_a_200_that_says_nothing(server, admin, parameters):
    fault(server, action="ssm:GetParameters", kind="empty")
    answer = admin.ssm.get_parameters(Names=["/app/a", "/app/missing"])
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer.get("Parameters", []) == [] and answer.get("InvalidParameters", []) == []


def test_empty_path_listing_has_no_parameters_and_no_next_token(server, admin, listing):
    fault(server, action="ssm:GetParametersByPath", kind="empty")
    answer = admin.ssm.get_parameters_by_path(Path="/big")
    assert answer.get("Parameters", []) == [] and "NextToken" not in answer
    assert len(list_all(admin.ssm)[0]) == 12


def test_cut_page_keeps_its_next_token_and_loses_parameters(server, admin, listing):
    fault(server, action="ssm:GetParametersByPath", kind="cut_page", keep=3)
    names, pages = list_all(admin.ssm)
    assert (len(names), pages) == (5, 2)


def test_end_early_drops_the_next_token_so_the_listing_looks_complete(server, admin, listing):
    fault(server, action="ssm:GetParametersByPath", kind="end_early")
    names, pages = list_all(admin.ssm)
    # Half of the first page of ten, and no second page.
    assert (len(names), pages) == (5, 1)


def test_end_early_of_a_whole_page_drops_the_pages_after_it(server, admin, listing):
    fault(server, action="ssm:GetParametersByPath", kind="end_early", keep=10)
    names, pages = list_all(admin.ssm)
    assert (len(names), pages) == (10, 1)


def test_bad_token_fails_the_next_page_with_invalid_next_token(server, admin, parameters):
    fault(server, action="ssm:GetParametersByPath", kind="bad_token")
    first = admin.ssm.get_parameters_by_path(Path="/app")
    assert names_of(first) == ["/app/a", "/app/b", "/app/c"]
    error = failure(admin.ssm.get_parameters_by_path, Path="/app", NextToken=first["NextToken"])
    assert (error.code, error.status, error.message) == (
        "InvalidNextToken",
        400,
        "The specified token isn't valid.",
    )
    assert server.count("ssm:GetParametersByPath", outcome="InvalidNextToken") == 1


def test_answer_kinds_are_refused_for_actions_that_cannot_show_them(server):
    import requests

    response = requests.post(
        f"{server.url}/_fidelity/faults",
        json={"action": "ssm:GetParameter", "kind": "cut_page"},
        timeout=5,
    )
    assert response.status_code == 400
    assert "applies to ssm:GetParametersByPath only" in response.json()["error"]


def test_pending_answer_faults_list_their_options(server):
    fault(server, action="ssm:GetParametersByPath", kind="cut_page", keep=2, count=3)
    assert server.control("GET", "faults")["faults"] == [
        {
            "action": "ssm:GetParametersByPath",
            "kind": "cut_page",
            "count": 3,
            "seconds": 30.0,
            "caller": None,
            "keep": 2,
        }
    ]
