"""Make the [media] s3_bucket of the config at $PINHOLE_CONFIG, once S3 answers; a bucket already there is fine.

The one-shot `s3-bucket` service of docker-compose.yml: SeaweedFS starts with no bucket, and Pinhole refuses to
start without its own. Exit 0 when the bucket exists, 1 (with the last error) when S3 did not answer in time.
"""

from __future__ import annotations

import sys
import time

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from app.config import load_config

WAIT_SECONDS = 60  # SeaweedFS takes a few seconds to start its S3 gateway
ALREADY_THERE = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}


def main() -> int:
    media = load_config().media
    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=media.s3_endpoint,
        region_name=media.s3_region,
        aws_access_key_id=media.s3_access_key or None,
        aws_secret_access_key=media.s3_secret_key or None,
        config=BotoConfig(s3={"addressing_style": "path"}, connect_timeout=2, retries={"max_attempts": 1}),
    )
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            s3.create_bucket(Bucket=media.s3_bucket)
            print(f"made the bucket {media.s3_bucket} at {media.s3_endpoint}")
            return 0
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ALREADY_THERE:
                print(f"the bucket {media.s3_bucket} is already there")
                return 0
            error: Exception = exc
        except BotoCoreError as exc:  # not answering yet
            error = exc
        if time.monotonic() > deadline:
            where = f"{media.s3_bucket} at {media.s3_endpoint}"
            print(f"error: could not make the bucket {where}: {error}", file=sys.stderr)
            return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
