// First run in Chromium: a server with an empty data directory shows its
// setup page to whoever opens it; the one-time token from the console is
// needed (a wrong one is refused and changes nothing), and the owner lands
// signed in. Afterwards the page offers sign-in, never setup again.
//
//   CONCLAVE_BIN=target/debug/conclave node e2e/setup.test.mjs
//
// Screenshots go to web/test-results/setup/. Prints one `test result:` line.

import assert from "node:assert/strict";
import { PASSWORD, TIMEOUT, launchBrowser, screenshots, startServer, runScenario } from "./harness.mjs";

const { shot } = screenshots("setup");

async function main() {
  const browser = await launchBrowser();
  const server = await startServer([], { bootstrap: false });
  await runScenario(async () => {
    const token = server.printed().match(/\b(setup_[A-Za-z0-9_-]+)/)?.[1];
    assert.ok(token, `the console shows a setup token:\n${server.printed()}`);
    assert.match(server.printed(), new RegExp(`Open ${server.url.replace(/[.]/g, "\\.")} to create the first one`));

    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    await page.goto(server.url);
    await page.getByRole("heading", { name: "Set up Conclave" }).waitFor({ timeout: TIMEOUT });
    assert.equal(await page.getByRole("button", { name: "Sign in" }).count(), 0, "no sign-in before setup");
    await shot(page, "setup-page");

    const fill = async (setupToken) => {
      await page.getByLabel("Setup token").fill(setupToken);
      await page.getByLabel("Organisation name").fill("Example Ltd");
      await page.getByLabel("Your name").fill("Olive Owner");
      await page.getByLabel("Email").fill("olive@example.org");
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Create organisation" }).click();
    };

    // A stranger who reached the port first, without the console, gets nowhere.
    await fill("setup_" + "x".repeat(43));
    await page.getByRole("alert").filter({ hasText: "setup token is wrong" }).waitFor({ timeout: TIMEOUT });
    await shot(page, "wrong-token-refused");
    const still = await (await fetch(`${server.url}/api/v1/setup`)).json();
    assert.equal(still.setup_required, true, "a refused attempt creates nothing");

    // A weak password is refused with its reason, and the token still works after.
    await page.getByLabel("Setup token").fill(token);
    await page.getByLabel("Password").fill("password1234");
    await page.getByRole("button", { name: "Create organisation" }).click();
    await page.getByRole("alert").filter({ hasText: "password" }).waitFor({ timeout: TIMEOUT });

    await fill(token);
    // Offered to connect the identity provider, the owner does.
    await page.getByRole("heading", { name: "Your organisation is ready" }).waitFor({ timeout: TIMEOUT });
    await shot(page, "offered-an-identity-provider");
    await page.getByRole("button", { name: "Connect an identity provider" }).click();
    await page.getByRole("navigation", { name: "Main" }).waitFor({ timeout: TIMEOUT });
    await page.getByText("Olive Owner").first().waitFor({ timeout: TIMEOUT });
    assert.ok(await page.getByRole("link", { name: "Organisation" }).isVisible(), "the owner administers the organisation");
    await shot(page, "owner-signed-in");

    // On the Organisation page, the identity provider's SCIM token, shown
    // once, provisions through the API; and a source is watched for
    // meetings posted in public.
    const idp = page.getByRole("region", { name: "Identity provider" });
    await idp.getByRole("button", { name: "Make a token" }).click();
    const scimToken = (await idp.locator("code.invite-url").textContent()).trim();
    assert.match(scimToken, /^scim_/);
    const provisioned = await fetch(`${server.url}/scim/v2/Users`, {
      method: "POST",
      headers: { "content-type": "application/scim+json", authorization: `Bearer ${scimToken}` },
      body: JSON.stringify({ userName: "new.hire@example.org", displayName: "New Hire" }),
    });
    assert.equal(provisioned.status, 201, "the token provisions people");
    const watched = page.getByRole("region", { name: "Meetings at risk" });
    await watched.getByLabel("Source URL").fill("https://social.example/api/v1/timelines/tag/meetings");
    await watched.getByRole("button", { name: "Watch" }).click();
    await watched.getByText("social.example/api/v1/timelines/tag/meetings").waitFor({ timeout: TIMEOUT });
    await shot(page, "identity-provider-and-watched-sources");

    // Setup is over: the token is spent and a new visitor sees sign-in.
    const done = await (await fetch(`${server.url}/api/v1/setup`)).json();
    assert.equal(done.setup_required, false);
    const again = await fetch(`${server.url}/api/v1/setup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ setup_token: token, org_name: "Other", email: "x@example.org", password: PASSWORD, display_name: "X" }),
    });
    assert.equal(again.status, 403, "the token works once");
    const visitor = await (await browser.newContext()).newPage();
    await visitor.goto(server.url);
    await visitor.getByRole("button", { name: "Sign in" }).waitFor({ timeout: TIMEOUT });
    // A forgotten password is asked for from the sign-in page; this server
    // sends no email, and says so rather than pretending.
    await visitor.getByLabel("Email").fill("olive@example.org");
    await visitor.getByRole("button", { name: "Forgot your password?" }).click();
    await visitor.getByRole("alert").filter({ hasText: "sends no email" }).waitFor({ timeout: TIMEOUT });
    assert.equal(await visitor.getByRole("heading", { name: "Set up Conclave" }).count(), 0);
    await shot(visitor, "visitor-sees-sign-in");
  }, async () => {
    await browser.close();
    server.stop();
  });
}

await main();
