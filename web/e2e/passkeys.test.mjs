// Passkeys in Chromium, with a virtual authenticator (the DevTools
// protocol's WebAuthn domain: a platform authenticator that keeps resident
// credentials and verifies its user without asking). The owner signs in
// with the password, is asked by the organisation's policy to enrol a
// second factor, and adds a passkey named "Laptop"; signs in with it
// alone, no address typed; signs in with the password and uses it as the
// second factor, also where the organisation requires it (and keeps the
// last one from being removed); renames it and removes it, after which it
// signs nobody in.
//
// Passkeys belong to a host name, never an IP address, so the server is
// reached as http://localhost:PORT.
//
//   CONCLAVE_BIN=target/debug/conclave node e2e/passkeys.test.mjs
//
// Screenshots go to web/test-results/passkeys/. Prints one `test result:` line.

import assert from "node:assert/strict";
import { PASSWORD, TIMEOUT, launchBrowser, poll, screenshots, startServer, runScenario } from "./harness.mjs";

const { shot } = screenshots("passkeys");

async function main() {
  const browser = await launchBrowser();
  const server = await startServer([], { hostName: "localhost" });
  await runScenario(async () => {
    assert.match(server.url, /^http:\/\/localhost:\d+$/, "the server names itself by host name");
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    // Removing a passkey asks first; the owner says yes.
    page.on("dialog", (dialog) => void dialog.accept());
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "internal",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });

    const signInButton = page.getByRole("button", { name: "Sign in", exact: true });
    const signedInAs = async (what) => {
      await page.getByRole("navigation", { name: "Main" }).waitFor({ timeout: TIMEOUT });
      const me = await page.evaluate(async () => (await fetch("/api/v1/me")).json());
      assert.equal(me.user.email, "host@example.org", `${what}: signed in as the owner`);
      return me;
    };
    const signOut = async () => {
      await page.getByRole("button", { name: "Sign out" }).click();
      await signInButton.waitFor({ timeout: TIMEOUT });
    };
    const passkeys = page.getByRole("region", { name: "Passkeys" });
    const openAccount = async () => {
      await page.getByRole("link", { name: "Account" }).click();
      await passkeys.waitFor({ timeout: TIMEOUT });
    };

    const signInWithPassword = async () => {
      await page.getByLabel("Email").fill("host@example.org");
      await page.getByLabel("Password").fill(PASSWORD);
      await signInButton.click();
    };
    // A policy's box follows the saved policy, so it changes once the server says so.
    const setPolicy = async (label, on) => {
      await page.getByRole("link", { name: "Organisation" }).click();
      const box = page.getByRole("checkbox", { name: label, exact: true });
      if ((await box.isChecked()) === on) return;
      await box.click();
      await poll(`"${label}" ${on ? "on" : "off"}`, async () => (await box.isChecked()) === on);
    };
    const REQUIRE_2FA = "Two-factor authentication required";
    const REQUIRE_PASSKEY = "A passkey, not an authenticator app's code, required after the password";

    // The password first; the owner then requires a second factor, which
    // the account does not have yet.
    await page.goto(server.url);
    await signInButton.waitFor({ timeout: TIMEOUT });
    await shot(page, "sign-in-page");
    await signInWithPassword();
    await signedInAs("password");
    await setPolicy(REQUIRE_2FA, true);
    await signOut();

    // Signed in again, the owner is sent to enrol one, and is offered a
    // passkey beside the authenticator app: a passkey named "Laptop".
    await signInWithPassword();
    await page.getByRole("alert").filter({ hasText: "Your organisation requires a second factor" }).waitFor({ timeout: TIMEOUT });
    await passkeys.getByText("No passkeys yet.").waitFor({ timeout: TIMEOUT });
    assert.ok(await page.getByRole("button", { name: "Set up an authenticator app" }).isVisible());
    await shot(page, "second-factor-to-enrol");
    await passkeys.getByLabel("Name of the new passkey").fill("Laptop");
    await passkeys.getByRole("button", { name: "Add a passkey" }).click();
    await passkeys.getByRole("listitem").filter({ hasText: "Laptop" }).waitFor({ timeout: TIMEOUT });
    await poll("the enrolment notice to go", async () => (await page.getByRole("alert").count()) === 0);
    assert.match(await passkeys.getByRole("listitem").first().textContent(), /Laptop · added .* · not used yet/);
    await shot(page, "passkey-added");
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    assert.equal(credentials.length, 1, "the authenticator holds one credential");
    assert.equal(credentials[0].isResidentCredential, true, "the passkey is discoverable (resident), so it names its account");
    assert.equal(credentials[0].rpId, "localhost", "the passkey belongs to the server's host name");
    await signOut();

    // The passkey alone signs in: no address is typed.
    assert.equal(await page.getByLabel("Email").inputValue(), "");
    await page.getByRole("button", { name: "Sign in with a passkey" }).click();
    await signedInAs("passkey alone");
    await page.locator("header.top").getByText("host").waitFor({ timeout: TIMEOUT });
    await shot(page, "signed-in-with-the-passkey-alone");
    await signOut();

    // The password, then the passkey in place of an authenticator code.
    await signInWithPassword();
    const usePasskey = page.getByRole("button", { name: "Use your passkey" });
    await usePasskey.waitFor({ timeout: TIMEOUT });
    assert.ok(await page.getByLabel("Code").isVisible(), "the code field is offered beside the passkey");
    await shot(page, "second-factor-asked");
    await usePasskey.click();
    await signedInAs("password and passkey");
    await shot(page, "signed-in-with-password-and-passkey");

    // The organisation requires a phishing-resistant factor: after the
    // password, only the passkey (or a recovery code) is asked for, and the
    // last passkey cannot be removed.
    await setPolicy(REQUIRE_PASSKEY, true);
    await shot(page, "passkey-required-by-the-organisation");
    await signOut();
    await signInWithPassword();
    await page.getByText("Your organisation asks for your passkey after the password.").waitFor({ timeout: TIMEOUT });
    assert.equal(await page.getByLabel("Code").count(), 0, "no authenticator code is taken");
    await shot(page, "only-the-passkey-asked");
    await usePasskey.click();
    await signedInAs("password and required passkey");
    await openAccount();
    await passkeys.getByRole("button", { name: "Remove Laptop" }).click();
    await passkeys.getByRole("alert").filter({ hasText: "requires this factor" }).waitFor({ timeout: TIMEOUT });
    await shot(page, "last-passkey-kept");
    await setPolicy(REQUIRE_PASSKEY, false);
    await setPolicy(REQUIRE_2FA, false);

    // Renamed, then removed: the list is empty, and the authenticator's
    // credential signs nobody in any more.
    await openAccount();
    const laptop = passkeys.getByRole("listitem").filter({ hasText: "Laptop" });
    await laptop.waitFor({ timeout: TIMEOUT });
    assert.match(await laptop.textContent(), /last used /, "the last use is shown");
    await passkeys.getByRole("button", { name: "Rename Laptop" }).click();
    await passkeys.getByLabel("New name for “Laptop”").fill("Work laptop");
    await passkeys.getByRole("button", { name: "Save" }).click();
    await passkeys.getByRole("listitem").filter({ hasText: "Work laptop" }).waitFor({ timeout: TIMEOUT });
    const listed = await page.evaluate(async () => (await fetch("/api/v1/me/passkeys")).json());
    assert.deepEqual(listed.passkeys.map((p) => p.name), ["Work laptop"], "the new name is kept");
    await shot(page, "passkey-renamed");
    await passkeys.getByRole("button", { name: "Remove Work laptop" }).click();
    await passkeys.getByText("No passkeys yet.").waitFor({ timeout: TIMEOUT });
    await shot(page, "passkey-removed");
    await signOut();
    await page.getByRole("button", { name: "Sign in with a passkey" }).click();
    await page.getByRole("alert").filter({ hasText: "not registered here" }).waitFor({ timeout: TIMEOUT });
    assert.equal(await page.getByRole("navigation", { name: "Main" }).count(), 0, "a removed passkey signs nobody in");
    await shot(page, "removed-passkey-refused");
  }, async () => {
    await browser.close();
    server.stop();
  });
}

await main();
