// /explore in a real browser: Debian's chromium driven by playwright-core (as docs.mjs).
//
//   node explore.mjs BASE_URL SCREENSHOT_PATH USER_DATA_DIR NODE_PACKAGES_DIR
//
// Every request that leaves BASE_URL is refused and recorded, so the page must work offline. The
// script opens /explore, waits for the first curve and evaluation, lists the losses offered,
// types a small pair and evaluates it, types a bad one (the problem's detail must be shown),
// changes an option (the curve must be redrawn with it), then picks categorical_crossentropy,
// fills in its example and saves a screenshot. It prints one JSON object (tests/e2e/test_explore_browser.py checks
// it). Exits 1 on anything unexpected.
import { createRequire } from "node:module";
import path from "node:path";

const TIMEOUT_MS = 30_000;
const [base, screenshot, userDataDir, packages] = process.argv.slice(2);
if (!base || !screenshot || !userDataDir || !packages) {
  console.error("usage: node explore.mjs BASE_URL SCREENSHOT_PATH USER_DATA_DIR NODE_PACKAGES_DIR");
  process.exit(2);
}
const { chromium } = createRequire(path.resolve(packages, "package.json"))("playwright-core");

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1100, height: 900 },
});

// The curve as drawn: the URL it was fetched from, and the image's natural size once loaded.
const curveState = (page) =>
  page.locator("#curve").evaluate((img) => ({
    drawn: img.dataset.drawn ?? null,
    complete: img.complete,
    natural_width: img.naturalWidth,
    natural_height: img.naturalHeight,
  }));

// Wait until the picture shows a URL satisfying ``test`` and is loaded.
async function curveDrawn(page, test) {
  await page.waitForFunction(
    (source) => {
      const img = document.getElementById("curve");
      const drawn = img.dataset.drawn;
      // eslint-disable-next-line no-new-func
      return drawn && new Function("url", `return ${source}`)(drawn) && img.complete
        && img.naturalWidth > 0;
    },
    test,
  );
  return curveState(page);
}

const resultText = async (page) => ({
  per_sample: await page.locator("#per-sample").innerText(),
  mean: await page.locator("#mean").innerText(),
  loss: await page.locator("#result").getAttribute("data-loss"),
});

try {
  const offsite = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(base) || url.startsWith("blob:")) return route.continue();
    offsite.push(url);
    return route.abort();
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(TIMEOUT_MS);
  const consoleErrors = [];
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  const refused = [];
  page.on("response", (answer) => {
    if (answer.status() >= 400) {
      refused.push(`${answer.request().method()} ${answer.url().slice(base.length)} ${answer.status()}`);
    }
  });

  const response = await page.goto(`${base}/explore`, { waitUntil: "load" });
  const title = await page.title();
  const first = await curveDrawn(page, "url.includes('/mean_squared_error/curve.svg')");
  await page.locator("#result:not([hidden])").waitFor();
  const offered = await page
    .locator("#loss option")
    .evaluateAll((options) => options.map((option) => option.value));
  const optionFieldsMse = await page.locator("#option-fields").innerText();
  const example = {
    y_true: await page.locator("#y-true").inputValue(),
    y_pred: await page.locator("#y-pred").inputValue(),
    ...(await resultText(page)),
  };

  // A pair typed by hand.
  await page.locator("#y-true").fill("[[0, 1]]");
  await page.locator("#y-pred").fill("[[1, 1]]");
  await page.locator("#run").click();
  await page.waitForFunction(() => document.getElementById("per-sample").textContent === "[0.5]");
  const typed = await resultText(page);

  // A pair the server refuses: its problem's detail is shown.
  await page.locator("#y-pred").fill("[[1, 1, 1]]");
  await page.locator("#run").click();
  await page.locator("#eval-error:not([hidden])").waitFor();
  const evalError = await page.locator("#eval-error").innerText();
  const resultHiddenOnError = await page.locator("#result").isHidden();
  await page.locator("#y-pred").fill("[[1, 1]]"); // back to a good pair before moving on
  await page.locator("#run").click();
  await page.locator("#eval-error").waitFor({ state: "hidden" });

  // Another loss, then one of its options: the curve is redrawn with it.
  await page.locator("#loss").selectOption("huber");
  const huber = await curveDrawn(page, "url.includes('/huber/curve.svg') && !url.includes('options')");
  const deltaField = page.locator('input[data-option="delta"]');
  const deltaDefault = await deltaField.inputValue();
  await deltaField.fill("0.25");
  const huberDelta = await curveDrawn(page, "url.includes('/huber/curve.svg?options=')");
  await page.locator("#loss").selectOption("binary_crossentropy");
  await curveDrawn(page, "url.includes('/binary_crossentropy/curve.svg') && !url.includes('options')");
  await page.locator('input[data-option="from_logits"]').check();
  const logits = await curveDrawn(page, "url.includes('from_logits')");

  // The picture for the README: a vector loss, its example evaluated.
  await page.locator("#loss").selectOption("categorical_crossentropy");
  await curveDrawn(page, "url.includes('/categorical_crossentropy/curve.svg')");
  await page.locator("#example").click(); // the pair typed above does not fit 3 classes
  await page.waitForFunction(
    () => document.getElementById("result").dataset.loss === "categorical_crossentropy",
  );
  const categorical = {
    y_true: await page.locator("#y-true").inputValue(),
    y_pred: await page.locator("#y-pred").inputValue(),
    ...(await resultText(page)),
  };
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: screenshot, fullPage: true });

  console.log(
    JSON.stringify({
      http_status: response?.status() ?? null,
      title,
      first,
      offered,
      option_fields_mse: optionFieldsMse,
      example,
      typed,
      eval_error: evalError,
      result_hidden_on_error: resultHiddenOnError,
      huber,
      delta_default: deltaDefault,
      huber_delta: huberDelta,
      logits,
      categorical,
      offsite,
      console_errors: consoleErrors,
      refused,
    }),
  );
} finally {
  await context.close();
}
