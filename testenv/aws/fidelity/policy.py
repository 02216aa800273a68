"""IAM policy evaluation, the part of it the tests need.

Pure: documents in, decision out. Supported: Effect Allow/Deny (an explicit
Deny wins), Action/NotAction, Resource/NotResource with `*` and `?` wildcards,
Principal for resource-based policies, and the condition operators
StringEquals, StringNotEquals, StringLike, ArnEquals and ArnLike. A statement
using anything else (another operator, NotPrincipal) does not match, so an
unsupported Allow grants nothing and an unsupported Deny denies nothing.
"""

import re
from enum import Enum
from functools import lru_cache


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


def evaluate(documents, action: str, resource: str, context=None, principals=None) -> Decision:
    """Decide `action` on `resource` under the policy `documents`.

    `context` maps condition keys to values. `principals` is None for
    identity-based policies (they apply to whoever holds them); for a
    resource-based policy it maps principal types ("AWS", "Federated") to the
    ARNs the caller is known by, and only statements naming one of them apply.
    """
    context = {key.lower(): value for key, value in (context or {}).items()}
    allowed = False
    for statement in statements(documents):
        if not _applies(statement, action, resource, context, principals):
            continue
        if statement.get("Effect") == "Deny":
            return Decision.EXPLICIT_DENY
        if statement.get("Effect") == "Allow":
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def statements(documents) -> list[dict]:
    found = []
    for document in documents:
        statement = document.get("Statement", [])
        found.extend(statement if isinstance(statement, list) else [statement])
    return [s for s in found if isinstance(s, dict)]


def _applies(statement, action, resource, context, principals) -> bool:
    if principals is not None and not _names_principal(statement, principals):
        return False
    return (
        _matches_element(statement, "Action", "NotAction", action, _action_matches)
        and _matches_element(statement, "Resource", "NotResource", resource, _resource_matches)
        and _conditions_hold(statement.get("Condition", {}), context)
    )


def _matches_element(statement, name, not_name, value, match) -> bool:
    if name in statement:
        return any(match(pattern, value) for pattern in _as_list(statement[name]))
    if not_name in statement:
        return not any(match(pattern, value) for pattern in _as_list(statement[not_name]))
    # Trust policies and key policies may leave Resource out: it is the role or key.
    return name == "Resource"


def _action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern, ignore_case=True).fullmatch(action) is not None


def _resource_matches(pattern: str, resource: str) -> bool:
    return _glob(pattern, ignore_case=False).fullmatch(resource) is not None


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(regex, flags)


def _names_principal(statement, principals) -> bool:
    named = statement.get("Principal")
    if named == "*":
        return True
    if not isinstance(named, dict):
        return False
    for principal_type, values in named.items():
        known = {_principal_arn(v) for v in principals.get(principal_type, ())}
        for value in _as_list(values):
            if value == "*" and known:
                return True
            if _principal_arn(value) in known:
                return True
    return False


def _principal_arn(value: str) -> str:
    # A bare account id in a Principal stands for that account's root.
    if re.fullmatch(r"\d{12}", value):
        return f"arn:aws:iam::{value}:root"
    return value


def _conditions_hold(conditions, context) -> bool:
    if not isinstance(conditions, dict):
        return False
    return all(
        _condition_holds(operator, clauses, context) for operator, clauses in conditions.items()
    )


def _condition_holds(operator, clauses, context) -> bool:
    test = OPERATORS.get(operator)
    if test is None or not isinstance(clauses, dict):
        return False
    for key, expected in clauses.items():
        actual = context.get(key.lower())
        expected = [_condition_value(v) for v in _as_list(expected)]
        if operator in NEGATED_OPERATORS:
            # A negated operator holds when the key is absent.
            if actual is not None and not test(expected, actual):
                return False
        elif actual is None or not test(expected, actual):
            return False
    return True


def _condition_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _string_like(expected, actual) -> bool:
    return any(_resource_matches(pattern, actual) for pattern in expected)


def _arn_like(expected, actual) -> bool:
    # ARNs are compared component by component, so `*` never spans a colon
    # that separates the service, region, account and resource.
    actual_parts = actual.split(":", 5)
    for pattern in expected:
        pattern_parts = pattern.split(":", 5)
        if len(pattern_parts) == len(actual_parts) == 6 and all(
            _resource_matches(p, a) for p, a in zip(pattern_parts, actual_parts, strict=True)
        ):
            return True
    return False


OPERATORS = {
    "StringEquals": lambda expected, actual: actual in expected,
    "StringNotEquals": lambda expected, actual: actual not in expected,
    "StringLike": _string_like,
    # AWS gives ArnEquals the same wildcard semantics as ArnLike.
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
}
NEGATED_OPERATORS = {"StringNotEquals"}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]
