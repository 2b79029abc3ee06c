"""Run the whole system on one machine, without Docker or AWS, on the SAM CLI's own code.

Commands:
- ``python -m local.s3``: a real S3-protocol server (moto) on loopback, the bucket created.
- ``python -m local.invoke --event FILE``: one event through a function, as ``sam local
  invoke`` (which it runs instead where a Docker engine answers).
- ``python -m local.api``: the template's REST API on https://127.0.0.1:PORT: ``sam local
  start-api``'s own service plus API keys, request validation and gateway responses.
- ``python -m local.demo``: all of the above end to end, with real HTTPS requests.

Library:
- ``template``: template.yaml and a function's environment, through SAM CLI's providers.
- ``function`` (+ ``bootstrap``): execution environments, one process each; the runner.
- ``events``: ``api_event``, the proxy event the local API sends (for events/ and bench).
- ``processes``: children that always stop.
"""
