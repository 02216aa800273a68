"""Serve SSM, KMS, STS, IAM and SQS on one loopback port: moto, behind the
project's AWS fidelity layer (see README.md).

    python testenv/aws/server.py --port PORT [--host 127.0.0.1]
        [--service-account-public-key PEM_PATH ...]
"""

import argparse
import signal
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fidelity.app import FidelityMiddleware  # noqa: E402
from fidelity.web_identity import WebIdentityVerifier  # noqa: E402

SERVICES = ("ssm", "kms", "sts", "iam", "sqs")


def load_public_key(path: str):
    """A service account verification key: a public key PEM, or the private
    key PEM the API server signs with."""
    data = Path(path).read_bytes()
    try:
        return load_pem_public_key(data)
    except ValueError:
        return load_pem_private_key(data, password=None).public_key()


def moto_app() -> DomainDispatcherApplication:
    """moto's server app, with the five services' apps built before the port
    opens rather than on their first request, so that health means ready."""
    app = DomainDispatcherApplication(create_backend_app)
    for service in SERVICES:
        app.app_instances[service] = create_backend_app(service)
    return app


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--service-account-public-key",
        action="extend",
        nargs="+",
        default=[],
        metavar="PEM_PATH",
        help="verify web identity tokens against these keys (public or private key PEM)",
    )
    args = parser.parse_args(argv)
    keys = [load_public_key(path) for path in args.service_account_public_key]
    app = FidelityMiddleware(moto_app(), WebIdentityVerifier(keys))
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    # Stop cleanly on SIGTERM, as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
