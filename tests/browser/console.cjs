// The console in a real browser: Debian's chromium driven by playwright-core
// (which downloads nothing; the browser is the one at FLINKQ_CHROMIUM).
// Run by tests/tests/console_browser.rs, which starts Redis, the simulator,
// `flinkq serve` and (when this script asks) a real worker, then checks the
// store. One step per line on stdout; the Rust side answers on stdin.
//
// Input (environment):
//   FLINKQ_CONSOLE_URL   http://127.0.0.1:<port> of `flinkq serve`
//   FLINKQ_API_TOKEN     the full token (sign-in form and the API)
//   FLINKQ_BATCH         the batch to enqueue
//   FLINKQ_LOGINS        its loginIds, comma-separated
//   FLINKQ_FAILED_LOGIN  the one that fails with FLINKQ_FAILED_CODE
//   FLINKQ_FAILED_CODE   its FlinksCode
//   FLINKQ_SCREENSHOTS   directory for one PNG per page
//   FLINKQ_CHROMIUM      the browser (default /usr/bin/chromium)
"use strict";

const fs = require("fs");
const path = require("path");
const readline = require("readline");
const { chromium } = require("playwright-core");

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`console.cjs: ${name} is not set (tests/tests/console_browser.rs sets it)`);
  return value;
}

const base = env("FLINKQ_CONSOLE_URL");
const token = env("FLINKQ_API_TOKEN");
const batch = env("FLINKQ_BATCH");
const logins = env("FLINKQ_LOGINS").split(",");
const failed = env("FLINKQ_FAILED_LOGIN");
const failedCode = env("FLINKQ_FAILED_CODE");
const shots = env("FLINKQ_SCREENSHOTS");
const executablePath = process.env.FLINKQ_CHROMIUM || "/usr/bin/chromium";
// generous: a loaded 2-core machine; the Rust side bounds the whole run too
const WAIT = 45_000;

const stdin = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Tells the Rust side a step is done. */
function step(name) {
  process.stdout.write(`step ${name}\n`);
}

