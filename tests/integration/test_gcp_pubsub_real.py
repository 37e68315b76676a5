"""gcp-sm://…?changes=pubsub:… against a real project: Secret Manager's own notifications.

Runs only when ``SECRETKIT_TEST_GCP_PROJECT`` and ``SECRETKIT_TEST_GCP_PUBSUB_TOPIC``
(``projects/P/topics/T``, on which Secret Manager's service agent has ``roles/pubsub.publisher``,
docs/backends/gcp.md) are set; the credentials need Secret Manager admin rights, and Pub/Sub
subscriber plus subscription create/delete rights. The secret it makes is deleted afterwards.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

import secretkit
from secretkit.errors import NotFoundError

PROJECT = os.environ.get("SECRETKIT_TEST_GCP_PROJECT", "")
TOPIC = os.environ.get("SECRETKIT_TEST_GCP_PUBSUB_TOPIC", "")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (PROJECT and TOPIC), reason="set SECRETKIT_TEST_GCP_PROJECT and "
                       "SECRETKIT_TEST_GCP_PUBSUB_TOPIC to run against real Secret Manager notifications"),
]


def test_real_notifications_invalidate_and_the_subscription_goes_on_close() -> None:
    from google.api_core import exceptions as gexc
    from google.pubsub_v1 import SubscriberClient

    secret_id = f"sk-changes-{uuid.uuid4().hex[:10]}"
    store = secretkit.open(f"gcp-sm://{PROJECT}", changes=f"pubsub:{TOPIC}")
    client = store.client
    parent = f"projects/{PROJECT}/secrets/{secret_id}"
    try:
        client.create_secret(parent=f"projects/{PROJECT}", secret_id=secret_id,
                             secret={"replication": {"automatic": {}}, "topics": [{"name": TOPIC}]})
        client.add_secret_version(parent=parent, payload={"data": b"v1"})
        assert store.get(secret_id).value.text == "v1"
        assert store._changes.ready.wait(60)  # type: ignore[attr-defined]
        assert store.get(secret_id).value.text == "v1"
        subscription = store._changes._source.subscription  # type: ignore[attr-defined]
        client.add_secret_version(parent=parent, payload={"data": b"v2"})
        deadline = time.monotonic() + 60
        while store.get(secret_id).value.text != "v2":
            assert time.monotonic() < deadline, "no notification within a minute"
            time.sleep(0.5)
        client.delete_secret(name=parent)
        deadline = time.monotonic() + 60
        while True:
            try:
                store.get(secret_id)
            except NotFoundError:
                break
            assert time.monotonic() < deadline, "no delete notification within a minute"
            time.sleep(0.5)
    finally:
        try:
            client.delete_secret(name=parent)
        except gexc.NotFound:
            pass
        store.close()
    with pytest.raises(gexc.NotFound):
        SubscriberClient().get_subscription(subscription=subscription)
