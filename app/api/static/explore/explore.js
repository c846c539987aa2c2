// The /explore page: vanilla JS over the public API, nothing from outside the server.
//   GET /v1/losses                      the picker and the option fields
//   GET /v1/losses/{name}/curve.svg     the curve (fetched, so an API key can be sent and a
//                                       problem's detail shown; drawn from a blob URL)
//   POST /v1/losses/{name}              the evaluation of the two text areas
"use strict";

const $ = (id) => document.getElementById(id);
const state = { losses: [], curveUrl: null, timer: null, examples: new Set() };

// A small example per kind of loss: class rows for the categorical losses, class indices for
// the sparse one, two samples of two values for the others (MSE: per-sample 0.5 and 0.125).
const EXAMPLES = {
  default: ["[[0, 1], [1, 1]]", "[[1, 1], [0.5, 1]]"],
  categorical: ["[[0, 1, 0], [1, 0, 0]]", "[[0.1, 0.8, 0.1], [0.6, 0.3, 0.1]]"],
  sparse: ["[1, 0]", "[[0.1, 0.8, 0.1], [0.6, 0.3, 0.1]]"],
};
const CATEGORICAL = new Set([
  "categorical_crossentropy",
  "categorical_focal_crossentropy",
  "categorical_hinge",
  "kl_divergence",
]);

