"""TracingMode otel's row: what AWS's OpenTelemetry layer for Python sets up before the function,
rebuilt from its own files (aws-observability/aws-otel-python-instrumentation, lambda-layer/src:
otel-instrument and otel_wrapper.py, at the release that bundles aws-opentelemetry-distro 0.21.0,
requirements-otel.txt), since the layer itself cannot be downloaded here.

On Lambda, AWS_LAMBDA_EXEC_WRAPPER=/opt/otel-instrument sets the environment below, then runs
`opentelemetry-instrument python3 /var/runtime/bootstrap.py` (whose sitecustomize calls
opentelemetry's `initialize()`: AWS's distro and configurator, the tracer provider, the
instrumentations not disabled), and the runtime imports `otel_wrapper.lambda_handler`, which
instruments the Lambda handler named by ORIG_HANDLER (AwsLambdaInstrumentor) and imports it.
bench/child.py's `ours_otel` does the same steps in that order; the spans go as OTLP over UDP to
AWS_XRAY_DAEMON_ADDRESS, the bench's loopback socket, as they go to Lambda's X-Ray daemon.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import OTEL_VENV, site_packages

# otel-instrument's defaults (where the function's environment does not set them)
DISABLED = (
    "aio-pika,aiohttp-client,aiohttp-server,aiopg,asgi,asyncio,asyncpg,boto,boto3,cassandra,"
    "celery,confluent_kafka,dbapi,django,falcon,fastapi,flask,grpc_client,grpc_server,"
    "grpc_aio_client,grpc_aio_server,httpx,jinja2,kafka,logging,mysql,mysqlclient,pika,psycopg,"
    "psycopg2,pymemcache,pymongo,pymysql,pyramid,redis,remoulade,requests,sklearn,sqlalchemy,"
    "sqlite3,starlette,system_metrics,threading,tornado,tortoiseorm,wsgi,openai_agents,"
    "aws_openai_agents,aws_crewai,aws_langchain,aws_mcp,aws_llama-index"
)
FUNCTION_NAME = "bench-inference"


def wrapper_environment(function_env: dict[str, str], handler: str) -> dict[str, str]:
    """What /opt/otel-instrument adds to the function's environment (`function_env`, the
    template's for TracingMode otel), for the handler `handler` (module.function)."""
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,  # Lambda sets it; the distro looks for it
        "OTEL_SERVICE_NAME": FUNCTION_NAME,
        "OTEL_RESOURCE_ATTRIBUTES": (
            f"cloud.region=us-east-1,cloud.platform=aws_lambda,cloud.provider=aws,"
            f"faas.name={FUNCTION_NAME},faas.version=$LATEST"
        ),
        "OTEL_PROPAGATORS": "baggage,xray,tracecontext",
        "OTEL_AWS_APPLICATION_SIGNALS_RUNTIME_ENABLED": "false",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_AWS_LAMBDA_FAST_START": "false",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": f"{DISABLED},aws-lambda",
        "ORIG_HANDLER": handler,
        "_HANDLER": "otel_wrapper.lambda_handler",
    }
    env.update({k: v for k, v in function_env.items() if k.startswith("OTEL_")})
    env.pop("AWS_LAMBDA_EXEC_WRAPPER", None)  # the wrapper's work is done by bench/child.py
    return env


def packages() -> Path:
    """The layer's Python packages (.venv-otel's site-packages, made by make setup)."""
    return site_packages(OTEL_VENV)
