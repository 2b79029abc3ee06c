"""What-if (measured by the bench, not used by the function): the model store's three GETs
without boto3, signed with AWS Signature Version 4 by the standard library.

boto3 + botocore import and S3 client creation are about two thirds of the floor's cold start.
`ModelStore` needs only `get_object(Bucket=, Key=)["Body"]` with `read(n)` and `close()`, so this
is a drop-in for it. Credentials, region and endpoint come from the same standard environment
variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
AWS_ENDPOINT_URL_S3), which is where Lambda puts them. `signature_matches_botocore()` checks the
signer against botocore's own SigV4 for the same request (moto does not verify signatures).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import os
import urllib.parse

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Error(OSError):
    pass


class _Body:
    def __init__(self, response: http.client.HTTPResponse, connection: http.client.HTTPConnection):
        self._response, self._connection = response, connection

    def read(self, size: int = -1) -> bytes:
        return self._response.read() if size is None or size < 0 else self._response.read(size)

    def close(self) -> None:
        self._response.close()
        self._connection.close()


class S3Lite:
    def __init__(self, environ=os.environ):
        self.region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        endpoint = (
            environ.get("AWS_ENDPOINT_URL_S3")
            or environ.get("AWS_ENDPOINT_URL")
            or f"https://s3.{self.region}.amazonaws.com"
        )
        parts = urllib.parse.urlsplit(endpoint)
        self.https = parts.scheme == "https"
        self.host = parts.netloc
        self.key_id = environ["AWS_ACCESS_KEY_ID"]
        self.secret = environ["AWS_SECRET_ACCESS_KEY"]
        self.token = environ.get("AWS_SESSION_TOKEN")

    def sign(self, path: str, now: datetime.datetime) -> dict[str, str]:
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        headers = {"host": self.host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
        if self.token:
            headers["x-amz-security-token"] = self.token
        names = sorted(headers)
        signed_headers = ";".join(names)
        canonical = "\n".join(
            [
                "GET",
                path,
                "",
                *(f"{n}:{headers[n]}" for n in names),
                "",
                signed_headers,
                EMPTY_SHA256,
            ]
        )
        scope = f"{amz_date[:8]}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = ("AWS4" + self.secret).encode()
        for part in (amz_date[:8], self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.key_id}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        )
        return headers

    def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803 (boto3's names)
        path = f"/{Bucket}/{urllib.parse.quote(Key, safe='/~')}"
        headers = self.sign(path, datetime.datetime.now(datetime.UTC))
        connection_class = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        connection = connection_class(self.host, timeout=10)
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        if response.status != 200:
            response.read(4096)
            connection.close()
            raise S3Error(f"GET s3://{Bucket}/{Key}: HTTP {response.status}")
        return {"Body": _Body(response, connection)}


def signature_matches_botocore() -> bool:
    """The same GET signed by S3Lite and by botocore's SigV4 (path-style URL) at the same time."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    environ = {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
        "AWS_SESSION_TOKEN": "token/with+chars=",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_S3": "https://s3.eu-west-1.amazonaws.com",
    }
    lite = S3Lite(environ)
    now = datetime.datetime(2026, 11, 28, 22, 0, 0, tzinfo=datetime.UTC)
    path = "/my-bucket/models/mnist/1764300000/model.tflite"
    ours = lite.sign(path, now)["Authorization"]
    request = AWSRequest(
        method="GET",
        url=f"https://{lite.host}{path}",
        headers={"x-amz-content-sha256": EMPTY_SHA256},
    )
    auth = S3SigV4Auth(
        Credentials(
            environ["AWS_ACCESS_KEY_ID"],
            environ["AWS_SECRET_ACCESS_KEY"],
            environ["AWS_SESSION_TOKEN"],
        ),
        "s3",
        "eu-west-1",
    )
    from unittest import mock

    with mock.patch("botocore.auth.get_current_datetime", lambda: now.replace(tzinfo=None)):
        auth.add_auth(request)
    return request.headers["Authorization"] == ours
