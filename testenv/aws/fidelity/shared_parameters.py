"""Parameters shared from another account, which moto does not know: it looks
every name up in the caller's own account.

On AWS, an advanced-tier parameter is shared through an AWS RAM resource
share, and the accounts it is shared with read it by its full ARN, in its own
region. Here the owner account shares a parameter by tagging it
`ssm-operator-test:shared-with` with the comma-separated ids of those accounts
(and RAM shares advanced-tier parameters only). A GetParameter or
GetParameters naming the ARN of a parameter of another account is answered by
the layer from moto's SSM backend of that account and the ARN's region. A
role reading the ARN of another account's parameter that is not shared with
its account (or does not exist there) is refused: cross-account access needs
a resource-based policy of the owner as well as the caller's identity-based
policy ("Cross-account policy evaluation logic", IAM User Guide), and RAM's
share is that policy for a parameter. The refusal is AccessDeniedException
"… because no resource-based policy allows the ssm:GetParameters action",
IAM's wording for that case; AWS's documentation shows no SSM example of it.
"""

import calendar
import json
from dataclasses import dataclass

from moto.core.exceptions import JsonRESTError, ServiceException

from . import moto_state
from .ssm_parameters import parameter_arn, plaintext

SHARED_WITH_TAG = "ssm-operator-test:shared-with"
# RAM refuses to share standard-tier parameters.
SHAREABLE_TIER = "Advanced"


@dataclass(frozen=True)
class SharedParameter:
    requested: str  # the name as the request gives it, selector included
    arn: str  # the parameter's ARN, without selector
    region: str
    parameter: object  # moto's Parameter, at the version or label asked

    @property
    def selector(self) -> str:
        """`:3` or `:label` when the request named one, else empty."""
        return self.requested[len(self.arn) :]


def requested(action: str, params: dict, caller_account: str) -> list[SharedParameter]:
    """The parameters of other accounts shared with the caller's account that
    a GetParameter or GetParameters names, each once."""
    if action == "GetParameters":
        names = params.get("Names") or []
    elif action == "GetParameter":
        names = [params.get("Name", "")]
    else:
        return []
    found = (_find(name, caller_account) for name in dict.fromkeys(names))
    return [shared for shared in found if shared is not None]


def _foreign(name: str, caller_account: str) -> tuple[str, str] | None:
    """(region, owner) when `name` is the ARN of a parameter of another
    account than the caller's."""
    parts = name.split(":", 5)
    if len(parts) != 6 or parts[:3] != ["arn", moto_state.PARTITION, "ssm"]:
        return None
    region, owner, resource = parts[3], parts[4], parts[5]
    if owner == caller_account or not resource.startswith("parameter/"):
        return None
    return region, owner


def _find(name: str, caller_account: str) -> SharedParameter | None:
    foreign = _foreign(name, caller_account)
    if foreign is None:
        return None
    region, owner = foreign
    try:
        backend = moto_state.ssm_backend(owner, region)
        # The owner's backend strips its own ARN prefix and reads the selector.
        parameter = backend.get_parameter(name)
        if parameter is None or not _shared_with(backend, parameter, caller_account):
            return None
    except (KeyError, ServiceException, JsonRESTError):
        # An unknown region, or a version that does not exist.
        return None
    arn = parameter_arn(name, owner, region)
    return SharedParameter(name, arn, region, parameter)


def unshared_foreign(name: str, caller_account: str) -> bool:
    """Whether `name` is the ARN of a parameter of another account that is
    not shared with `caller_account` — or does not exist there, which the
    caller cannot tell apart."""
    foreign = _foreign(name, caller_account)
    if foreign is None:
        return False
    region, owner = foreign
    base = parameter_arn(name, owner, region)
    try:
        backend = moto_state.ssm_backend(owner, region)
        parameter = backend.get_parameter(base)
    except (KeyError, ServiceException, JsonRESTError):
        return True
    return parameter is None or not _shared_with(backend, parameter, caller_account)


def _shared_with(backend, parameter, account: str) -> bool:
    if parameter.tier != SHAREABLE_TIER:
        return False
    tags = backend.list_tags_for_resource("Parameter", parameter.name)
    accounts = tags.get(SHARED_WITH_TAG, "").split(",")
    return account in (a.strip() for a in accounts)


def entry(shared: SharedParameter, with_decryption: bool, ciphertexts) -> dict:
    """The parameter as AWS returns a shared one: named by its ARN, a
    SecureString's value in plaintext only with decryption."""
    parameter = shared.parameter
    value = parameter.value
    if parameter.parameter_type == "SecureString":
        value = (
            plaintext(parameter)
            if with_decryption
            else ciphertexts.blob(parameter, shared.region)
        )
    answer = {
        "Name": shared.arn,
        "Type": parameter.parameter_type,
        "Value": value,
        "Version": parameter.version,
        "LastModifiedDate": _epoch_seconds(parameter.last_modified_date),
        "ARN": shared.arn,
        "DataType": parameter.data_type,
    }
    if shared.selector:
        answer["Selector"] = shared.selector
    return answer


def add_to_answer(
    body: bytes, shared: list[SharedParameter], with_decryption: bool, ciphertexts
) -> bytes:
    """moto's GetParameters answer, with the shared parameters moved from
    `InvalidParameters` (where moto puts names it does not know) to
    `Parameters`."""
    response = json.loads(body)
    names = {s.requested for s in shared}
    invalid = response.get("InvalidParameters", [])
    response["InvalidParameters"] = [name for name in invalid if name not in names]
    response["Parameters"] = response.get("Parameters", []) + [
        entry(s, with_decryption, ciphertexts) for s in shared
    ]
    return json.dumps(response).encode()


def _epoch_seconds(moment) -> float:
    """As moto serializes timestamps: epoch seconds, millisecond precision."""
    return calendar.timegm(moment.utctimetuple()) + (moment.microsecond // 1000) / 1000
