"""A stand-in for an object store: moto's S3 API server on 127.0.0.1, reached as a worker reaches S3.

No real object store can run on this machine (none is packaged here, and nothing outside is
reachable). moto's server speaks S3's HTTP API, in memory, so what a test on it proves is the
relay's calls through Airflow's ``ObjectStoragePath``, s3fs and the Amazon provider's ``aws``
connection against S3's semantics (no directories, no rename, buckets), not an object store's
consistency or speed.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

BUCKET = "ovcache-hub"


@dataclass
class S3StandIn:
    """The server's bucket, the Airflow connection that reaches it, and a boto3 client to look inside.

    :param conn_id: the ``aws`` connection (set in the environment, as ``AIRFLOW_CONN_...``); named for
        the server's port, because Airflow keeps one filesystem per (scheme, connection id) for the
        process's life and a second server's endpoint would not reach it under the same id.
    :param bucket: the one bucket the server starts with.
    :param client: a boto3 S3 client on the server.
    :param env: the connection's environment variable and value.
    """

    conn_id: str
    bucket: str
    client: Any
    env: tuple[str, str]

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix`` in the bucket: key -> bytes."""
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return {o["Key"]: self.client.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read() for o in listed}

    def buckets(self) -> list[str]:
        """The server's buckets (a hub must never create one)."""
        return sorted(b["Name"] for b in self.client.list_buckets()["Buckets"])


@contextlib.contextmanager
def s3_standin() -> Iterator[S3StandIn]:
    """Start the server with one bucket; stop it on exit. The caller sets :attr:`S3StandIn.env`."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its buckets in the process, not in the server: start every test from none.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()
        keys = {"aws_access_key_id": "ovcache-test", "aws_secret_access_key": "ovcache-test-secret"}
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys)
        client.create_bucket(Bucket=BUCKET)
        conn = {
            "conn_type": "aws",
            "login": keys["aws_access_key_id"],
            "password": keys["aws_secret_access_key"],
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        conn_id = f"ovcache_hub_{port}"
        yield S3StandIn(conn_id, BUCKET, client, (f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn)))
    finally:
        server.stop()
