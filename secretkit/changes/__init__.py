"""Push invalidation: a store hears about changes made by anyone instead of polling.

``secretkit.open("aws-sm://?changes=sns:arn:aws:sns:…")`` (or ``changes=`` as a keyword or config
key) names where the store hears about changes. One module per purpose:

* ``source``: what a change source is (``ChangeSource``, ``Delivery``, ``ChangeEvent``) and
  how one is registered for a backend; the contract a new source implements.
* ``spec``: the ``changes=`` option, checked against what the driver supports (before any I/O).
* ``consumer``: the one thread per store that pulls, drops cached entries and wakes watchers.
* ``aws``, ``aws_events``: the ``sns:`` and ``sqs:`` sources of ``aws-sm://`` and the parsing
  of what EventBridge delivers through them.
* ``ssm_events``: Parameter Store's EventBridge events, for the same sources on ``ssm://``;
  ``eventbridge``: the envelope both services' events come in (bare, or SNS notification).
* ``pubsub``, ``gcp_events``: the ``pubsub:`` source of ``gcp-sm://`` (a Pub/Sub subscription)
  and the parsing of Secret Manager's event notifications.

Nothing here is imported by ``import secretkit``: a store loads it only when ``changes`` is set.
"""
