// The SDK scenario in TypeScript: tests/sdk/test_typescript_sdk.py compiles this file with the
// typescript-fetch client generated from openapi/openapi.json (copied next to it as ./client)
// and runs it against a live lossd:
//
//   node scenario.js BASE_URL [TOKEN]
//
// It prints one JSON object, every response written back in the wire format by the SDK's own
// *ToJSON functions (so a field the SDK dropped is missing there); the Python test checks the
// numbers. With a TOKEN it authenticates through Configuration.accessToken and also makes one call
// without it. Exits 1 on anything unexpected.
import {
  BatchApi,
  BatchResponseToJSON,
  Configuration,
  EvaluateResponseToJSON,
  InferenceApi,
  InferenceResponseToJSON,
  LossCatalogueToJSON,
  LossInfoToJSON,
  LossesApi,
  ProblemFromJSON,
  ProblemToJSON,
  Reduction,
  ResponseError,
  StreamResponseToJSON,
} from "./client";

// The seed document's worked example (mean squared error on two samples of three values).
const SEED_TRUE = [
  [0, 1, 1],
  [0, 0, 1],
];
const SEED_PRED = [
  [1, 1, 0],
  [1, 0, 1],
];

/** The status, content type and problem+json body of a call that must fail. */
async function failure(call: () => Promise<unknown>): Promise<object> {
  try {
    await call();
  } catch (error) {
    if (!(error instanceof ResponseError)) throw error;
    const response = error.response;
    return {
      status: response.status,
      content_type: response.headers.get("content-type"),
      problem: ProblemToJSON(ProblemFromJSON(await response.json())),
    };
  }
  throw new Error("the call succeeded; it should have failed");
}

async function main(): Promise<void> {
  const [basePath, token] = process.argv.slice(2);
  if (!basePath) throw new Error("usage: node scenario.js BASE_URL [TOKEN]");
  const config = new Configuration({ basePath, accessToken: token });
  const losses = new LossesApi(config);
  const batch = new BatchApi(config);
  const inference = new InferenceApi(config);

  const catalogue = await losses.listLosses();
  const mse = await losses.getLoss({ name: "MSE" });
  const weighted = await losses.evaluateLoss({
    name: "huber",
    evaluateRequest: {
      yTrue: [
        [0, 0],
        [0, 0],
      ],
      yPred: [
        [1, 0],
        [0.25, 0],
      ],
      sampleWeight: [2, 1],
      options: { delta: 0.5 },
      reduction: Reduction.Sum,
    },
  });
  const seed = await losses.evaluateLoss({
    name: "mse",
    evaluateRequest: { yTrue: SEED_TRUE, yPred: SEED_PRED },
  });
  const derivatives = await losses.evaluateLoss({
    name: "mse",
    evaluateRequest: { yTrue: SEED_TRUE, yPred: SEED_PRED, gradient: true, hessianDiagonal: true },
  });
  // A torch loss: its own default reduction (torch's mean) and a tensor option.
  const torch = await losses.evaluateLoss({
    name: "torch.nn.CrossEntropyLoss",
    evaluateRequest: {
      yTrue: [0, 2],
      yPred: [
        [2.0, 0.5, -1.0],
        [0.1, 0.2, 3.0],
      ],
      options: { weight: [1, 2, 3] },
    },
  });
  const batched = await batch.evaluateBatch({
    batchRequest: {
      items: [
        {
          id: "seed",
          loss: ["mse", { name: "huber", options: { delta: 0.5 } }],
          yTrue: SEED_TRUE,
          yPred: SEED_PRED,
        },
        { id: "bad", loss: "no_such_loss", yTrue: [[0]], yPred: [[1]] },
      ],
    },
  });
  const inferred = await inference.modelInfer({
    name: "mse",
    inferenceRequest: {
      id: "seed-002",
      inputs: [
        { name: "y_true", shape: [2, 3], datatype: "FP32", data: SEED_TRUE },
        { name: "y_pred", shape: [2, 3], datatype: "FP32", data: SEED_PRED.flat() },
      ],
      outputs: [{ name: "per_sample" }, { name: "mean" }],
    },
  });
  // evaluateStream sends its one StreamLine argument as the body; NDJSON text (any number of
  // lines) goes in through the init overrides instead.
  const ndjson = SEED_TRUE.map((row, i) =>
    JSON.stringify({ y_true: [row], y_pred: [SEED_PRED[i]] }),
  ).join("\n");
  const streamed = await losses.evaluateStream(
    { name: "mse", streamLine: { yTrue: [], yPred: [] }, perSample: true },
    { body: ndjson + "\n" },
  );
  const invalid = await failure(() =>
    losses.evaluateLoss({
      name: "mse",
      evaluateRequest: {
        yTrue: [
          [0, 1],
          [1, 0],
        ],
        yPred: [
          [1, 1],
          [0, 1, 1],
        ],
      },
    }),
  );
  const unauthorized = token
    ? await failure(() => new LossesApi(new Configuration({ basePath })).listLosses())
    : null;

  console.log(
    JSON.stringify({
      catalogue: LossCatalogueToJSON(catalogue),
      mse: LossInfoToJSON(mse),
      weighted: EvaluateResponseToJSON(weighted),
      seed: EvaluateResponseToJSON(seed),
      derivatives: EvaluateResponseToJSON(derivatives),
      torch: EvaluateResponseToJSON(torch),
      batch: BatchResponseToJSON(batched),
      inference: InferenceResponseToJSON(inferred),
      stream: StreamResponseToJSON(streamed),
      invalid,
      unauthorized,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
