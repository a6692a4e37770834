#!/usr/bin/env python3
"""The independent S3 client of the sync tests (boto3, not our Rust code): list, read, write and
clean objects, and set the bucket's CORS rule the browser app needs.

  s3check.py [--endpoint URL --bucket B --region R --access-key K --secret-key S] COMMAND ...
    list PREFIX            JSON [{"key", "size", "etag"}] of every object under PREFIX (all pages)
    get KEY                the object's bytes on stdout
    put KEY FILE [--if-none-match]
                           FILE ("-" = stdin) becomes KEY; prints {"etag": ...}; with the flag the
                           PUT carries a signed "If-None-Match: *" (exit 3 on 412)
    presign METHOD KEY     a presigned URL (GET, PUT, HEAD or DELETE; 1 hour) on stdout
    delete-prefix PREFIX   deletes every object under PREFIX; prints {"deleted": n}
    set-cors [--origin O]  the permissive rule the tests use (origin "*" by default; see
                           docs/sync-endpoints.md for a production rule)
    get-cors               the bucket's CORS rules as JSON

Options fall back to S3_ENDPOINT, S3_BUCKET, S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
Addressing is path-style (Garage and most self-hosted stores have no virtual-host buckets).
Exit status 2 with a message on stderr when an object is missing, 3 when a precondition fails.
"""
import argparse
import json
import os
import sys
import time

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError, EndpointConnectionError
except ImportError:
    sys.exit("boto3 is missing: python3 -m pip install -r tools/requirements.txt (or bash .ci/setup test)")

CORS_RULE = {
    "AllowedOrigins": ["*"],
    "AllowedMethods": ["GET", "PUT", "HEAD", "DELETE", "POST"],
    "AllowedHeaders": ["*"],
    "ExposeHeaders": ["ETag"],
    "MaxAgeSeconds": 600,
}


def client(a):
    missing = [n for n in ("endpoint", "bucket", "access_key", "secret_key") if not getattr(a, n)]
    if missing:
        sys.exit("missing " + ", ".join("--" + n.replace("_", "-") for n in missing))
    return boto3.client(
        "s3",
        endpoint_url=a.endpoint,
        region_name=a.region,
        aws_access_key_id=a.access_key,
        aws_secret_access_key=a.secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            # No silent retries: a fault the test injects must show.
            retries={"total_max_attempts": 1, "mode": "standard"},
            # Newer botocore adds CRC32 checksums to every upload; not every S3-compatible store
            # knows them, and this client should only check what the app wrote.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def listing(s3, bucket, prefix):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out.append({"key": o["Key"], "size": o["Size"], "etag": o["ETag"]})
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT"))
    p.add_argument("--bucket", default=os.environ.get("S3_BUCKET"))
    p.add_argument("--region", default=os.environ.get("S3_REGION", "garage"))
    p.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID"))
    p.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY"))
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list").add_argument("prefix", nargs="?", default="")
    sub.add_parser("get").add_argument("key")
    put = sub.add_parser("put")
    put.add_argument("key")
    put.add_argument("file")
    put.add_argument("--if-none-match", action="store_true", help='send "If-None-Match: *"')
    presign = sub.add_parser("presign")
    presign.add_argument("method", choices=["GET", "PUT", "HEAD", "DELETE"])
    presign.add_argument("key")
    sub.add_parser("delete-prefix").add_argument("prefix")
    cors = sub.add_parser("set-cors")
    cors.add_argument("--origin", action="append", help="allowed origin (repeatable; default *)")
    cors.add_argument("--retry-seconds", type=float, default=0,
                      help="keep retrying this long (a fresh server may not accept writes at once)")
    sub.add_parser("get-cors")
    a = p.parse_args()
    s3 = client(a)

    if a.cmd == "list":
        print(json.dumps(listing(s3, a.bucket, a.prefix)))
    elif a.cmd == "get":
        try:
            body = s3.get_object(Bucket=a.bucket, Key=a.key)["Body"].read()
        except ClientError as e:
            if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
                print(f"no such key: {a.key}", file=sys.stderr)
                sys.exit(2)
            raise
        sys.stdout.buffer.write(body)
    elif a.cmd == "put":
        data = sys.stdin.buffer.read() if a.file == "-" else open(a.file, "rb").read()
        extra = {"IfNoneMatch": "*"} if a.if_none_match else {}
        try:
            r = s3.put_object(Bucket=a.bucket, Key=a.key, Body=data, **extra)
        except ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] == 412:
                print(f"precondition failed: {a.key}", file=sys.stderr)
                sys.exit(3)
            raise
        print(json.dumps({"etag": r["ETag"]}))
    elif a.cmd == "presign":
        op = {"GET": "get_object", "PUT": "put_object", "HEAD": "head_object", "DELETE": "delete_object"}[a.method]
        print(s3.generate_presigned_url(op, Params={"Bucket": a.bucket, "Key": a.key}, ExpiresIn=3600))
    elif a.cmd == "delete-prefix":
        keys = [o["key"] for o in listing(s3, a.bucket, a.prefix)]
        for i in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=a.bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        print(json.dumps({"deleted": len(keys)}))
    elif a.cmd == "set-cors":
        rule = dict(CORS_RULE, AllowedOrigins=a.origin or ["*"])
        deadline = time.monotonic() + a.retry_seconds
        while True:
            try:
                s3.put_bucket_cors(Bucket=a.bucket, CORSConfiguration={"CORSRules": [rule]})
                break
            except (ClientError, EndpointConnectionError) as e:
                if time.monotonic() > deadline:
                    raise
                print(f"set-cors: {e}; retrying", file=sys.stderr)
                time.sleep(0.5)
        print(json.dumps(s3.get_bucket_cors(Bucket=a.bucket)["CORSRules"]))
    elif a.cmd == "get-cors":
        print(json.dumps(s3.get_bucket_cors(Bucket=a.bucket)["CORSRules"]))


if __name__ == "__main__":
    main()
