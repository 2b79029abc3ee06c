"""The batch jobs' state machine run locally: its own definition (statemachine/batch.asl.json,
with the template's substitutions) in aws-local-stepfunctions, an existing interpreter of the
Amazon States Language (npm, on Node 22; local/stepfunctions/, installed by make setup), its
task invoking the batch function in local execution environments (local.function) through SAM
CLI's own Lambda Invoke service, against the local S3.

What the interpreter runs: every state of the definition as written (the Pass state's
intrinsic functions, the Task states' Parameters, ResultSelector, Retry with their intervals),
and the Distributed Map's ItemProcessor over the batches, as an inline Map with the same
MaxConcurrency. What it does not run, a Distributed Map's ItemReader, ItemBatcher and
ResultWriter, is done here as Step Functions does it: the input prefix listed (ListObjectsV2,
each object as the ItemReader gives it), cut into batches of the template's BatchSize, each
batch handed to the ItemProcessor as {"Items": [...], "BatchInput": ...} (the definition's own
BatchInput template, which the interpreter evaluates), and the map run's summary written under
the output prefix as ResultWriter writes it (manifest.json, SUCCEEDED_0.json). Only AWS runs:
ToleratedFailurePercentage (locally a batch that fails after its retries fails the job; a bad
object never fails a batch), Express child executions with their own history and 5-minute
limit, concurrency beyond this machine's execution environments (docs/batch.md).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "statemachine" / "batch.asl.json"
NODE_DIR = ROOT / "local" / "stepfunctions"
NODE = NODE_DIR / "node_modules" / ".bin" / "node"
RUNNER = NODE_DIR / "run.mjs"
STATE_MACHINE = "BatchStateMachine"  # template.yaml's logical ids
FUNCTION = "BatchFunction"
MAP_STATE = "Score"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
BATCHES_PATH = "$$.LocalItemBatches"  # where the local Map finds the batches (context object)
ACCOUNT = "123456789012"  # the local runners' account (local.function)


class StateMachineError(Exception):
    """The local run cannot start (no Node, a definition it cannot emulate...)."""


def substitute(text: str, values: dict[str, str]) -> dict[str, Any]:
    """The definition with its ${Name} placeholders replaced, as CloudFormation's
    DefinitionSubstitutions replace them (in the text); every placeholder must have a value."""
    missing = sorted(set(re.findall(r"\$\{(\w+)\}", text)) - set(values))
    if missing:
        raise StateMachineError(f"no substitution for {', '.join(missing)}")
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda m: values[m[1]], text))


def task_states(states: dict[str, Any]) -> list[str]:
    """The names of every Task state invoking Lambda, ItemProcessors' included."""
    found = []
    for name, state in states.items():
        if state.get("Type") == "Task" and state.get("Resource") == LAMBDA_INVOKE:
            found.append(name)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found += task_states(processor["States"])
    return found


def local_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition with its Distributed Map made an inline Map over the batches (the same
    ItemProcessor, MaxConcurrency, ResultPath): ItemReader, ItemBatcher, ResultWriter and the
    tolerated failures are left to this module or to AWS. A Map this module cannot emulate
    faithfully (ItemSelector, whose items this module would have to select) is refused."""
    local = copy.deepcopy(definition)
    state = local["States"][MAP_STATE]
    if "ItemSelector" in state or "ItemReader" not in state or "ItemBatcher" not in state:
        raise StateMachineError(
            f"{MAP_STATE}: only a Distributed Map with ItemReader and ItemBatcher and no "
            "ItemSelector is emulated here"
        )
    batcher = state.pop("ItemBatcher")
    for emulated in ("ItemReader", "ResultWriter"):
        state.pop(emulated)
    for only_aws in ("ToleratedFailurePercentage", "ToleratedFailurePercentagePath"):
        state.pop(only_aws, None)
    state["ItemsPath"] = BATCHES_PATH
    state["ItemSelector"] = {"Items.$": "$$.Map.Item.Value", "BatchInput": batcher["BatchInput"]}
    state["ItemProcessor"]["ProcessorConfig"] = {"Mode": "INLINE"}
    return local


def list_items(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every object under the prefix as the ItemReader's ListObjectsV2 gives it (key order,
    LastModified in epoch seconds)."""
    items = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            items.append(
                {
                    "Etag": o["ETag"],
                    "Key": o["Key"],
                    "LastModified": int(o["LastModified"].timestamp()),
                    "Size": o["Size"],
                    "StorageClass": o.get("StorageClass", "STANDARD"),
                }
            )
    return items


