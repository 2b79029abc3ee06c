"""make batch's pure parts (local/batch.py, local/stepfunctions.py): what a user types checked
before anything starts, the definition made local exactly where aws-local-stepfunctions cannot
run it, the prefix batched as ItemBatcher does, ResultWriter's summary read back, and an
execution on AWS followed to its end (DescribeExecution and DescribeMapRun replaced)."""

from __future__ import annotations

import json

import pytest

from local import batch, stepfunctions


@pytest.mark.parametrize("uri", ["", "photos/", "s3://", "s3:///photos", "https://b/p"])
def test_a_location_must_be_an_s3_uri(uri):
    with pytest.raises(batch.JobError, match=r"INPUT=.*expected s3://bucket/prefix/"):
        batch.Location.parse(uri, "INPUT")


def test_output_inside_input_is_refused_elsewhere_in_the_bucket_allowed():
    source = batch.Location.parse("s3://b/photos/", "INPUT")
    with pytest.raises(batch.JobError, match="lies inside INPUT"):
        batch.check_locations(source, batch.Location.parse("s3://b/photos/results/", "OUTPUT"))
    batch.check_locations(source, batch.Location.parse("s3://b/results/", "OUTPUT"))
    batch.check_locations(source, batch.Location.parse("s3://other/photos/", "OUTPUT"))


@pytest.mark.parametrize(
    "version, expected", [(None, "latest"), ("latest", "latest"), ("1796000000", 1796000000)]
)
def test_the_job_names_the_stable_version_unless_one_is_given(version, expected):
    job = batch.job_input(batch.Location("b", "in/"), batch.Location("c", "out/"), version)
    assert job == {"input_prefix": "in/", "output_prefix": "out/", "version": expected}


@pytest.mark.parametrize("version", ["0", "-3", "v2", "1.5", "１２"])
def test_a_version_that_is_not_one_is_refused_before_anything_starts(version):
    with pytest.raises(batch.JobError, match="a published version number, or latest"):
        batch.job_input(batch.Location("b", ""), batch.Location("c", ""), version)


