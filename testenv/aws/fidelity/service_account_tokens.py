"""Kubernetes service account tokens as AWS reads them: claims read before
anything is verified (STS and EKS Auth name their errors after what the token
claims), and the signature checked against the cluster's public keys. Used by
AssumeRoleWithWebIdentity (IRSA) and by the EKS Pod Identity agent."""

import jwt

# What a Kubernetes API server signs service account tokens with (RSA or ECDSA keys).
SIGNING_ALGORITHMS = ["RS256", "ES256"]
# Audience and expiry get the services' own errors, after the signature.
SIGNATURE_ONLY = {
    "verify_aud": False,
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
}


class TokenSignatures:
    def __init__(self, public_keys=()):
        """`public_keys`: the public keys (loaded, as PyJWT takes them) that
        the cluster's service account tokens verify with. Without any,
        signatures are not checked."""
        self._public_keys = list(public_keys)

    def verify(self, token: str) -> bool:
        """Whether one of the keys verifies the token's signature (always
        true when the layer was given no key)."""
        if not self._public_keys:
            return True
        for key in self._public_keys:
            try:
                jwt.decode(token, key, algorithms=SIGNING_ALGORITHMS, options=SIGNATURE_ONLY)
                return True
            except jwt.PyJWTError:
                continue
        return False


def unverified_claims(token: str) -> dict | None:
    """The token's claims, signature not checked; None if it is not a JWT
    whose payload is a JSON object."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def unverified_claims_error(token: str) -> str:
    """Why PyJWT cannot read the token ("" if it can)."""
    try:
        jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        return str(error)
    return ""
