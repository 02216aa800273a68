"""DescribeParameters pages as MaxResults sizes them.

moto answers 10 parameters a page whatever MaxResults asks. On AWS
"MaxResults: The maximum number of items to return for this call" (SSM API
Reference, DescribeParameters; valid range 1 to 50): a caller asking 50
names at once gets them in one call, and the counters would otherwise count
five. The layer fills the page up to MaxResults from moto's pages. moto's
NextToken is the offset of the next parameter in its filtered list; the
layer's NextToken is one too. Without MaxResults moto's 10 stays (AWS's
default page size is not documented). AWS may answer fewer than MaxResults
with a NextToken (MaxResults is a maximum); the layer always fills the page."""

import io
import json

from .awsrequest import AwsRequest

MOTO_PAGE_SIZE = 10


def pages_grow(request: AwsRequest) -> bool:
    """Whether the layer must join moto's pages to answer this call."""
    wanted = request.params.get("MaxResults")
    start = request.params.get("NextToken") or "0"
    return (
        request.service == "ssm"
        and request.action == "DescribeParameters"
        and isinstance(wanted, int)
        and not isinstance(wanted, bool)
        and wanted > MOTO_PAGE_SIZE
        and isinstance(start, str)
        and start.strip().isdigit()
    )


def answer(moto_answer, environ, params: dict):
    """A page of up to MaxResults parameters, asked of `moto_answer` (which
    answers a WSGI environ) page by page."""
    wanted = params["MaxResults"]
    start = int((params.get("NextToken") or "0").strip())
    found: list = []
    token = str(start)
    while True:
        status, headers, body = moto_answer(_with_body(environ, {**params, "NextToken": token}))
        if status != 200:
            return status, headers, body
        page = json.loads(body or b"{}")
        found.extend(page.get("Parameters") or [])
        token = page.get("NextToken")
        if len(found) >= wanted or not token:
            break
    joined = {"Parameters": found[:wanted]}
    if len(found) > wanted or token:
        joined["NextToken"] = str(start + wanted)
    return status, headers, json.dumps(joined).encode()


def _with_body(environ, params: dict) -> dict:
    body = json.dumps(params).encode()
    return {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
