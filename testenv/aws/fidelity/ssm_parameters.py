"""Which parameters an SSM read returns, asked of moto's SSM backend with the
read's own arguments, so that the layer checks exactly what moto will answer."""

from moto.core.exceptions import JsonRESTError, ServiceException

from . import moto_state

PARAMETER_READS = {"GetParameter", "GetParameters", "GetParametersByPath"}


def parameters_returned(action: str, params: dict, account: str, region: str) -> list:
    """moto's Parameter objects the read will return, in the order it was
    asked for. Empty when moto will answer an error instead."""
    backend = moto_state.ssm_backend(account, region)
    try:
        if action == "GetParameter":
            found = backend.get_parameter(params.get("Name", ""))
            return [found] if found else []
        if action == "GetParameters":
            names = params.get("Names") or []
            found = backend.get_parameters(names)
            return [found[name] for name in dict.fromkeys(names) if name in found]
        if action == "GetParametersByPath":
            page, _ = backend.get_parameters_by_path(
                params.get("Path", ""),
                params.get("Recursive", False),
                params.get("ParameterFilters"),
                next_token=params.get("NextToken"),
                max_results=params.get("MaxResults", 10),
            )
            return page
    except (ServiceException, JsonRESTError):
        # moto answers this read with its own error; nothing gets decrypted.
        return []
    return []


def find_version(name: str, version: int, account: str, region: str):
    """The Parameter object of one version of a parameter, or None."""
    try:
        return moto_state.ssm_backend(account, region).get_parameter(f"{name}:{version}")
    except (ServiceException, JsonRESTError):
        return None


def plaintext(parameter) -> str:
    """A SecureString's value: moto stores it as `kms:<KeyId>:<value>`."""
    return parameter.decrypt(parameter.value)


def parameter_arn(name: str, account: str, region: str) -> str:
    """The ARN IAM authorizes for a parameter name as a request gives it: a
    bare name or path, or a full ARN, either with a `:version` or `:label`
    selector (which is not part of the resource)."""
    marker = ":parameter/"
    if name.startswith("arn:") and marker in name:
        prefix, _, rest = name.partition(marker)
        return f"{prefix}{marker}{rest.split(':')[0]}"
    bare = name.split(":")[0].removeprefix("/")
    return f"arn:{moto_state.PARTITION}:ssm:{region}:{account}:parameter/{bare}"


def path_arn(path: str, account: str, region: str) -> str:
    """The ARN IAM authorizes GetParametersByPath on: the `Path` as the
    request sends it, its leading slash the ARN's separator and a trailing
    slash kept. Known from AWS's refusal text for `Path=/prd/payments/`:
    "… is not authorized to perform: ssm:GetParametersByPath on resource:
    arn:aws:ssm:<region>:<account>:parameter/prd/payments/ …". AWS's
    documentation does not spell this case out."""
    bare = path.removeprefix("/")
    return f"arn:{moto_state.PARTITION}:ssm:{region}:{account}:parameter/{bare}"


def account_arn(account: str, region: str) -> str:
    """The resource of account-level actions such as DescribeParameters."""
    return f"arn:{moto_state.PARTITION}:ssm:{region}:{account}:*"