def test_a_local_s3_endpoint_makes_the_job_local():
    assert batch.where("auto", {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:4566"}) == "local"
    assert batch.where("auto", {}) == "aws"
    assert batch.where("aws", {"AWS_ENDPOINT_URL_S3": "http://x"}) == "aws"


def definition() -> dict:
    return stepfunctions.substitute(
        stepfunctions.DEFINITION.read_text(),
        {
            "BatchSize": "7",
            "MaxConcurrency": "3",
            "ToleratedFailurePercentage": "5",
            "BatchFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:f",
            "InputBucket": "in",
            "OutputBucket": "out",
        },
    )


def test_every_placeholder_of_the_definition_needs_a_value():
    with pytest.raises(stepfunctions.StateMachineError, match="no substitution for BatchSize"):
        stepfunctions.substitute('{"a": "${BatchSize}"}', {})


def test_the_local_definition_differs_only_where_the_interpreter_cannot_run_it():
    deployed = definition()
    local = stepfunctions.local_definition(deployed)
    score, local_score = deployed["States"]["Score"], local["States"]["Score"]
    for emulated in ("ItemReader", "ItemBatcher", "ResultWriter", "ToleratedFailurePercentagePath"):
        assert emulated in score and emulated not in local_score
    assert local_score["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    assert local_score["ItemSelector"]["BatchInput"] == score["ItemBatcher"]["BatchInput"]
    # the same tasks, retries and concurrency
    assert local_score["ItemProcessor"]["States"] == score["ItemProcessor"]["States"]
    assert local_score["MaxConcurrencyPath"] == score["MaxConcurrencyPath"]
    others = {k: v for k, v in local["States"].items() if k != "Score"}
    assert others == {k: v for k, v in deployed["States"].items() if k != "Score"}
    assert stepfunctions.task_states(deployed["States"]) == ["Job", "ScoreBatch"]


def test_a_map_the_local_run_cannot_emulate_faithfully_is_refused():
    changed = definition()
    changed["States"]["Score"]["ItemSelector"] = {"key.$": "$$.Map.Item.Value.Key"}
    with pytest.raises(stepfunctions.StateMachineError, match="no ItemSelector"):
        stepfunctions.local_definition(changed)


def test_items_are_batched_in_order_as_item_batcher_does():
    items = [{"Key": f"k{i}"} for i in range(15)]
    groups = stepfunctions.batches(items, 7)
    assert [len(g) for g in groups] == [7, 7, 1]
    assert [i for g in groups for i in g] == items


def test_the_map_runs_summary_is_read_back_from_result_writers_files():
    """map_run_summary writes what ResultWriter writes; summarize reads either."""
    progress = stepfunctions.Progress(2, 3, report=lambda line: None)
    for keys, answered, errors in ((["a", "b"], 1, {"INVALID_IMAGE": 1}), (["c"], 1, {})):
        event = {"Items": [{"Key": k} for k in keys]}
        answer = {"records": f"s3://out/r/{keys[0]}.jsonl", "objects": len(keys),
                  "answered": answered, "errors": errors}  # fmt: skip
        progress.invoked(event, True, answer, "t0", "t1")
    machine = "arn:aws:states:eu-west-1:123456789012:stateMachine:m"
    execution = "arn:aws:states:eu-west-1:123456789012:execution:m:e"
    run = stepfunctions.map_run_summary(
        machine, execution, "out", "r/map-run", progress, ["a", "c"]
    )
    files = {"out/" + k: v for k, v in run.files.items()}

    class S3:
        def get_object(self, Bucket, Key):  # noqa: N803
            import io

            return {"Body": io.BytesIO(files[f"{Bucket}/{Key}"])}

    summary = batch.summarize(S3(), "out", run.manifest_key)
    assert (summary.objects, summary.answered, dict(summary.errors)) == (3, 2, {"INVALID_IMAGE": 1})
    assert summary.records == ["s3://out/r/a.jsonl", "s3://out/r/c.jsonl"]
    assert ":mapRun:m/Score:" in run.arn and run.manifest_key.startswith("r/map-run/")
    text = batch.describe(summary, "s3://out/r/", "s3://out/" + run.manifest_key)
    assert "3 objects: 2 answered, 1 without an answer (INVALID_IMAGE 1)" in text


def test_failed_batches_are_counted_with_their_objects():
    manifest = {"ResultFiles": {"SUCCEEDED": [], "PENDING": [], "FAILED": [{"Key": "f.json"}]}}
    failed = [{"Input": json.dumps({"Items": [{"Key": "a"}, {"Key": "b"}]}), "Status": "FAILED"}]
    documents = {"m.json": manifest, "f.json": failed}

    class S3:
        def get_object(self, Bucket, Key):  # noqa: N803
            import io

            return {"Body": io.BytesIO(json.dumps(documents[Key]).encode())}

    summary = batch.summarize(S3(), "out", "m.json")
    assert (summary.failed_batches, summary.failed_objects) == (1, 2)
    assert "1 batches (2 objects) failed after their retries" in batch.describe(summary, "r", "m")


def test_an_execution_is_followed_to_its_end_with_its_items_progress(capsys):
    counts = [
        {"succeeded": 0, "failed": 0, "running": 10, "total": 250},
        {"succeeded": 0, "failed": 0, "running": 10, "total": 250},  # unchanged: not printed
        {"succeeded": 200, "failed": 1, "running": 49, "total": 250},
        {"succeeded": 249, "failed": 1, "running": 0, "total": 250},
    ]
    statuses = ["RUNNING", "RUNNING", "RUNNING", "SUCCEEDED"]
    sleeps = []

    class Sfn:
        def describe_execution(self, executionArn):  # noqa: N803
            return {"status": statuses.pop(0), "executionArn": executionArn}

        def list_map_runs(self, executionArn):  # noqa: N803
            return {"mapRuns": [{"mapRunArn": "run"}]}

        def describe_map_run(self, mapRunArn):  # noqa: N803
            return {"itemCounts": counts.pop(0)}

    described = batch.follow(Sfn(), "arn", poll=5, sleep=sleeps.append)
    assert described["status"] == "SUCCEEDED" and sleeps == [5, 5, 5]
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "  items 0 of 250 done, 0 failed, 10 running",
        "  items 200 of 250 done, 1 failed, 49 running",
        "  items 249 of 250 done, 1 failed, 0 running",
    ]


def test_a_failed_job_prints_the_functions_own_message(capsys):
    cause = json.dumps({"errorType": "ModelUnavailable", "errorMessage": "version 9 is refused"})
    assert batch.finish(None, "FAILED", None, "ModelUnavailable", cause) == 1
    assert capsys.readouterr().err == "the job failed: ModelUnavailable: version 9 is refused\n"
