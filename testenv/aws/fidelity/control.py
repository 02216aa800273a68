"""The layer's control endpoints under /_fidelity/ (never counted as AWS calls)."""

import json

from werkzeug.wrappers import Request, Response

from .callers import ROLE_ARN
from .change_events import ChangeEvents, Target
from .counters import Counters
from .faults import DEFAULT_HANG_SECONDS, Faults
from .kms_guard import set_key_state
from .pod_identity_associations import Association, Associations
from .rates import RateCeilings

PREFIX = "/_fidelity/"


class ControlEndpoints:
    def __init__(
        self,
        counters: Counters,
        faults: Faults,
        rates: RateCeilings,
        associations: Associations,
        change_events: ChangeEvents,
    ):
        self.counters = counters
        self.faults = faults
        self.rates = rates
        self.associations = associations
        self.change_events = change_events
        self._routes = {
            ("GET", "/_fidelity/health"): lambda _: Response("ok", mimetype="text/plain"),
            ("GET", "/_fidelity/faults"): self._list_faults,
            ("POST", "/_fidelity/faults"): self._add_fault,
            ("DELETE", "/_fidelity/faults"): self._clear_faults,
            ("GET", "/_fidelity/rate"): self._list_rates,
            ("PUT", "/_fidelity/rate"): self._set_rate,
            ("DELETE", "/_fidelity/rate"): self._reset_rates,
            ("GET", "/_fidelity/counters"): self._list_counters,
            ("POST", "/_fidelity/counters/reset"): self._reset_counters,
            ("PUT", "/_fidelity/key-state"): self._set_key_state,
            ("GET", "/_fidelity/pod-identity-association"): self._list_associations,
            ("PUT", "/_fidelity/pod-identity-association"): self._put_association,
            ("DELETE", "/_fidelity/pod-identity-association"): self._clear_associations,
            ("GET", "/_fidelity/change-events"): self._list_change_events,
            ("PUT", "/_fidelity/change-events"): self._put_change_events,
            ("DELETE", "/_fidelity/change-events"): self._clear_change_events,
        }

    def __call__(self, environ, start_response):
        request = Request(environ)
        handler = self._routes.get((request.method, request.path.rstrip("/")))
        if handler is None:
            known = {path for _, path in self._routes}
            status = 405 if request.path.rstrip("/") in known else 404
            response = _json({"error": f"no {request.method} {request.path}"}, status)
        else:
            try:
                response = handler(request)
            except ValueError as invalid:
                response = _json({"error": str(invalid)}, 400)
        return response(environ, start_response)

    def _list_faults(self, _):
        return _json({"faults": self.faults.pending()})

    def _add_fault(self, request):
        body = _body(request)
        self.faults.add(
            body.get("action"),
            body.get("kind"),
            body.get("count", 1),
            body.get("seconds", DEFAULT_HANG_SECONDS),
            _caller(body.get("caller")),
            keep=body.get("keep"),
            names=body.get("names"),
            code=body.get("code"),
        )
        return self._list_faults(request)

    def _clear_faults(self, request):
        self.faults.clear(_caller(request.args.get("caller")))
        return self._list_faults(request)

    def _list_rates(self, _):
        return _json({"rates": self.rates.ceilings()})

    def _set_rate(self, request):
        body = _body(request)
        if "per_second" not in body:
            raise ValueError("per_second is required (a number, or null for no ceiling)")
        self.rates.set(body.get("action"), body["per_second"], _caller(body.get("caller")))
        return self._list_rates(request)

    def _reset_rates(self, request):
        self.rates.reset(_caller(request.args.get("caller")))
        return self._list_rates(request)

    def _set_key_state(self, request):
        body = _body(request)
        set_key_state(str(body.get("key", "")), str(body.get("state", "")))
        return _json({"key": body["key"], "state": body["state"]})

    def _list_associations(self, _):
        return _json({"associations": [a.to_json() for a in self.associations.all()]})

    def _put_association(self, request):
        association = Association.from_json(_body(request))
        self.associations.put(association)
        return _json(association.to_json())

    def _clear_associations(self, request):
        self.associations.clear()
        return self._list_associations(request)

    def _list_change_events(self, _):
        return _json({"targets": self.change_events.all()})

    def _put_change_events(self, request):
        target = Target.from_json(_body(request))
        self.change_events.put(target)
        return _json(target.to_json())

    def _clear_change_events(self, request):
        self.change_events.clear()
        return self._list_change_events(request)

    def _list_counters(self, _):
        return _json({"counters": self.counters.snapshot()})

    def _reset_counters(self, request):
        self.counters.reset()
        return self._list_counters(request)


def _caller(value) -> str | None:
    """The role ARN a fault or ceiling is scoped to; None: every caller. A
    session ARN (arn:aws:sts::…:assumed-role/…) is refused: a fault scoped to
    it would silently never apply."""
    if value is None:
        return None
    if not isinstance(value, str) or not ROLE_ARN.fullmatch(value):
        raise ValueError("caller must be a role ARN such as arn:aws:iam::123456789012:role/name")
    return value


def _body(request) -> dict:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _json(document, status: int = 200) -> Response:
    return Response(json.dumps(document), status=status, mimetype="application/json")
