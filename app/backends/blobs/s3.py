"""Rung 2: blobs as objects in one S3 bucket (AWS, SeaweedFS, MinIO, R2, ...) through boto3.

An S3 PUT is atomic: readers get the previous object or the whole new one. Addressing is path-style
(<endpoint>/<bucket>/<key>), which every S3 implementation answers and which keeps one origin for the CSP.

Start-up lists the bucket once: a missing bucket, unknown credentials or an endpoint that does not answer stop
the start with one line naming the config key, before anything is written. Later, an S3 that cannot be reached
raises StorageUnavailable (a 503 with a message, nothing changed); the details go to the log.

`url(key)` is a presigned GET valid for [media] presign_seconds: the media route hands it out only after the
visibility check, so no permanent URL to a private photo ever leaves Pinhole. The bucket itself stays private.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from app.backends.blobs.base import BlobNotFound, BlobStore, check_key
from app.config import ConfigError, MediaConfig
from app.errors import Unavailable

log = logging.getLogger("pinhole.blobs")

# A browser may keep the bytes it fetched through a presigned URL (never a shared cache: the URL is a credential).
PRESIGNED_CACHE = "private, max-age=86400"
LIST_PAGE_SIZE = 1000  # S3's largest page
_MISSING = {"NoSuchKey", "404", "NotFound"}
_BAD_KEY_ID = {"InvalidAccessKeyId", "InvalidClientTokenId"}
_BAD_SECRET = {"SignatureDoesNotMatch"}
# One boto3 session for the process: it keeps the S3 service model it loaded (about 0.1 s of JSON), so a second
# store (a test's site, migrate-up's target) does not load it again. Sessions are not safe to share between threads
# while they make clients (the clients are): hence the lock.
_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def _client(**kwargs) -> object:
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("s3", **kwargs)


class StorageUnavailable(Unavailable):
    def __init__(self) -> None:
        super().__init__("Photo storage can't be reached right now, so nothing was saved. Try again in a moment.")


class S3BlobStore(BlobStore):
    def __init__(self, media: MediaConfig, source: str):
        self.endpoint = media.s3_endpoint
        self.bucket = media.s3_bucket
        self.presign_seconds = media.presign_seconds
        self.page_size = LIST_PAGE_SIZE
        self._where = f"{source}: [media]"
        self._s3 = _client(
            endpoint_url=media.s3_endpoint,
            region_name=media.s3_region,
            aws_access_key_id=media.s3_access_key or None,
            aws_secret_access_key=media.s3_secret_key or None,
            config=BotoConfig(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=3,
                read_timeout=30,
                retries={"mode": "standard", "max_attempts": 2},
                max_pool_connections=20,
            ),
        )
        self._probe()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        check_key(key)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"blob data must be bytes, not {type(data).__name__}")
        with self._errors("put", key):
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(data), ContentType=content_type)

    def get(self, key: str) -> bytes:
        check_key(key)
        with self._errors("get", key):
            return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def read_range(self, key: str, start: int, end: int) -> bytes:
        check_key(key)
        try:
            with self._errors("read", key):
                return self._s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}")["Body"].read()
        except _RangePastTheEnd:
            return b""  # as a file read past its end; callers ask only within size()

    def size(self, key: str) -> int:
        check_key(key)
        with self._errors("size", key):
            return self._s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"]

    def delete(self, key: str) -> None:
        check_key(key)
        with self._errors("delete", key):
            self._s3.delete_object(Bucket=self.bucket, Key=key)  # a missing key is not an error in S3 either

    def keys(self, prefix: str = "") -> Iterator[str]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
        )
        with self._errors("list", prefix):
            for page in pages:
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):  # folder markers some servers keep
                        yield item["Key"]

    def url(self, key: str) -> str | None:
        return self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": check_key(key), "ResponseCacheControl": PRESIGNED_CACHE},
            ExpiresIn=self.presign_seconds,
        )

    def check(self) -> str:
        self._probe()
        return f"s3 bucket {self.bucket} at {self.endpoint}"

    def _probe(self) -> None:
        """List one key: proves the endpoint answers, the credentials are known and the bucket exists; otherwise a
        ConfigError naming the key to fix."""
        fix = f"{self._where} s3_bucket = {self.bucket!r} at s3_endpoint = {self.endpoint!r}"
        try:
            self._s3.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except NoCredentialsError:
            raise ConfigError(f"{fix}: no credentials; set s3_access_key and s3_secret_key") from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                raise ConfigError(f"{fix}: the bucket does not exist; create it, or fix s3_bucket") from None
            if code in _BAD_KEY_ID:
                raise ConfigError(f"{fix}: the server does not know s3_access_key ({code})") from None
            if code in _BAD_SECRET:
                raise ConfigError(f"{fix}: s3_secret_key is wrong for s3_access_key ({code})") from None
            raise ConfigError(
                f"{fix}: refused ({code or exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode')}); "
                "check s3_access_key may list and write the bucket"
            ) from None
        except BotoCoreError as exc:
            raise ConfigError(f"{self._where} s3_endpoint = {self.endpoint!r} does not answer: {exc}") from None

    @contextmanager
    def _errors(self, operation: str, key: str) -> Iterator[None]:
        """S3's errors as the seam's: a missing object is BlobNotFound, anything else StorageUnavailable (logged)."""
        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _MISSING:
                raise BlobNotFound(key) from None
            if code == "InvalidRange":
                raise _RangePastTheEnd from None
            log.error("s3 %s of %s in bucket %s at %s failed: %s", operation, key, self.bucket, self.endpoint, exc)
            raise StorageUnavailable() from exc
        except BotoCoreError as exc:
            log.error("s3 %s of %s at %s failed: %s", operation, key, self.endpoint, exc)
            raise StorageUnavailable() from exc


class _RangePastTheEnd(Exception):
    pass
