"""KServe's Python SDK against this API's Open Inference Protocol (v2) routes; run by
test_inference_protocols.py with .venv-kserve's Python (KServe needs a protobuf older than
.venv's). Reads the request from stdin as JSON: {"url", "ca", "key", "model", "inputs": {name:
{"shape", "data"}}}; prints what KServe's client answered: {"live", "ready", "model_ready",
"metadata_inputs", "outputs": {name: {"shape", "data"}}}.
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main(request: dict) -> dict:
    headers = {"x-api-key": request["key"]}
    config = RESTConfig(protocol="v2", verify=request["ca"], timeout=60, retries=1)
    client = InferenceRESTClient(config)
    try:
        url = request["url"]
        live = await client.is_server_live(url, headers=headers)
        ready = await client.is_server_ready(url, headers=headers)
        model_ready = await client.is_model_ready(url, request["model"], headers=headers)
        inputs = []
        for name, tensor in request["inputs"].items():
            values = np.asarray(tensor["data"], np.float32).reshape(tensor["shape"])
            infer_input = InferInput(name, list(values.shape), "FP32")
            infer_input.set_data_from_numpy(values, binary_data=False)  # JSON tensors
            inputs.append(infer_input)
        answer = await client.infer(
            url,
            InferRequest(request["model"], inputs, request_id="k1"),
            request["model"],
            headers=headers,
        )
        async with httpx.AsyncClient(verify=request["ca"]) as plain:  # the SDK has no metadata call
            metadata = (
                await plain.get(f"{url}/v2/models/{request['model']}", headers=headers)
            ).json()
        return {
            "live": live,
            "ready": ready,
            "model_ready": model_ready,
            "id": answer.id,
            "metadata_inputs": [t["name"] for t in metadata["inputs"]],
            "outputs": {
                o.name: {"shape": list(o.as_numpy().shape), "data": o.as_numpy().ravel().tolist()}
                for o in answer.outputs
            },
        }
    finally:
        await client.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))))
