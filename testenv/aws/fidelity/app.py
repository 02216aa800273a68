"""The WSGI middleware: every AWS call goes through faults, rate ceilings and
the service's guard before moto answers it, and is counted; a Parameter
Store change moto made sends its EventBridge event to the registered SQS
queues. The layer's control endpoints and the EKS Pod Identity agent's
endpoint are served beside them."""

import json

from . import answers, describe_parameters, kms_direct, shared_parameters
from .answers import PoisonedTokens
from .awsrequest import AwsRequest
from .callers import identify
from .change_events import ChangeEvents
from .ciphertexts import VALUE_CARRYING_READS, Ciphertexts
from .control import PREFIX, ControlEndpoints
from .counters import Counters
from .eks_auth import EksAuth
from .errors import AwsError, DecryptRefused, error_code_of, json_headers, status_line, throttling
from .faults import Fault, Faults
from .pod_identity import PREFIX as POD_IDENTITY_PREFIX
from .pod_identity import PodIdentityAgent
from .pod_identity_associations import Associations
from .rates import RateCeilings
from .selectors import add_selectors
from .session_tags import SessionTags
from .sessions import Sessions
from .ssm_guard import check as check_ssm
from .ssm_guard import decrypts_secure_string
from .sts_guard import StsGuard
from .web_identity import WebIdentityVerifier


class FidelityMiddleware:
    def __init__(self, moto_app, web_identity: WebIdentityVerifier):
        self.moto_app = moto_app
        self.counters = Counters()
        self.faults = Faults()
        self.rates = RateCeilings()
        self.ciphertexts = Ciphertexts()
        self.sessions = Sessions()
        self.session_tags = SessionTags()
        self.sts_guard = StsGuard(web_identity)
        self.poisoned_tokens = PoisonedTokens()
        self.associations = Associations()
        self.change_events = ChangeEvents()
        self.control = ControlEndpoints(
            self.counters, self.faults, self.rates, self.associations, self.change_events
        )
        self.pod_identity_agent = PodIdentityAgent(
            EksAuth(web_identity.signatures, self.associations),
            self.sessions,
            self.session_tags,
            self.counters,
            self.faults,
        )

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            return self.control(environ, start_response)
        if path.startswith(POD_IDENTITY_PREFIX):
            # Not an AWS API call: the agent a Pod's SDK asks for credentials.
            return self.pod_identity_agent(environ, start_response)
        request = AwsRequest.from_environ(environ)
        if request is None:
            # Not an AWS call (moto's own /moto-api, for instance).
            return self.moto_app(environ, start_response)
        caller = identify(request, self.session_tags.of(request.access_key))
        try:
            breaking = self._check(request, caller)
        except AwsError as error:
            status, headers, body = error.render(request)
            outcome = error.code
        else:
            deleting = self.change_events.before(request, caller.account)
            status, headers, body = self._answer(environ, request, caller)
            if status == 200:
                body = self._broken(breaking, request, body)
                self.change_events.publish(request, caller.account, deleting, body)
            outcome = "ok" if status < 400 else error_code_of(status, body)
        self.counters.add(request.operation, caller.name, outcome)
        start_response(status_line(status), headers + [("Content-Length", str(len(body)))])
        return [body]

    def _check(self, request: AwsRequest, caller) -> Fault | None:
        """Raise the AwsError AWS would answer instead of moto; return the
        fault that breaks moto's answer, if one applies to this call."""
        self.sessions.check(request)
        try:
            breaking = self.faults.apply(
                request, caller.name, lambda: decrypts_secure_string(request, caller)
            )
        except DecryptRefused as refused:
            # KMS refused SSM's Decrypt: counted as the KMS call it is.
            self.counters.add("kms:Decrypt", caller.name, refused.kms_code)
            raise
        self.poisoned_tokens.check(request)
        if not self.rates.admit(request.operation, caller.name, caller.account, request.region):
            raise throttling(request)
        if request.service == "ssm":
            check_ssm(request, caller, self.counters)
        elif request.service == "sts":
            self.sts_guard.check(request, caller)
        elif request.service == "kms":
            kms_direct.check(request, caller)
        return breaking

    def _broken(self, breaking: Fault | None, request: AwsRequest, body: bytes) -> bytes:
        """moto's 200 answer as a fault breaks it; sessions it issues remembered."""
        if breaking is not None:
            body = answers.change(breaking, request, body, self.poisoned_tokens)
        self.sessions.record(request, body)
        self.session_tags.inherit(request, body)
        return body

    def _answer(self, environ, request: AwsRequest, caller):
        """moto's answer with what the layer adds, or the layer's own answer
        for a GetParameter of a parameter shared from another account and a
        DescribeKey of another account's key."""
        foreign_key = kms_direct.foreign_key(request, caller)
        if foreign_key is not None:
            return 200, json_headers(request), json.dumps(foreign_key.to_dict()).encode()
        shared = (
            shared_parameters.requested(request.action, request.params, caller.account)
            if request.service == "ssm"
            else []
        )
        with_decryption = request.params.get("WithDecryption") is True
        if shared and request.action == "GetParameter":
            entry = shared_parameters.entry(shared[0], with_decryption, self.ciphertexts)
            return 200, json_headers(request), json.dumps({"Parameter": entry}).encode()
        if describe_parameters.pages_grow(request):
            status, headers, body = describe_parameters.answer(
                self._moto_answer, environ, request.params
            )
        else:
            status, headers, body = self._moto_answer(environ)
        if status != 200:
            return status, headers, body
        if _returns_ciphertext(request):
            body = self.ciphertexts.hide_values(
                request.action, body, caller.account, request.region
            )
        if request.service == "ssm" and request.action == "GetParameters":
            body = add_selectors(request.params, body, caller.account, request.region)
            if shared:
                body = shared_parameters.add_to_answer(
                    body, shared, with_decryption, self.ciphertexts
                )
        return status, headers, body

    def _moto_answer(self, environ) -> tuple[int, list[tuple[str, str]], bytes]:
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            # The length is set again once the body is final.
            captured["headers"] = [(k, v) for k, v in headers if k.lower() != "content-length"]

        chunks = self.moto_app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return captured["status"], captured["headers"], body


def _returns_ciphertext(request: AwsRequest) -> bool:
    return (
        request.service == "ssm"
        and request.action in VALUE_CARRYING_READS
        and request.params.get("WithDecryption") is not True
    )
