"""aws-sm:// — AWS Secrets Manager through boto3.

``secretkit.open("aws-sm://?region=eu-west-1")``; options ``region``, ``endpoint_url``,
``profile``, ``recovery_window_days``, ``connect_timeout``, ``read_timeout``, or a ready
``client=`` (a boto3 ``secretsmanager`` client). Credentials come from boto3's normal chain.

Native first: every name AWS accepts is the secret's name, unchanged; text is the
``SecretString`` exactly, fields a JSON object in ``SecretString``, bytes the ``SecretBinary``;
rotation runs on AWS's own ``AWSCURRENT``/``AWSPREVIOUS``/``AWSPENDING`` labels.

Modules: ``codec`` (names, values, labels: no I/O), ``errors`` (botocore → portable codes),
``stages`` (the staging-label moves of compare-and-set and rotation), ``driver`` (the driver).
docs/backends/aws.md has the details, including what other AWS tools see.
"""
