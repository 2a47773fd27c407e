/**
 * The operator console in a real browser (Debian's Chromium through playwright-core) against a
 * real Neuron on 127.0.0.1: one browser for the file, a fresh browser context (cookies, storage)
 * per test. See docs/console.md.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { HandshakeError, verifyAttestation, verifyAttestationWithReceipt, type Receipt } from 'neuron-careagent-client';
import {
  ADMIN,
  FRONT_DESK,
  PENDING_NPI,
  connectPatient,
  goTo,
  launchChromium,
  openConsole,
  seriousViolations,
  signIn,
  startConsoleNeuron,
  type ConsoleNeuron,
} from './harness.ts';
import { expireSessions, LOCKOUT_ATTEMPTS } from './operators.ts';

const PAGES = ['Overview', 'Patients', 'Relationships', 'Providers', 'API keys', 'Audit log', 'Outbox'];

describe('the operator console in a browser', () => {
  let browser: Browser;
  let t: ConsoleNeuron;

  before(async () => {
    browser = await launchChromium();
    t = await startConsoleNeuron();
    await connectPatient(t, { agentId: 'console-patient-alpha', displayName: 'Test Patient Alpha' });
    await connectPatient(t, { agentId: 'console-patient-bravo', displayName: 'Test Patient Bravo' });
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  async function admin(width?: number): Promise<{ page: Page; errors: string[]; close: () => Promise<void> }> {
    const { context, page, errors } = await openConsole(browser, t, width === undefined ? {} : { width });
    await signIn(page, ADMIN);
    return { page, errors, close: () => context.close() };
  }

  it('signs an operator in, shows every page with no serious accessibility violation, at 1280 and 390 px', async () => {
    for (const width of [1280, 390]) {
      const { context, page, errors } = await openConsole(browser, t, { width });
      assert.deepEqual(await seriousViolations(page), [], `sign-in page at ${width} px`);
      await signIn(page, ADMIN);
      for (const label of PAGES) {
        await goTo(page, label);
        await page.locator('.loading').first().waitFor({ state: 'detached' });
        assert.deepEqual(await seriousViolations(page), [], `${label} at ${width} px`);
        // Nothing wider than the screen: the page scrolls vertically only.
        const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
        assert.ok(overflow <= 0, `${label} at ${width} px is ${overflow} px wider than the screen`);
      }
      assert.deepEqual(errors, [], 'no script error and no CSP refusal');
      await context.close();
    }
  });

  it('opens and closes the narrow-screen menu from the keyboard', async () => {
    const { page, close } = await admin(390);
    const menu = page.getByRole('button', { name: 'Menu' });
    await menu.focus();
    await page.keyboard.press('Enter');
    const nav = page.getByRole('navigation', { name: 'Console pages' });
    // Focus lands on the first page link (moved there once the opened menu has rendered), so Tab
    // walks the pages. Waited for: the render follows the key press asynchronously.
    await page.waitForFunction("document.activeElement !== null && document.activeElement.textContent === 'Overview'", undefined, {
      timeout: 5_000,
    });
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate<string>('document.activeElement.textContent'), 'Patients');
    await page.keyboard.press('Escape');
    await nav.waitFor({ state: 'hidden' });
    assert.equal(await menu.getAttribute('aria-expanded'), 'false');
    assert.equal(await page.evaluate<string>('document.activeElement.textContent'), 'Menu');
    await close();
  });

  it('finds a connected patient by name with the term in a POST body, blocks them, and their next handshake is refused with BLOCKED', async () => {
    const { page, close } = await admin();
    const urls: string[] = [];
    page.on('request', (request) => urls.push(request.url()));
    let searchBody: string | null = null;
    page.on('request', (request) => {
      if (request.url().endsWith('/v1/patients/search')) searchBody = request.postData();
    });
    await goTo(page, 'Patients');
    await page.getByLabel('Search by name or agent id').fill('Bravo');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByRole('button', { name: 'Open Test Patient Bravo' }).click();
    await page.getByRole('heading', { level: 1, name: 'Test Patient Bravo' }).waitFor();
    assert.ok(searchBody !== null && JSON.parse(searchBody).query === 'Bravo', 'the term went in the body');
    assert.ok(
      urls.every((url) => !url.includes('Bravo')),
      'the term is in no URL',
    );

    // The front-desk profile is edited through PATCH (a merge patch).
    await page.getByLabel('Preferred language').fill('es');
    await page.getByRole('button', { name: 'Save profile' }).click();
    await page.getByText('Profile saved.').waitFor();
    const saved = await page.evaluate<{ profile: { preferred_language?: string } }>(
      `fetch('/v1/patients/console-patient-bravo').then((response) => response.json())`,
    );
    assert.equal(saved.profile.preferred_language, 'es');

    await page.getByRole('button', { name: 'Block' }).click();
    await page.getByLabel('Reason to block').fill('asked by the practice manager');
    await page.getByRole('button', { name: 'Block' }).click();
    await page.getByText(/^Blocked: new handshakes from this patient are refused/).waitFor();

    await assert.rejects(
      connectPatient(t, { agentId: 'console-patient-bravo', displayName: 'Test Patient Bravo' }),
      (error: unknown) => error instanceof HandshakeError && error.code === 'BLOCKED',
    );

    await page.getByRole('button', { name: 'Unblock' }).click();
    await page.getByText(/^Unblocked/).waitFor();
    await close();
  });

  it('suspends and resumes a relationship with a reason, and shows its signed attestation and audit receipt, copyable', async () => {
    const { context, page } = await openConsole(browser, t);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
    await signIn(page, ADMIN);
    await goTo(page, 'Relationships');
    const card = page.locator('article').filter({ hasText: 'console-patient-alpha' });
    // Escape closes the reason form as Cancel does, and focus goes back to the button that opened it.
    await card.getByRole('button', { name: 'Suspend' }).click();
    await card.locator('input:focus').waitFor();
    await page.keyboard.press('Escape');
    await card.locator('form.reason-form').waitFor({ state: 'detached' });
    await card.locator('button:focus', { hasText: 'Suspend' }).waitFor();
    assert.equal(await card.locator('.badge').textContent(), 'active', 'nothing was suspended');
    await page.keyboard.press('Enter');
    await card.getByLabel('Reason to suspend').fill('patient asked for a pause');
    await card.getByRole('button', { name: 'Suspend' }).click();
    await card.getByText('patient asked for a pause').waitFor();
    assert.equal(await card.locator('.badge').textContent(), 'suspended');
    await card.getByRole('button', { name: 'Resume' }).click();
    await card.getByLabel('Reason to resume').fill('pause over');
    await card.getByRole('button', { name: 'Resume' }).click();
    await card.getByText('pause over').waitFor();
    await card.getByRole('button', { name: 'Show attestation' }).click();
    const attestation = JSON.parse((await card.getByTestId('attestation').textContent()) ?? '') as {
      payload: string;
      signature: string;
    };
    // What the page shows verifies with the organization's public key alone, the receipt with it.
    const organization = await page.evaluate<{ public_key: string }>(`fetch('/v1/organization').then((response) => response.json())`);
    assert.equal(
      verifyAttestation(attestation, organization.public_key, { patient_agent_id: 'console-patient-alpha' }).patient_agent_id,
      'console-patient-alpha',
    );
    const receiptText = (await card.getByTestId('audit-receipt').textContent()) ?? '';
    const receipt = JSON.parse(receiptText) as Receipt;
    const verified = verifyAttestationWithReceipt({ ...attestation, receipt }, organization.public_key);
    assert.equal(verified.entry.event_type, 'handshake.completed');
    await card.getByText("the organization cannot later delete this relationship's audit entry without detection").waitFor();
    await card.getByRole('button', { name: 'Copy Audit receipt' }).click();
    await card.getByText('Copied to the clipboard.').waitFor();
    assert.equal(await page.evaluate<string>('navigator.clipboard.readText()'), receiptText);
    await context.close();
  });

  it('approves a provider and copies the credential, shown once', async () => {
    const { context, page } = await openConsole(browser, t);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
    await signIn(page, ADMIN);
    await goTo(page, 'Providers');
    await page.getByRole('button', { name: 'Approve Dr. Ben Sample' }).click();
    const shown = (await page.getByTestId('credential').textContent()) ?? '';
    assert.ok(shown.length > 20, 'a credential is shown');
    await page.getByRole('button', { name: 'Copy Credential' }).click();
    await page.getByText('Copied to the clipboard.').first().waitFor();
    assert.equal(await page.evaluate<string>('navigator.clipboard.readText()'), shown);
    // Once: after it is put away, the page (and the API) no longer have it.
    await page.getByRole('button', { name: 'I have stored it' }).click();
    assert.equal(await page.getByTestId('credential').count(), 0);
    // The provider is active now.
    const providers = await page.evaluate(
      async (npi) => (await (await fetch(`/v1/providers/${npi}`)).json()) as { status: string },
      PENDING_NPI,
    );
    assert.equal(providers.status, 'active');
    await context.close();
  });

  it('creates an API key that works, then revokes it and it stops working', async () => {
    const { page, close } = await admin();
    await goTo(page, 'API keys');
    await page.getByLabel('Label').fill('booking-app');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = (await page.getByTestId('api-key').textContent()) ?? '';
    assert.equal((await fetch(`${t.url}/v1/status`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
    await page.getByRole('button', { name: 'Revoke booking-app' }).click();
    await page.getByText('Key booking-app revoked: it stops working at once.').waitFor();
    assert.equal((await fetch(`${t.url}/v1/status`, { headers: { authorization: `Bearer ${key}` } })).status, 401);
    await close();
  });

  it('verifies the audit log and shows the result', async () => {
    const { page, close } = await admin();
    await goTo(page, 'Audit log');
    await page.getByRole('button', { name: 'Verify now' }).click();
    assert.match((await page.getByTestId('verify-result').textContent()) ?? '', /^Intact: all \d+ entries/);
    await close();
  });

  it('refuses a state change sent with the cookie but without the CSRF token', async () => {
    const { page, close } = await admin();
    const answer = await page.evaluate(async () => {
      const response = await fetch('/v1/blocks', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ patient_agent_id: 'console-patient-alpha', reason: 'forged' }),
      });
      return { status: response.status, body: (await response.json()) as { code: string } };
    });
    assert.equal(answer.status, 403);
    assert.equal(answer.body.code, 'CSRF_REJECTED');
    // Nothing was written: the patient is not blocked.
    const blocks = await page.evaluate(
      async () => (await (await fetch('/v1/blocks')).json()) as { items: Array<{ patient_agent_id: string }> },
    );
    assert.ok(blocks.items.every((block) => block.patient_agent_id !== 'console-patient-alpha'));
    await close();
  });

  it('sends an operator whose session expired back to sign in', async () => {
    const { page, close } = await admin();
    await expireSessions(t);
    const signInHeading = page.getByRole('heading', { level: 1, name: 'Sign in' });
    // The next request the page makes finds the session ended: the providers list this click asks
    // for, or the overview's own refresh when it comes first (the navigation is gone before the
    // click then, and the click's failure means nothing).
    await Promise.race([
      page
        .getByRole('navigation', { name: 'Console pages' })
        .getByRole('link', { name: 'Providers' })
        .click({ timeout: 10_000 })
        .catch(() => undefined),
      signInHeading.waitFor(),
    ]);
    await signInHeading.waitFor();
    await page.getByText('Your session has ended. Sign in again to continue.').waitFor();
    assert.match(new URL(page.url()).pathname, /^\/console\/sign-in$/);
    await close();
  });

  it('shows front-desk operators no admin page, and explains a refusal', async () => {
    const { context, page } = await openConsole(browser, t);
    await signIn(page, FRONT_DESK);
    const nav = page.getByRole('navigation', { name: 'Console pages' });
    assert.equal(await nav.getByRole('link', { name: 'API keys' }).count(), 0);
    // The outbox's dead letters and the roster's changes are admin routes: not offered, only explained.
    assert.equal(await nav.getByRole('link', { name: 'Outbox' }).count(), 0);
    await goTo(page, 'Providers');
    await page.getByText('Dr. Ada Example').waitFor();
    await page.getByText('Administrators add, approve, suspend and remove them.').waitFor();
    assert.equal(await page.getByRole('button', { name: /^(Add a provider|Approve|Suspend|Remove|New credential)/ }).count(), 0);
    await page.goto(`${t.url}/console/api-keys`);
    await page.getByText('Your role does not allow this').waitFor();
    await context.close();
  });

  it('locks an operator out after repeated failed sign-ins, and says so', async () => {
    const { context, page } = await openConsole(browser, t);
    for (let attempt = 0; attempt < LOCKOUT_ATTEMPTS; attempt += 1) {
      await page.getByLabel('Operator name').fill(FRONT_DESK.name);
      await page.getByLabel('Password').fill(`wrong-password-${attempt}`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor();
    }
    // Now even the right password is refused, with the lockout's own message.
    await page.getByLabel('Operator name').fill(FRONT_DESK.name);
    await page.getByLabel('Password').fill(FRONT_DESK.password);
    const answer = page.waitForResponse(
      (response) => response.url().endsWith('/v1/console/session') && response.request().method() === 'POST',
    );
    await page.getByRole('button', { name: 'Sign in' }).click();
    assert.equal((await answer).status(), 429);
    assert.ok(await page.getByRole('alert').isVisible());
    await context.close();
  });
});