function headers(extra = {}) {
  const key = $("api-key").value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function problemDetail(response) {
  try {
    const body = await response.json();
    return body.detail || body.error || `${response.status} ${response.statusText}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function show(id, text) {
  const el = $(id);
  el.textContent = text || "";
  el.hidden = !text;
}

function selected() {
  return state.losses.find((l) => l.name === $("loss").value);
}

function optionField(option) {
  const wrap = document.createElement("label");
  wrap.title = option.doc;
  let input;
  if (option.type === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(option.default);
    wrap.append(input, option.name);
  } else {
    input = document.createElement("input");
    if (option.type === "axes" || option.type === "tensor") {
      input.type = "text";
      input.placeholder =
        option.type === "axes" ? "null, an integer or a list" : "null, a number or a list";
      input.value = JSON.stringify(option.default);
    } else {
      input.type = "number";
      input.step = option.type === "number" ? "any" : "1";
      if (option.minimum !== null && option.minimum !== undefined) input.min = option.minimum;
      if (option.maximum !== null && option.maximum !== undefined) input.max = option.maximum;
      input.value = option.default === null ? "" : String(option.default);
      if (option.default === null) input.placeholder = "null";
    }
    wrap.append(`${option.name} `, input);
  }
  input.dataset.option = option.name;
  input.dataset.type = option.type;
  input.addEventListener(option.type === "boolean" ? "change" : "input", refreshSoon);
  const hint = document.createElement("span");
  hint.className = "hint";
  hint.textContent = ` ${option.doc}`;
  wrap.append(hint);
  return wrap;
}

// The options that differ from their defaults, as the API takes them; an unreadable field is
// sent as typed, so that the server's problem says what is wrong with it.
function options() {
  const loss = selected();
  const chosen = {};
  for (const input of $("option-fields").querySelectorAll("input[data-option]")) {
    const spec = loss.options.find((o) => o.name === input.dataset.option);
    let value;
    if (spec.type === "boolean") value = input.checked;
    else if (spec.type === "axes" || spec.type === "tensor") {
      try {
        value = JSON.parse(input.value || "null");
      } catch {
        value = input.value;
      }
    } else if (input.value === "") value = null;
    else value = Number(input.value);
    if (JSON.stringify(value) !== JSON.stringify(spec.default)) chosen[spec.name] = value;
  }
  return chosen;
}

function curveQuery() {
  const query = new URLSearchParams();
  const chosen = options();
  if (Object.keys(chosen).length) query.set("options", JSON.stringify(chosen));
  for (const id of ["min", "max"]) if ($(id).value !== "") query.set(id, $(id).value);
  if ($("points").value !== "" && $("points").value !== "200") query.set("points", $("points").value);
  const text = query.toString();
  return text ? `?${text}` : "";
}

async function drawCurve() {
  const loss = selected();
  const url = `/v1/losses/${encodeURIComponent(loss.name)}/curve.svg${curveQuery()}`;
  $("curve-link").href = url;
  const response = await fetch(url, { headers: headers() });
  if (!response.ok) {
    show("curve-error", await problemDetail(response));
    return;
  }
  show("curve-error", "");
  const blobUrl = URL.createObjectURL(await response.blob());
  const img = $("curve");
  img.onload = () => {
    img.dataset.drawn = url; // what the picture shows (read by the browser test)
    if (state.curveUrl) URL.revokeObjectURL(state.curveUrl);
    state.curveUrl = blobUrl;
  };
  img.src = blobUrl;
}

async function evaluate() {
  const loss = selected();
  let body;
  try {
    body = { y_true: JSON.parse($("y-true").value), y_pred: JSON.parse($("y-pred").value) };
  } catch (error) {
    show("eval-error", `y_true and y_pred must be JSON arrays: ${error.message}`);
    $("result").hidden = true;
    return;
  }
  const chosen = options();
  if (Object.keys(chosen).length) body.options = chosen;
  const response = await fetch(`/v1/losses/${encodeURIComponent(loss.name)}`, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    show("eval-error", await problemDetail(response));
    $("result").hidden = true;
    return;
  }
  const result = await response.json();
  show("eval-error", "");
  $("per-sample").textContent = `[${result.per_sample.map(String).join(", ")}]`;
  $("shape").textContent = JSON.stringify(result.shape);
  $("mean").textContent = String(result.mean);
  $("sum-count").textContent = `${result.sum} / ${result.count}`;
  $("result").hidden = false;
  $("result").dataset.loss = result.loss;
}

function refresh() {
  drawCurve();
  evaluate();
}

function refreshSoon() {
  clearTimeout(state.timer);
  state.timer = setTimeout(refresh, 150);
}

// PyTorch's losses of class indices (scores with the classes on axis 1).
const TORCH_INDICES = new Set([
  "torch.nn.CrossEntropyLoss",
  "torch.nn.NLLLoss",
  "torch.nn.MultiMarginLoss",
]);

function example(loss) {
  if (loss.sparse_labels || TORCH_INDICES.has(loss.name)) return EXAMPLES.sparse;
  return CATEGORICAL.has(loss.name) ? EXAMPLES.categorical : EXAMPLES.default;
}

// Fill in the loss's example; ``always`` false keeps a pair the user typed.
function fillExample(always) {
  const [yTrue, yPred] = example(selected());
  const untouched = ["y-true", "y-pred"].every(
    (id) => $(id).value === "" || state.examples.has($(id).value),
  );
  if (always || untouched) {
    $("y-true").value = yTrue;
    $("y-pred").value = yPred;
  }
  for (const text of [yTrue, yPred]) state.examples.add(text);
}

// A new loss: its fields, its words, and its example unless the text areas were edited.
function pickLoss() {
  const loss = selected();
  $("formula").textContent = loss.formula;
  $("doc").textContent = loss.doc;
  const fields = $("option-fields");
  fields.replaceChildren(...loss.options.map(optionField));
  if (!loss.options.length) fields.textContent = "none";
  fillExample(false);
  refresh();
}

async function start() {
  const response = await fetch("/v1/losses", { headers: headers() });
  if (!response.ok) {
    show("curve-error", await problemDetail(response));
    return;
  }
  state.losses = (await response.json()).losses;
  const select = $("loss");
  for (const loss of state.losses) {
    const option = document.createElement("option");
    option.value = loss.name;
    option.textContent = loss.aliases.length ? `${loss.name} (${loss.aliases.join(", ")})` : loss.name;
    select.append(option);
  }
  select.addEventListener("change", pickLoss);
  for (const id of ["min", "max", "points"]) $(id).addEventListener("input", refreshSoon);
  $("run").addEventListener("click", evaluate);
  $("example").addEventListener("click", () => {
    fillExample(true);
    evaluate();
  });
  $("api-key").addEventListener("change", refresh);
  pickLoss();
}

start();