/** Waits for the Rust side's answer line. */
async function answer(expected) {
  const next = await stdin.next();
  if (next.done || next.value.trim() !== expected) {
    throw new Error(`expected ${JSON.stringify(expected)} on stdin, got ${JSON.stringify(next.value)}`);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shoot(page, name) {
  const file = path.join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  step(`screenshot ${file}`);
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({ executablePath, timeout: WAIT });
  try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    context.setDefaultTimeout(WAIT);
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // a CSP violation or a failed asset shows up here
    // (the browser's own favicon request is not the console's)
    page.on("console", (m) => {
      if (m.type() === "error" && !(m.location().url || "").endsWith("/favicon.ico")) errors.push(m.text());
    });

    // sign in through the form
    await page.goto(`${base}/`);
    check(new URL(page.url()).pathname === "/signin", `an anonymous visit lands on ${page.url()}, not /signin`);
    await shoot(page, "signin");
    await page.fill("#token", token);
    await Promise.all([page.waitForURL(`${base}/`), page.click("form.signin button[type=submit]")]);
    check((await page.textContent("h1")).includes("Overview"), "signed in, but the overview is not shown");
    step("signed-in");

    // enqueue the batch through the HTTP API
    const response = await fetch(`${base}/api/v1/batches/${encodeURIComponent(batch)}/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ logins }),
    });
    const enqueued = await response.json();
    check(response.status === 200 && enqueued.enqueued === logins.length,
      `enqueue answered ${response.status} ${JSON.stringify(enqueued)}`);
    step("enqueued");

    // the batch page, open before any worker runs: the bar starts at 0 and
    // can only reach 100 % through the live updates (SSE), never a reload
    await page.goto(`${base}/batches/${encodeURIComponent(batch)}`);
    const bar = page.locator("#progress");
    check(await bar.evaluate((b) => b.value) === 0, "the bar moved before any worker ran");
    step("batch-page-open");
    await answer("worker-started");
    await page.waitForFunction(
      (total) => {
        const b = document.getElementById("progress");
        return b && b.max === total && b.value === total;
      },
      logins.length,
      { timeout: WAIT },
    );
    await page.waitForFunction(() => document.getElementById("completed").textContent.startsWith("Completed"));
    check(await page.textContent("#count-failed") === "1", "the batch page does not count one failed job");
    await shoot(page, "batch");
    step("batch-at-100");
    // the Rust side stops the worker: the retried job then stays queued
    await answer("worker-stopped");

    // the overview, after the batch
    await page.click("header nav >> text=Overview");
    await page.waitForURL(`${base}/`);
    const product = page.locator("#by-product tbody tr", { has: page.locator("th", { hasText: /^investments$/ }) });
    check(await product.locator("td").last().textContent() === String(logins.length),
      `the overview does not count ${logins.length} investments jobs`);
    check(await page.textContent("#finished-hour") === String(logins.length),
      `the overview does not count ${logins.length} jobs finished in the last hour`);
    check(await page.locator("table#workers tbody tr").count() >= 1, "the overview lists no worker seen");
    await shoot(page, "overview");

    // the search box finds the failed login; its page shows the FlinksCode
    await page.fill("header input[name=q]", failed);
    await Promise.all([page.waitForURL(`${base}/logins/${failed}`), page.press("header input[name=q]", "Enter")]);
    const job = await page.textContent("main");
    check(job.includes(failedCode), `the login page does not show ${failedCode}`);
    check(job.includes("failed"), "the login page does not say the job failed");
    await shoot(page, "login");
    step("login-found");

    // dead letters: retry it by clicking, through the confirmation
    await page.click("header nav >> text=Dead letters");
    await page.waitForURL(`${base}/dead`);
    const row = page.locator("tr", { has: page.locator(`a[href="/logins/${failed}"]`) });
    check(await row.count() === 1, "the failed login is not listed once among the dead letters");
    check((await row.textContent()).includes(failedCode), `its dead-letter row does not show ${failedCode}`);
    await shoot(page, "dead");
    await Promise.all([page.waitForURL(`${base}/dead/action`), row.locator("button", { hasText: "Retry" }).click()]);
    check((await page.textContent("main")).includes(failed), "the confirmation does not name the login");
    await shoot(page, "dead-confirm");
    await Promise.all([page.waitForURL(/\/dead\?/), page.click("button[name=confirm]")]);
    const done = await page.textContent("p.done");
    check(done.includes("1 requeued"), `the dead page says ${JSON.stringify(done)}, not 1 requeued`);
    await shoot(page, "dead-retried");
    step("retried");

    check(errors.length === 0, `the pages logged errors: ${errors.join(" | ")}`);

    // with JavaScript off, the forms still work: sign in, search, read the login's page
    const plain = await browser.newContext({ javaScriptEnabled: false });
    plain.setDefaultTimeout(WAIT);
    const nojs = await plain.newPage();
    await nojs.goto(`${base}/signin`);
    await nojs.fill("#token", token);
    await Promise.all([nojs.waitForURL(`${base}/`), nojs.click("form.signin button[type=submit]")]);
    await nojs.fill("header input[name=q]", failed);
    await Promise.all([nojs.waitForURL(`${base}/logins/${failed}`), nojs.click("header form.search button")]);
    check((await nojs.textContent("main")).includes(failedCode), "with JavaScript off, the login page does not show its FlinksCode");
    await nojs.goto(`${base}/batches/${encodeURIComponent(batch)}`);
    // (the retried job reopened the batch: one of its jobs runs again)
    check(await nojs.textContent("#total") === String(logins.length) && await nojs.textContent("#done") === String(logins.length - 1),
      "with JavaScript off, the batch page does not render its counts");
    step("works-without-javascript");
  } finally {
    await browser.close();
  }
}

main().then(
  () => {
    step("done");
    process.exit(0);
  },
  (error) => {
    process.stderr.write(`console.cjs: ${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  },
);