def batches(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """ItemBatcher's MaxItemsPerBatch: consecutive items, `size` at most in each."""
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass
class Progress:
    """What the local Lambda service saw: each batch's outcome, for the progress lines and the
    map run's summary."""

    total_batches: int
    total_items: int
    report: Callable[[str], None]
    done: dict[str, tuple] = field(default_factory=dict)  # first key -> (event, answer, times)
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def invoked(self, event: Any, ok: bool, payload: Any, started: str, stopped: str) -> None:
        if not (isinstance(event, dict) and event.get("Items")):
            return  # the Job event
        with self._lock:
            if not ok:
                self.failures += 1
                self.report(
                    f"  a batch failed ({payload.get('errorType')}: "
                    f"{str(payload.get('errorMessage'))[:200]}); Step Functions' Retry decides"
                )
                return
            self.done[event["Items"][0]["Key"]] = (event, payload, started, stopped)
            items = sum(len(e["Items"]) for e, *_ in self.done.values())
            unanswered = sum(sum(p["errors"].values()) for _, p, *_ in self.done.values())
            self.report(
                f"  batches {len(self.done)} of {self.total_batches} done: items {items} of "
                f"{self.total_items}, {unanswered} without an answer"
            )


class LambdaRunner:
    """SAM CLI's local Lambda service's runner (what `sam local start-lambda` gives it), over
    local execution environments: `get_function` and `invoke`, the function's answer or
    Lambda's error document written to the service's stdout."""

    def __init__(self, pool: Any, name: str, progress: Progress):
        self.pool, self.name, self.progress = pool, name, progress

    def is_debugging(self) -> bool:
        return False

    def get_function(self, function_name: str, tenant_id: str | None = None) -> Any:
        from samcli.lib.utils.name_utils import normalize_sam_function_identifier
        from samcli.local.lambdafn.exceptions import FunctionNotFound

        if normalize_sam_function_identifier(function_name) != self.name:
            raise FunctionNotFound(f"no local function {function_name}")
        return None  # no durable configuration

    def invoke(self, function_name: str, request_data: str, *, stdout: Any, **_: Any) -> None:
        event = json.loads(request_data)
        started = _now()
        result = self.pool.run(self.name, event)
        self.progress.invoked(event, result.ok, result.payload, started, _now())
        payload = result.payload
        if not result.ok:  # the document SAM CLI's parser recognises as a function error
            payload = {k: v for k, v in payload.items() if k in ("errorMessage", "errorType")}
        stdout.write_str(json.dumps(payload))
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def serve_lambda(runner: LambdaRunner) -> tuple[Any, str]:
    """SAM CLI's Lambda Invoke service on a free loopback port, in a thread; (server, URL)."""
    import logging

    from samcli.local.lambda_service.local_lambda_http_service import LocalLambdaHttpService
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per invocation

    service = LocalLambdaHttpService(runner, port=0, host="127.0.0.1")
    service.create()
    server = make_server("127.0.0.1", 0, service._app, threaded=True)
    threading.Thread(target=server.serve_forever, name="local-lambda", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def run_node(request: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """run.mjs on the request; its one line of result."""
    if not NODE.exists():
        raise StateMachineError(
            f"no {NODE.relative_to(ROOT)}: make setup installs Node 22 and "
            "aws-local-stepfunctions there (npm ci in local/stepfunctions)"
        )
    completed = subprocess.run(
        [str(NODE), str(RUNNER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=NODE_DIR,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise StateMachineError(f"run.mjs failed: {completed.stderr.strip()[-2000:]}")
    return json.loads(lines[-1])


@dataclass(frozen=True)
class MapRun:
    """The map run's summary as ResultWriter writes it."""

    arn: str
    manifest_key: str
    files: dict[str, bytes]  # key -> body


def map_run_summary(
    state_machine_arn: str,
    execution_arn: str,
    bucket: str,
    prefix: str,
    progress: Progress,
    batch_order: list[str],
) -> MapRun:
    """manifest.json and SUCCEEDED_0.json under PREFIX/<map run id>/, in ResultWriter's form
    (each child's input and output as JSON text, its status and times)."""
    run_id = str(uuid.uuid4())
    arn = f"{state_machine_arn.replace(':stateMachine:', ':mapRun:')}/{MAP_STATE}:{run_id}"
    folder = f"{prefix}/{run_id}"
    children = []
    for index, first_key in enumerate(batch_order):
        event, answer, started, stopped = progress.done[first_key]
        name = f"{run_id}-{index}"
        children.append(
            {
                "ExecutionArn": f"{execution_arn.replace(':execution:', ':express:')}/{name}",
                "Input": json.dumps(event),
                "InputDetails": {"Included": True},
                "Name": name,
                "Output": json.dumps(answer),
                "OutputDetails": {"Included": True},
                "StartDate": started,
                "StateMachineArn": state_machine_arn,
                "Status": "SUCCEEDED",
                "StopDate": stopped,
            }
        )
    succeeded = json.dumps(children).encode()
    manifest = {
        "DestinationBucket": bucket,
        "MapRunArn": arn,
        "ResultFiles": {
            "FAILED": [],
            "PENDING": [],
            "SUCCEEDED": [{"Key": f"{folder}/SUCCEEDED_0.json", "Size": len(succeeded)}],
        },
    }
    files = {
        f"{folder}/SUCCEEDED_0.json": succeeded,
        f"{folder}/manifest.json": json.dumps(manifest).encode(),
    }
    return MapRun(arn, f"{folder}/manifest.json", files)


def execution_name() -> str:
    """A readable, unique execution name (it names the job's results folder)."""
    return f"batch-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def definition_substitutions(template: Any, function_arn: str) -> dict[str, str]:
    """The state machine's DefinitionSubstitutions as CloudFormation resolves them for these
    parameters, the batch function being the local one. The stack's own bucket has no name
    locally: the runs name their buckets (local.batch sets BatchInputBucketName...)."""
    from local.transformed import load_template, resolve_language_extensions

    source = load_template(template.path)
    resolved = resolve_language_extensions(source, template.parameters)
    values = resolved["Resources"][STATE_MACHINE]["Properties"]["DefinitionSubstitutions"]

    def value(name: str, node: Any) -> str:
        if isinstance(node, dict) and set(node) == {"Ref"} and node["Ref"] in template.parameters:
            return template.parameters[node["Ref"]]
        if node == {"Fn::GetAtt": [FUNCTION, "Arn"]}:
            return function_arn
        raise StateMachineError(
            f"{name}: {json.dumps(node)} has no value locally (name the batch buckets: "
            "BatchInputBucketName and BatchOutputBucketName)"
        )

    return {name: value(name, node) for name, node in values.items()}


def path_value(path: str, document: Any) -> Any:
    """A simple reference path ($.a.b) in a document: what ResultWriter's Prefix.$ names."""
    if not re.fullmatch(r"\$(\.\w+)+", path):
        raise StateMachineError(f"{path}: only $.a.b paths are emulated here")
    for name in path.split(".")[1:]:
        document = document[name]
    return document


@dataclass(frozen=True)
class LocalExecution:
    name: str
    arn: str
    status: str  # SUCCEEDED or FAILED, as DescribeExecution says
    output: Any = None
    error: str | None = None
    cause: str | None = None
    listed: int = 0  # objects under the input prefix


def run_job(
    template: Any,
    job: dict[str, Any],
    s3: Any,
    log: Any,
    report: Callable[[str], None],
    environments: int,
    name: str | None = None,
) -> LocalExecution:
    """One execution of the batch state machine with `job` as its input, locally (see the
    module docstring), `environments` execution environments of the batch function at most."""
    from local.cloudwatch import EmfForwarder
    from local.function import EnvironmentPool, load_function

    function = load_function(template, FUNCTION, {}, warn=report)
    substitutions = definition_substitutions(template, function.arn)
    definition = substitute(DEFINITION.read_text(), substitutions)
    name = name or execution_name()
    machine = f"arn:aws:states:{template.region}:{ACCOUNT}:stateMachine:local-batch"
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    input_bucket = substitutions["InputBucket"]
    prefix = str(job.get("input_prefix", "")).lstrip("/")
    items = list_items(s3, input_bucket, prefix)  # when the execution starts (AWS: at Score)
    groups = batches(items, int(substitutions["BatchSize"]))
    report(f"listed {len(items)} objects under s3://{input_bucket}/{prefix}: {len(groups)} batches")
    progress = Progress(len(groups), len(items), report)
    pool = EnvironmentPool(
        {FUNCTION: function}, log, environments, "local-batch", EmfForwarder.from_environment()
    )
    server = None
    try:
        server, url = serve_lambda(LambdaRunner(pool, FUNCTION, progress))
        request = {
            "definition": definition,
            "local_definition": local_definition(definition),
            "input": job,
            "context": {
                "Execution": {"Id": arn, "Name": name},
                "StateMachine": {"Id": machine, "Name": "local-batch"},
                BATCHES_PATH.removeprefix("$$."): groups,
            },
            "lambda_endpoint": url,
            "task_states": task_states(definition["States"]),
        }
        result = run_node(request)
    finally:
        if server is not None:
            server.shutdown()
        pool.close()
    if result["status"] != "SUCCEEDED":
        return LocalExecution(
            name, arn, "FAILED", None, result["error"], result["cause"], len(items)
        )
    output = result["output"]
    writer = definition["States"][MAP_STATE]["ResultWriter"]["Parameters"]
    bucket, run_prefix = writer["Bucket"], path_value(writer["Prefix.$"], output)
    order = [group[0]["Key"] for group in groups]
    map_run = map_run_summary(machine, arn, bucket, run_prefix, progress, order)
    for key, body in map_run.files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    result_path = definition["States"][MAP_STATE]["ResultPath"].removeprefix("$.")
    output[result_path] = {
        "MapRunArn": map_run.arn,
        "ResultWriterDetails": {"Bucket": bucket, "Key": map_run.manifest_key},
    }
    return LocalExecution(name, arn, "SUCCEEDED", output, listed=len(items))
