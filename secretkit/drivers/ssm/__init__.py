"""ssm:// — AWS Systems Manager Parameter Store through boto3.

``secretkit.open("ssm://?region=eu-west-1")``; the AWS client options of aws-sm://
(``region``, ``endpoint_url``, ``profile``, ``connect_timeout``, ``read_timeout``, or a ready
``client=``, a boto3 ``ssm`` client) and Parameter Store's own: ``parameter_type``,
``kms_key_id``, ``tier``. Credentials come from boto3's normal chain.

Native first: every name SSM accepts is the parameter's name, unchanged (``/prod/app/db``,
``db-password``); values are the parameter's text (SecureString by default, decrypted on read);
versions are SSM's integers; ``previous`` is the version before the latest (history).

Modules: ``codec`` (names, values: no I/O), ``errors`` (botocore → portable codes),
``options``, ``driver``. docs/backends/ssm.md has the details, including what other tools see.
"""
