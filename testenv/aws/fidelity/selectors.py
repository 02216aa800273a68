"""The `Selector` of GetParameters answers.

AWS returns, for each name asked with a `:version` or `:label` selector, the
parameter with `"Selector": ":<selector>"`; moto leaves it out, so a client
cannot tell which answer belongs to which request when one parameter is asked
at several versions. This restores it."""

import json

from moto.core.exceptions import JsonRESTError, ServiceException

from . import moto_state


def add_selectors(params: dict, body: bytes, account: str, region: str) -> bytes:
    response = json.loads(body)
    entries = response.get("Parameters") or []
    backend = moto_state.ssm_backend(account, region)
    for requested in params.get("Names") or []:
        selector = _selector(requested)
        if selector is None:
            continue
        try:
            version = backend.get_parameter(requested)
        except (ServiceException, JsonRESTError):
            continue
        if version is None:
            continue
        entry = next(
            (
                e
                for e in entries
                if "Selector" not in e and e.get("Name") == version.name and e.get("Version") == version.version
            ),
            None,
        )
        if entry is not None:
            entry["Selector"] = f":{selector}"
    return json.dumps(response).encode()


def _selector(name: str) -> str | None:
    """`name:3` → `3`; a parameter ARN keeps its own colons."""
    marker = ":parameter/"
    start = name.index(marker) + len(marker) if marker in name else 0
    _, colon, selector = name[start:].partition(":")
    return selector if colon else None
