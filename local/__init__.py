"""Run the whole system on one machine, without Docker or AWS.

Commands:
- ``python -m local.s3``: a real S3-protocol server (moto) on loopback, the bucket created.
- ``python -m local.invoke --event FILE``: one event through the handler, as ``sam local
  invoke`` (which it runs instead where a Docker engine answers).
- ``python -m local.api``: the template's REST API on https://127.0.0.1:PORT, as
  ``sam local start-api`` plus API keys, request validation and gateway responses.
- ``python -m local.demo``: all of the above end to end, with real HTTPS requests.

Library:
- ``template``: template.yaml as the SAM CLI reads it; the function's environment.
- ``function`` (+ ``bootstrap``): execution environments, one process each.
- ``apigw``: API Gateway's routing, proxy event, response mapping, own answers.
- ``tls``: the throwaway CA and server certificate; ``processes``: children that stop.
"""
