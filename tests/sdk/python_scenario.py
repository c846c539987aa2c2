"""The SDK scenario with the ``openapi-python-client`` client (``lossd_sdk``, generated into
build/sdk/python): the same calls as ``typescript/scenario.ts``, reported the same way (each
response written back in the wire format by the SDK's own ``to_dict``), for
:func:`tests.sdk.expected.check`."""

from __future__ import annotations

import json
from typing import Any

from tests.helpers import SEED_PRED, SEED_TRUE  # seed 002's worked example

#: Class scores for torch.nn.CrossEntropyLoss (expected.py derives its answer by hand).
TORCH_SCORES = [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]]


def run(base_url: str, token: str | None) -> dict[str, Any]:
    """Run the scenario against ``base_url``; ``lossd_sdk`` must be importable."""
    # Imported here: the package exists only once tests.sdk.build has generated it.
    from lossd_sdk import AuthenticatedClient, Client
    from lossd_sdk.api.batch import evaluate_batch
    from lossd_sdk.api.inference import model_infer
    from lossd_sdk.api.losses import evaluate_loss, get_loss, list_losses
    from lossd_sdk.models import (
        BatchItem,
        BatchRequest,
        BatchResponse,
        EvaluateRequest,
        EvaluateRequestOptions,
        EvaluateResponse,
        InferenceRequest,
        InferenceResponse,
        LossCatalogue,
        LossInfo,
        LossRef,
        LossRefOptions,
        Problem,
        Reduction,
        RequestInput,
        RequestOutput,
    )
    from lossd_sdk.types import Response

    # Unexpected statuses raise instead of returning None: nothing passes by accident.
    client: Client | AuthenticatedClient = (
        AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
        if token
        else Client(base_url=base_url, raise_on_unexpected_status=True)
    )

    def ok(response: Response[Any], model: type) -> dict[str, Any]:
        assert response.status_code == 200, (response.status_code, response.content)
        assert isinstance(response.parsed, model), response.parsed
        as_dict: dict[str, Any] = response.parsed.to_dict()
        return as_dict

    def failure(response: Response[Any]) -> dict[str, Any]:
        # Documented error statuses are parsed into Problem; others (401 before bearerAuth is
        # declared) only have the raw body, parsed here through the same model.
        problem = response.parsed
        if not isinstance(problem, Problem):
            problem = Problem.from_dict(json.loads(response.content))
        return {
            "status": int(response.status_code),
            "content_type": response.headers.get("content-type"),
            "problem": problem.to_dict(),
        }

    flat_pred = [x for row in SEED_PRED for x in row]  # v2 data may be nested or flat
    with client:
        catalogue = ok(list_losses.sync_detailed(client=client), LossCatalogue)
        mse = ok(get_loss.sync_detailed("MSE", client=client), LossInfo)
        weighted = evaluate_loss.sync_detailed(
            "huber",
            client=client,
            body=EvaluateRequest(
                y_true=[[0, 0], [0, 0]],
                y_pred=[[1, 0], [0.25, 0]],
                sample_weight=[2, 1],
                options=EvaluateRequestOptions.from_dict({"delta": 0.5}),
                reduction=Reduction.SUM,
            ),
        )
        seed = evaluate_loss.sync_detailed(
            "mse", client=client, body=EvaluateRequest(y_true=SEED_TRUE, y_pred=SEED_PRED)
        )
        derivatives = evaluate_loss.sync_detailed(
            "mse",
            client=client,
            body=EvaluateRequest(
                y_true=SEED_TRUE, y_pred=SEED_PRED, gradient=True, hessian_diagonal=True
            ),
        )
        # A torch loss: its own default reduction (torch's mean) and a tensor option.
        torch = evaluate_loss.sync_detailed(
            "torch.nn.CrossEntropyLoss",
            client=client,
            body=EvaluateRequest(
                y_true=[0, 2],
                y_pred=TORCH_SCORES,
                options=EvaluateRequestOptions.from_dict({"weight": [1, 2, 3]}),
            ),
        )
        huber_ref = LossRef(name="huber", options=LossRefOptions.from_dict({"delta": 0.5}))
        batched = evaluate_batch.sync_detailed(
            client=client,
            body=BatchRequest(
                items=[
                    BatchItem(
                        id="seed", loss=["mse", huber_ref], y_true=SEED_TRUE, y_pred=SEED_PRED
                    ),
                    BatchItem(id="bad", loss="no_such_loss", y_true=[[0]], y_pred=[[1]]),
                ]
            ),
        )
        inferred = model_infer.sync_detailed(
            "mse",
            client=client,
            body=InferenceRequest(
                id="seed-002",
                inputs=[
                    RequestInput(name="y_true", shape=[2, 3], datatype="FP32", data=SEED_TRUE),
                    RequestInput(name="y_pred", shape=[2, 3], datatype="FP32", data=flat_pred),
                ],
                outputs=[RequestOutput(name="per_sample"), RequestOutput(name="mean")],
            ),
        )
        invalid = evaluate_loss.sync_detailed(
            "mse",
            client=client,
            body=EvaluateRequest(y_true=[[0, 1], [1, 0]], y_pred=[[1, 1], [0, 1, 1]]),
        )
        unauthorized = None
        if token:
            with Client(base_url=base_url) as anonymous:
                unauthorized = failure(list_losses.sync_detailed(client=anonymous))
        return {
            "catalogue": catalogue,
            "mse": mse,
            "weighted": ok(weighted, EvaluateResponse),
            "seed": ok(seed, EvaluateResponse),
            "derivatives": ok(derivatives, EvaluateResponse),
            "torch": ok(torch, EvaluateResponse),
            "batch": ok(batched, BatchResponse),
            "inference": ok(inferred, InferenceResponse),
            "invalid": failure(invalid),
            "unauthorized": unauthorized,
        }
