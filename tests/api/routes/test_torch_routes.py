"""The torch flavour over HTTP: names, default reduction, options holding tensors, the
catalogue's flavour filter, sample_weight's 422, batch and stream (values: the conformance
tests)."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient

from tests.helpers import assert_problem, ndjson

NDJSON = {"content-type": "application/x-ndjson"}
SCORES = [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]]


@pytest.mark.parametrize(
    "name",
    ["torch.nn.MSELoss", "torch.nn.functional.mse_loss", "TORCH.MSELOSS", "torch.mse_loss"],
)
def test_torch_names_default_to_torch_mean(client: TestClient, name: str) -> None:
    r = client.post(
        f"/v1/losses/{name}", json={"y_true": [[0, 1], [1, 1]], "y_pred": [[1, 1], [0, 0]]}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["loss"] == "torch.nn.MSELoss" and out["reduction"] == "mean"
    assert out["value"] == 0.75 and out["count"] == 4 and out["shape"] == [2, 2]


def test_keras_names_still_default_to_sum_over_batch_size(client: TestClient) -> None:
    out = client.post("/v1/losses/mse", json={"y_true": [[0, 1]], "y_pred": [[1, 1]]}).json()
    assert out["reduction"] == "sum_over_batch_size" and out["value"] == 0.5


def test_cross_entropy_with_weight_and_ignore_index(client: TestClient) -> None:
    r = client.post(
        "/v1/losses/torch.nn.CrossEntropyLoss",
        json={
            "y_true": [0, 2],
            "y_pred": SCORES,
            "options": {"weight": [1.0, 2.0, 3.0], "ignore_index": 2},
            "reduction": "sum",
        },
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["count"] == 1 and out["per_sample"][1] == 0.0 and out["value"] == out["sum"]


def test_an_all_ignored_batch_is_null_and_non_finite(client: TestClient) -> None:
    out = client.post(
        "/v1/losses/torch.cross_entropy", json={"y_true": [-100, -100], "y_pred": SCORES}
    ).json()
    assert out["value"] is None and out["mean"] is None and out["count"] == 0
    assert out["non_finite"] == 1


def test_sample_weight_on_a_torch_loss_is_422_pointing_to_weight(client: TestClient) -> None:
    r = client.post(
        "/v1/losses/torch.nn.BCELoss",
        json={"y_true": [[0, 1]], "y_pred": [[0.5, 0.5]], "sample_weight": [2.0]},
    )
    body = assert_problem(r, 422, "/sample_weight")
    assert "options.weight" in body["detail"]


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "batchmean"])
def test_a_reduction_of_the_other_flavour_is_422(client: TestClient, reduction: str) -> None:
    r = client.post(
        "/v1/losses/torch.nn.L1Loss",
        json={"y_true": [[0, 1]], "y_pred": [[1, 1]], "reduction": reduction},
    )
    assert_problem(r, 422, "/reduction")


def test_batchmean_on_kl_div(client: TestClient) -> None:
    out = client.post(
        "/v1/losses/torch.nn.KLDivLoss",
        json={
            "y_true": [[0.5, 0.5], [0.25, 0.75]],
            "y_pred": [[-1.0, -1.0], [-2.0, -0.5]],
            "reduction": "batchmean",
        },
    ).json()
    assert out["reduction"] == "batchmean" and out["count"] == 2
    assert out["value"] == pytest.approx(out["sum"] / 2)


def test_catalogue_filters_by_flavour(client: TestClient) -> None:
    every = client.get("/v1/losses").json()["losses"]
    torch = client.get("/v1/losses", params={"flavour": "torch"}).json()["losses"]
    keras = client.get("/v1/losses", params={"flavour": "keras"}).json()["losses"]
    assert len(torch) == 15 and {e["flavour"] for e in torch} == {"torch"}
    assert {e["flavour"] for e in keras} == {"keras"}
    assert [e["name"] for e in every] == [e["name"] for e in keras + torch]
    assert client.get("/v1/losses", params={"flavour": "jax"}).status_code == 422
    one = client.get("/v1/losses/torch.kl_div").json()
    assert one["name"] == "torch.nn.KLDivLoss" and one["family"] == "torch"


def test_batch_mixes_flavours_each_with_its_default(client: TestClient) -> None:
    r = client.post(
        "/v1/batch",
        json={
            "items": [{"y_true": [[0, 1]], "y_pred": [[1, 1]], "loss": ["mse", "torch.nn.MSELoss"]}]
        },
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"][0]["results"]
    assert [x["reduction"] for x in results] == ["sum_over_batch_size", "mean"]


def test_stream_takes_options_on_each_line(client: TestClient) -> None:
    body = ndjson(
        {"y_true": [[0.0, 1.0]], "y_pred": [[1.0, 1.0]], "options": {"var": [[2.0, 2.0]]}},
        {"y_true": [[0.0, 0.0]], "y_pred": [[1.0, 1.0]], "options": {"var": [[0.5, 0.5]]}},
    )
    r = client.post(
        "/v1/losses/torch.nn.GaussianNLLLoss/stream",
        content=body,
        headers=NDJSON,
        params={"options": json.dumps({"eps": 1e-6})},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    want = [0.5 * (math.log(2) + 1 / 2), 0.5 * math.log(2), 2 * 0.5 * (math.log(0.5) + 2)]
    assert out["reduction"] == "mean" and out["count"] == 4
    assert out["sum"] == pytest.approx(sum(want), rel=1e-6)


def test_stream_of_ignored_targets_only_is_null(client: TestClient) -> None:
    body = ndjson({"y_true": [-100], "y_pred": [SCORES[0]]})
    out = client.post("/v1/losses/torch.nn.NLLLoss/stream", content=body, headers=NDJSON).json()
    assert out["value"] is None and out["non_finite"] == 1 and out["count"] == 0


def test_stream_bad_reduction_is_a_query_problem(client: TestClient) -> None:
    body = ndjson({"y_true": [[0.0]], "y_pred": [[1.0]]})
    r = client.post(
        "/v1/losses/torch.nn.MSELoss/stream",
        content=body,
        headers=NDJSON,
        params={"reduction": "sum_over_batch_size"},
    )
    assert_problem(r, 422)


def test_v2_infers_a_torch_loss_with_its_default(client: TestClient) -> None:
    meta = client.get("/v2/models/torch.nn.MSELoss").json()
    assert meta["name"] == "torch.nn.MSELoss"
    request = {
        "inputs": [
            {"name": "y_true", "shape": [1, 2], "datatype": "FP32", "data": [0, 1]},
            {"name": "y_pred", "shape": [1, 2], "datatype": "FP32", "data": [1, 1]},
        ]
    }
    r = client.post("/v2/models/torch.mse_loss/infer", json=request)
    assert r.status_code == 200, r.text
    assert r.json()["parameters"]["reduction"] == "mean"


# --- /v2: a torch loss's tensor options are inputs ----------------------------------------------


def v2_tensor(name: str, data: list[float], shape: list[int], datatype: str = "FP32") -> dict:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_v2_metadata_lists_tensor_options_as_inputs(client: TestClient) -> None:
    meta = client.get("/v2/models/torch.nn.GaussianNLLLoss").json()
    assert [t["name"] for t in meta["inputs"]] == ["y_true", "y_pred", "var"]
    assert "var" not in meta["parameters"] and "eps" in meta["parameters"]
    keras = client.get("/v2/models/mse").json()
    assert [t["name"] for t in keras["inputs"]] == ["y_true", "y_pred", "sample_weight"]


def test_v2_cross_entropy_with_a_weight_input(client: TestClient) -> None:
    request = {
        "inputs": [
            v2_tensor("y_true", [0, 2], [2], "INT64"),
            v2_tensor("y_pred", [v for row in SCORES for v in row], [2, 3]),
            v2_tensor("weight", [1.0, 2.0, 3.0], [3]),
        ]
    }
    r = client.post("/v2/models/torch.nn.CrossEntropyLoss/infer", json=request)
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o["data"] for o in r.json()["outputs"]}

    # Hand derivation: loss_i = weight[t_i] (logsumexp(x_i) - x_i[t_i]); mean divides by the
    # summed weights of the targets, 1 + 3.
    def nll(row: list[float], target: int) -> float:
        return math.log(sum(math.exp(v) for v in row)) - row[target]

    per_sample = [1.0 * nll(SCORES[0], 0), 3.0 * nll(SCORES[1], 2)]
    assert outputs["per_sample"] == pytest.approx(per_sample, rel=1e-6)
    assert outputs["count"] == [4.0]
    assert outputs["mean"] == pytest.approx([sum(per_sample) / 4], rel=1e-6)


def test_v2_gaussian_nll_with_a_binary_var_input(client: TestClient) -> None:
    import numpy as np

    var = np.array([0.5, 2.0], dtype=np.float32)
    header = {
        "inputs": [
            v2_tensor("y_true", [0.0, 1.0], [2, 1]),
            v2_tensor("y_pred", [1.0, 1.0], [2, 1]),
            {
                "name": "var",
                "shape": [2, 1],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 8},
            },
        ],
        "outputs": [{"name": "per_sample"}],
    }
    head = json.dumps(header).encode()
    r = client.post(
        "/v2/models/torch.gaussian_nll_loss/infer",
        content=head + var.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert r.status_code == 200, r.text
    # 0.5 (log v + (x - t)^2 / v): (log 0.5 + 1 / 0.5) / 2 and (log 2 + 0) / 2.
    expected = [0.5 * (math.log(0.5) + 2.0), 0.5 * math.log(2.0)]
    assert r.json()["outputs"][0]["data"] == pytest.approx(expected, rel=1e-6)


def test_v2_a_tensor_option_as_a_parameter_names_the_input(client: TestClient) -> None:
    request = {
        "inputs": [v2_tensor("y_true", [0.0], [1, 1]), v2_tensor("y_pred", [1.0], [1, 1])],
        "parameters": {"var": 2.0},
    }
    r = client.post("/v2/models/torch.nn.GaussianNLLLoss/infer", json=request)
    assert r.status_code == 400
    assert "send it as an input" in r.json()["error"]


def test_v2_sample_weight_is_not_an_input_of_a_torch_loss(client: TestClient) -> None:
    request = {
        "inputs": [
            v2_tensor("y_true", [0.0], [1, 1]),
            v2_tensor("y_pred", [1.0], [1, 1]),
            v2_tensor("sample_weight", [2.0], [1]),
        ]
    }
    r = client.post("/v2/models/torch.nn.MSELoss/infer", json=request)
    assert r.status_code == 400
    assert "inputs: y_true, y_pred" in r.json()["error"]
