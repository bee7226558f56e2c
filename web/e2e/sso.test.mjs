// Signing in through the organisation's OpenID provider, in Chromium,
// against a real provider on loopback (npm's `oidc-provider`, the API
// tests' crates/conclave-server/tests/oidc/provider.mjs, which logs in the
// account its login_hint names without a page of its own). The owner
// connects it on the Organisation page under a short name, which makes
// the redirect URI (shown before connecting, so the provider can be told
// first);
// Grace, whom only the provider knows, types her address, clicks its
// button and lands signed in (her account made at that first sign-in); Ada,
// a member with a password, is refused it and sent to the provider once
// the organisation signs members in only through it; Eve, whose address is in another
// domain, is told why not and stays out.
//
//   CONCLAVE_BIN=target/debug/conclave node e2e/sso.test.mjs
//
// Screenshots go to web/test-results/sso/. Prints one `test result:` line.

import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PASSWORD, TIMEOUT, launchBrowser, poll, screenshots, startServer, runScenario } from "./harness.mjs";

const { shot } = screenshots("sso");
const PROVIDER_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "crates", "conclave-server", "tests", "oidc");

/// The provider, a Node process that exits when its stdin closes (so it
/// cannot outlive this test); resolves once it says where it is.
async function startProvider() {
  if (!existsSync(join(PROVIDER_DIR, "node_modules", "oidc-provider"))) {
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent"], { cwd: PROVIDER_DIR, stdio: "inherit" });
  }
  const child = spawn("node", ["provider.mjs"], { cwd: PROVIDER_DIR, stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  const { issuer } = await new Promise((resolve, reject) => {
    lines.once("line", (line) => resolve(JSON.parse(line)));
    child.once("exit", (code) => reject(new Error(`the OpenID provider exited with ${code}`)));
  });
  const control = async (path, body) => {
    const response = await fetch(`${issuer}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    assert.ok(response.ok, `${path}: ${response.status} ${await response.clone().text()}`);
    return response.status === 204 ? null : response.json();
  };
  return {
    issuer,
    /// Someone the provider knows.
    person: (email, name, verified = true) => control("/__test/accounts", { email, name, email_verified: verified, groups: [] }),
    /// Whom it logs in when the login_hint names nobody it knows.
    nextLogin: (email) => control("/__test/next-login", { email }),
    /// Conclave as its client (dynamic registration), sending people back to `callback`.
    registerClient: (callback) =>
      control("/reg", {
        redirect_uris: [callback],
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: ["authorization_code"],
        response_types: ["code"],
      }),
    stop: () => child.stdin.end(),
  };
}

async function main() {
  const browser = await launchBrowser();
  const provider = await startProvider();
  // The provider is on http:// loopback, which the server reaches only when told it may.
  const server = await startServer(["--allow-local-outbound"], { hostName: "localhost" });
  await runScenario(async () => {
    // The redirect URI is known before connecting (it is named by the
    // provider's short name), so Conclave is registered at the provider first.
    const callback = `${server.url}/api/v1/auth/oidc/example/callback`;
    const client = await provider.registerClient(callback);

    // The owner connects the provider from the Organisation page.
    const owner = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
    owner.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    await owner.goto(server.url);
    await owner.getByLabel("Email").fill("host@example.org");
    await owner.getByLabel("Password").fill(PASSWORD);
    await owner.getByRole("button", { name: "Sign in", exact: true }).click();
    await owner.getByRole("link", { name: "Organisation" }).click();
    const sso = owner.getByRole("region", { name: "Sign-in through OpenID Connect" });
    await sso.getByText("No provider connected.").waitFor({ timeout: TIMEOUT });
    const form = sso.getByRole("form", { name: "Connect an OpenID provider" });
    await form.getByLabel("Short name").fill("example");
    await form.getByText(callback).waitFor({ timeout: TIMEOUT });
    await form.getByLabel("Name on the sign-in button").fill("Example SSO");
    await form.getByLabel("Issuer URL").fill(provider.issuer);
    await form.getByLabel("Client ID").fill(client.client_id);
    await form.getByLabel("Client secret").fill(client.client_secret);
    await form.getByLabel("Email domains it signs in").fill("example.org");
    await form.getByLabel("first sign-in creates their account").check();
    await shot(owner, "connecting-the-provider");
    await form.getByRole("button", { name: "Connect" }).click();
    await sso.getByRole("status").filter({ hasText: "“Example SSO” is connected" }).waitFor({ timeout: TIMEOUT });
    assert.equal((await sso.locator("code.redirect-uri").textContent()).trim(), callback, "the redirect URI to register is shown");
    await sso.getByRole("listitem").filter({ hasText: "Example SSO" }).waitFor({ timeout: TIMEOUT });
    await sso.scrollIntoViewIfNeeded();
    await shot(owner, "provider-connected");

    // Grace, known only to the provider, signs in through it from the sign-in page.
    await provider.person("grace@example.org", "Grace Hopper");
    const grace = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    grace.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    await grace.goto(server.url);
    await grace.getByLabel("Email").fill("grace@example.org");
    await grace.getByLabel("Email").press("Tab");
    const button = grace.getByRole("button", { name: "Sign in with Example SSO" });
    await button.waitFor({ timeout: TIMEOUT });
    await shot(grace, "provider-offered");
    await button.click();
    await grace.getByRole("navigation", { name: "Main" }).waitFor({ timeout: TIMEOUT });
    await grace.getByText("Grace Hopper").first().waitFor({ timeout: TIMEOUT });
    assert.equal(new URL(grace.url()).origin, server.url, "back in the app");
    const me = await grace.evaluate(async () => (await fetch("/api/v1/me")).json());
    assert.equal(me.user.email, "grace@example.org");
    assert.equal(me.user.display_name, "Grace Hopper");
    await shot(grace, "grace-signed-in");

    // Provider only: a member invited with a password (Ada) is sent to the
    // provider once the owner turns members' passwords off.
    await owner.getByLabel("Invite by email").fill("ada@example.org");
    await owner.getByRole("button", { name: "Invite", exact: true }).click();
    const inviteUrl = (await owner.locator("code.invite-url").first().textContent()).trim();
    const ada = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    ada.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    await ada.goto(inviteUrl);
    await ada.getByLabel("Email").fill("ada@example.org");
    await ada.getByLabel("Your name").fill("Ada Lovelace");
    await ada.getByLabel("Password").fill(PASSWORD);
    await ada.getByRole("button", { name: "Create account" }).click();
    await ada.getByRole("button", { name: "Sign out" }).click();
    await ada.getByRole("button", { name: "Sign in", exact: true }).waitFor({ timeout: TIMEOUT });
    const providerOnly = owner.getByRole("checkbox", { name: "Members sign in only through the identity provider (owners keep their password)", exact: true });
    // The box follows the saved policy, so it changes once the server says so.
    await providerOnly.click();
    await poll("the policy turned on", () => providerOnly.isChecked());
    await ada.getByLabel("Email").fill("ada@example.org");
    await ada.getByLabel("Email").press("Tab");
    await ada.getByText("only its owners use a password here").waitFor({ timeout: TIMEOUT });
    await ada.getByLabel("Password").fill(PASSWORD);
    await ada.getByRole("button", { name: "Sign in", exact: true }).click();
    await ada.getByRole("alert").filter({ hasText: "only through its identity provider" }).waitFor({ timeout: TIMEOUT });
    assert.ok(await ada.getByRole("button", { name: "Sign in with Example SSO" }).isVisible(), "the provider's button is offered");
    assert.equal(await ada.getByRole("navigation", { name: "Main" }).count(), 0, "the password no longer signs a member in");
    await shot(ada, "member-sent-to-the-provider");
    await providerOnly.click();
    await poll("the policy turned off again", async () => !(await providerOnly.isChecked()));

    // Eve's provider account is at elsewhere.test: she reaches the button
    // with an example.org address, the provider vouches for her own, and the
    // server refuses it.
    await provider.person("eve@elsewhere.test", "Eve Outsider");
    await provider.nextLogin("eve@elsewhere.test");
    const eve = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    eve.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    await eve.goto(server.url);
    await eve.getByLabel("Email").fill("eve@example.org");
    await eve.getByLabel("Email").press("Tab");
    await eve.getByRole("button", { name: "Sign in with Example SSO" }).click();
    await eve.getByRole("alert").filter({ hasText: "does not sign in here" }).waitFor({ timeout: TIMEOUT });
    assert.equal(new URL(eve.url()).search, "", "the refusal's code is taken out of the address");
    assert.equal(await eve.getByRole("navigation", { name: "Main" }).count(), 0, "Eve is not signed in");
    assert.equal((await eve.evaluate(async () => (await fetch("/api/v1/me")).status)), 401);
    await shot(eve, "eve-refused");
    // Typing her own address offers no provider: none signs in elsewhere.test.
    await eve.getByLabel("Email").fill("eve@elsewhere.test");
    const looked = eve.waitForResponse((r) => r.url().includes("/api/v1/auth/sign-in-options?email=eve%40elsewhere.test"));
    await eve.getByLabel("Email").press("Tab");
    assert.deepEqual((await (await looked).json()).providers, []);
    assert.equal(await eve.getByRole("group", { name: "Your organisation's identity provider" }).count(), 0, "no provider for another domain");
  }, async () => {
    await browser.close();
    server.stop();
    provider.stop();
  });
}

await main();
