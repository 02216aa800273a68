"""AssumeRoleWithWebIdentity: the checks STS makes on the token and on the
role's trust policy (moto accepts any token for any role)."""

import time
from urllib.parse import urlparse

from . import moto_state, policy
from .errors import AwsError
from .service_account_tokens import TokenSignatures, unverified_claims

ACTION = "sts:AssumeRoleWithWebIdentity"


def invalid_token(message: str) -> AwsError:
    return AwsError("InvalidIdentityToken", message)


def access_denied() -> AwsError:
    return AwsError("AccessDenied", f"Not authorized to perform {ACTION}", 403)


class WebIdentityVerifier:
    def __init__(self, public_keys=()):
        """`public_keys`: the public keys (loaded, as PyJWT takes them) that
        the cluster's service account tokens verify with. Without any,
        signatures are not checked. The EKS Pod Identity agent verifies
        tokens against the same keys (`signatures`)."""
        self.signatures = TokenSignatures(public_keys)

    def check(self, params: dict):
        """Raise the AwsError STS answers, or return when it would issue credentials."""
        token = params.get("WebIdentityToken", "")
        role_arn = params.get("RoleArn", "")
        claims = _claims(token)
        issuer = str(claims.get("iss", ""))
        provider_url = _provider_url(issuer)
        account = moto_state.account_in_arn(role_arn) or ""
        provider = moto_state.find_oidc_provider(account, provider_url) if account else None
        if provider is None:
            raise invalid_token(f"No OpenIDConnect provider found in your account for {issuer}")
        self._verify_signature(token)
        audiences = claims.get("aud", [])
        audiences = [audiences] if isinstance(audiences, str) else audiences
        audience = next((a for a in audiences if a in provider.client_id_list), None)
        if audience is None:
            raise invalid_token("Incorrect token audience")
        _check_expiry(claims)
        role = moto_state.find_role(role_arn)
        if role is None:
            raise access_denied()
        context = {
            f"{provider_url}:sub": str(claims.get("sub", "")),
            f"{provider_url}:aud": audience,
        }
        principals = {"Federated": {provider.arn}}
        trust = [moto_state.trust_policy(role)]
        if (
            policy.evaluate(trust, ACTION, role_arn, context, principals)
            is not policy.Decision.ALLOW
        ):
            raise access_denied()

    def _verify_signature(self, token: str):
        if not self.signatures.verify(token):
            raise invalid_token("Couldn't verify signature of the token")


def _provider_url(issuer: str) -> str:
    """IAM names an OIDC provider by its issuer URL without the scheme."""
    parsed = urlparse(issuer)
    return parsed.netloc + parsed.path if parsed.scheme else issuer


def _claims(token: str) -> dict:
    claims = unverified_claims(token)
    if claims is None:
        raise invalid_token(
            "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)"
        )
    return claims


def _check_expiry(claims: dict):
    now = int(time.time())
    expires = claims.get("exp")
    if not isinstance(expires, (int, float)):
        raise invalid_token("The ID Token provided does not contain an expiration time")
    if now >= expires:
        raise AwsError(
            "ExpiredTokenException",
            f"Token expired: current date/time {now} must be before the expiration date/time{int(expires)}",
        )
