/**
 * The console's browser tests' tools: Debian's Chromium driven by playwright-core (no browser
 * download), a real Neuron with operators, patients connected through the client library, and
 * axe-core run inside the page.
 *
 *   const browser = await launchChromium();           // one per test file
 *   const t = await startConsoleNeuron();             // a Neuron with an admin and a front-desk operator
 *   const { context, page } = await openConsole(browser, t);   // a fresh context per test
 *   await signIn(page, ADMIN);
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createConsentToken, establishRelationship, generatePatientKeys, type RelationshipResult } from 'neuron-careagent-client';
import { insertProvider, startTestNeuron, type StartTestNeuronOptions, type TestNeuron } from '../helpers/neuron.ts';
import type { OperatorRole } from '../../src/domains/operators/index.ts';
import { CONSOLE_TEST_CONFIG, addOperator } from './operators.ts';

/** The launch flags CI uses: no sandbox (root in a container), nothing fetched in the background. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Operator {
  name: string;
  role: OperatorRole;
  password: string;
}

// Synthetic test credentials, long enough for any password rule.
export const ADMIN: Operator = { name: 'test-admin', role: 'admin', password: 'correct-horse-battery-admin' };
export const FRONT_DESK: Operator = { name: 'test-desk', role: 'front-desk', password: 'correct-horse-battery-desk' };

/** The active provider patients consent to in these tests. */
export const PROVIDER_NPI = '1679576722';
/** A provider waiting for approval, with its CareAgent endpoint. */
export const PENDING_NPI = '1376841239';

export function chromiumPath(): string {
  return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
}

/**
 * One browser for a test file. playwright-core gives every launch a fresh temporary profile
 * (user-data-dir) of its own and removes it on close.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS });
}

export interface ConsoleNeuron extends TestNeuron {
  operators: Operator[];
}

export async function startConsoleNeuron(options: StartTestNeuronOptions = {}): Promise<ConsoleNeuron> {
  const consoleConfig = { ...CONSOLE_TEST_CONFIG.console, ...((options.config?.['console'] ?? {}) as object) };
  const t = await startTestNeuron({ ...options, config: { ...options.config, console: consoleConfig } });
  try {
    await insertProvider(t.neuron, { npi: PROVIDER_NPI, name: 'Dr. Ada Example', specialty: 'Family medicine' });
    await insertProvider(t.neuron, { npi: PENDING_NPI, name: 'Dr. Ben Sample', status: 'pending' });
    for (const operator of [ADMIN, FRONT_DESK]) await addOperator(t, operator);
  } catch (error) {
    await t.stop();
    throw error;
  }
  return { ...t, operators: [ADMIN, FRONT_DESK] };
}

/** A patient's CareAgent completes a handshake through the client library (src/client). */
export async function connectPatient(
  t: TestNeuron,
  patient: { agentId: string; displayName: string; keys?: ReturnType<typeof generatePatientKeys> },
): Promise<RelationshipResult> {
  const keys = patient.keys ?? generatePatientKeys();
  const consentToken = createConsentToken(
    { patientAgentId: patient.agentId, providerNpi: PROVIDER_NPI, consentedActions: ['office_visit'] },
    keys,
  );
  return establishRelationship(t.handshakeUrl, {
    patientAgentId: patient.agentId,
    keys,
    endpoint: `wss://${patient.agentId}.example/agent`,
    consentToken,
    profile: { display_name: patient.displayName },
    timeoutMs: 10_000,
  });
}

export async function openConsole(
  browser: Browser,
  t: TestNeuron,
  options: { width?: number } = {},
): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const width = options.width ?? 1280;
  const context = await browser.newContext({ viewport: { width, height: width >= 1000 ? 800 : 844 } });
  const page = await context.newPage();
  // Script errors and CSP refusals in the page fail the tests that look at them.
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) errors.push(message.text());
  });
  await page.goto(`${t.url}/console`);
  return { context, page, errors };
}

export async function signIn(page: Page, operator: Operator): Promise<void> {
  await page.getByLabel('Operator name').fill(operator.name);
  await page.getByLabel('Password').fill(operator.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // The navigation may be folded behind its button on a narrow screen; Sign out is always shown.
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

export async function goTo(page: Page, label: string): Promise<void> {
  const nav = page.getByRole('navigation', { name: 'Console pages' });
  // On a narrow screen the menu is behind its button.
  if (!(await nav.isVisible())) await page.getByRole('button', { name: 'Menu' }).click();
  await nav.getByRole('link', { name: label, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: label }).waitFor();
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * axe-core's serious and critical violations on the page as it is now, one line each. The source
 * is evaluated through the DevTools protocol, which the page's CSP does not govern, so the policy
 * under test stays as served.
 */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  // A string, evaluated in the page (this file is typed without the DOM).
  const violations = await page.evaluate<Array<{ id: string; impact: string | null; help: string; targets: string[] }>>(`
    axe.run(document, { resultTypes: ['violations'] }).then((result) => result.violations.map((violation) => ({
      id: violation.id, impact: violation.impact, help: violation.help,
      targets: violation.nodes.slice(0, 3).map((node) => JSON.stringify(node.target)),
    })))`);
  return violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map((violation) => `${violation.impact} ${violation.id}: ${violation.help} at ${violation.targets.join(', ')}`);
}
