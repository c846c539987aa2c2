// /docs in a real browser: Debian's chromium driven by playwright-core (which downloads nothing).
//
//   node docs.mjs BASE_URL SCREENSHOT_PATH USER_DATA_DIR NODE_PACKAGES_DIR
//
// NODE_PACKAGES_DIR holds the `npm ci` of this folder's package.json (the test keeps it under
// build/, not here).
//
// Every request that leaves BASE_URL is refused and recorded, so the page must work offline. The
// script opens /docs, lists the operations Swagger UI renders, runs "Try it out" -> Execute on
// POST /v1/losses/{name} with the example body, saves a screenshot, then opens /redoc and lists
// the operations ReDoc renders, and prints one JSON object
// (tests/e2e/test_docs_browser.py checks it). Exits 1 on anything unexpected.
import { createRequire } from "node:module";
import path from "node:path";

const TIMEOUT_MS = 30_000;
const [base, screenshot, userDataDir, packages] = process.argv.slice(2);
if (!base || !screenshot || !userDataDir || !packages) {
  console.error("usage: node docs.mjs BASE_URL SCREENSHOT_PATH USER_DATA_DIR NODE_PACKAGES_DIR");
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
  viewport: { width: 1280, height: 1600 },
});
try {
  const offsite = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(base)) return route.continue();
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

  const response = await page.goto(`${base}/docs`, { waitUntil: "load" });
  await page.locator(".opblock").first().waitFor();
  const title = await page.locator(".info .title").first().innerText();
  // Swagger UI gives each operation the element id operations-<tag>-<operationId>.
  const operations = await page
    .locator(".opblock")
    .evaluateAll((blocks) => blocks.map((block) => block.id));

  const evaluate = page.locator("#operations-losses-evaluateLoss");
  await evaluate.locator(".opblock-summary").click();
  await evaluate.locator("button.try-out__btn").click();
  const exampleBody = await evaluate.locator("textarea.body-param__text").inputValue();
  await evaluate.locator('tr[data-param-name="name"] input').fill("mse");
  await evaluate.locator("button.execute").click();
  const live = evaluate.locator(".live-responses-table .response");
  await live.first().waitFor();
  const status = (await live.first().locator(".response-col_status").innerText()).trim();
  const body = await live.first().locator(".response-col_description pre").first().innerText();

  // The viewport around the server's response (the whole page is ~9000 px tall).
  await live.first().evaluate((row) => row.scrollIntoView({ block: "center" }));
  await page.screenshot({ path: screenshot });

  // ReDoc at /redoc, offline too: its title and the operations it rendered.
  const redocResponse = await page.goto(`${base}/redoc`, { waitUntil: "load" });
  await page.locator('[data-section-id*="operation/"]').first().waitFor();
  const redocTitle = await page.locator("h1").first().innerText();
  const redocOperations = await page
    .locator('[data-section-id*="operation/"]')
    .evaluateAll((sections) => sections.map((section) => section.dataset.sectionId));
  console.log(
    JSON.stringify({
      http_status: response?.status() ?? null,
      title,
      operations,
      example_body: exampleBody,
      status,
      body,
      redoc_http_status: redocResponse?.status() ?? null,
      redoc_title: redocTitle,
      redoc_operations: redocOperations,
      offsite,
      console_errors: consoleErrors,
    }),
  );
} finally {
  await context.close();
}
