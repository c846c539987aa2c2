// A lossd client in plain Node 20 (global fetch, no packages): node client.mjs <base-url>
// Asserts as it goes; exits 1 with a message on the first failure, else prints a JSON summary.
import assert from "node:assert/strict";

const base = (process.argv[2] ?? "").replace(/\/$/, "");
if (!base.startsWith("http")) {
  console.error("usage: node client.mjs <base-url>");
  process.exit(2);
}

// The seed document's example; Keras prints [0.6666667 0.33333334] for its MSE.
const SEED = { y_true: [[0, 1, 1], [0, 0, 1]], y_pred: [[1, 1, 0], [1, 0, 1]] };
const SEED_MSE = [0.6666667, 0.33333334];
const close = (a, b, rel = 1e-6) => Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));

async function call(method, path, body) {
  const init = { method, headers: {}, signal: AbortSignal.timeout(30_000) };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(base + path, init);
  const contentType = response.headers.get("content-type") ?? "";
  const json = await response.json();
  assert.ok(response.status < 500, `${method} ${path}: server error ${response.status}`);
  return { status: response.status, contentType, json };
}

async function main() {
  const summary = {};

  // the catalogue, and one entry under an alias
  const catalogue = await call("GET", "/v1/losses");
  assert.equal(catalogue.status, 200);
  assert.ok(catalogue.contentType.startsWith("application/json"), catalogue.contentType);
  const names = catalogue.json.losses.map((entry) => entry.name);
  assert.equal(names.length, 34); // 19 Keras losses, 15 torch
  assert.ok(names.includes("mean_squared_error"));
  const entry = await call("GET", "/v1/losses/MSE");
  assert.equal(entry.status, 200);
  assert.equal(entry.json.name, "mean_squared_error");
  summary.catalogue = { count: names.length, mse: entry.json.name };

  // the seed example
  const seed = await call("POST", "/v1/losses/mse", SEED);
  assert.equal(seed.status, 200, JSON.stringify(seed.json));
  assert.deepEqual(seed.json.per_sample, SEED_MSE);
  assert.deepEqual(seed.json.shape, [2]);
  assert.equal(seed.json.count, 2);
  assert.ok(close(seed.json.mean, 0.5) && close(seed.json.sum, 1.0), JSON.stringify(seed.json));
  summary.seed = { loss: seed.json.loss, per_sample: seed.json.per_sample, mean: seed.json.mean };

  // a batch: the seed under two losses, and an item that fails alone
  const batch = await call("POST", "/v1/batch", {
    items: [
      { id: "seed", loss: ["mse", { name: "huber", options: { delta: 2.0 } }], ...SEED },
      { id: "bad", loss: "no_such_loss", y_true: [[0]], y_pred: [[1]] },
    ],
  });
  assert.equal(batch.status, 200, JSON.stringify(batch.json));
  const [ok, bad] = batch.json.results;
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.results[0].per_sample, SEED_MSE);
  // huber, delta 2, every |error| <= 1: 0.5 e^2 averaged over 3 values -> 1/3 and 1/6
  ok.results[1].per_sample.forEach((v, i) => assert.ok(close(v, [1 / 3, 1 / 6][i]), String(v)));
  assert.equal(bad.status, 404);
  assert.equal(bad.error.status, 404);
  summary.batch = batch.json.results.map((r) => [r.id, r.status]);

  // an error: ragged y_pred is a 422 problem located at /y_pred/1
  const ragged = await call("POST", "/v1/losses/mse", {
    y_true: [[0, 1], [1, 0]],
    y_pred: [[1, 1], [0, 1, 1]],
  });
  assert.equal(ragged.status, 422);
  assert.ok(ragged.contentType.startsWith("application/problem+json"), ragged.contentType);
  for (const key of ["type", "title", "status", "detail", "errors"]) {
    assert.ok(key in ragged.json, `problem lacks ${key}`);
  }
  assert.ok(ragged.json.errors.some((e) => e.pointer === "/y_pred/1"), JSON.stringify(ragged.json));
  summary.error = { status: ragged.status, type: ragged.json.type };

  console.log(JSON.stringify(summary));
}

main().catch((error) => {
  console.error(`lossd node client failed: ${error?.stack ?? error}`);
  process.exit(1);
});
