/**
 * `npm run console:screenshots`: regenerates docs/console/*.png, each console page at 1280 and
 * 390 px wide, from a temporary Neuron with synthetic patients, providers and keys (docs/console.md).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ApiKeyService } from '../../src/domains/api-keys/service.ts';
import { ADMIN, connectPatient, goTo, launchChromium, openConsole, signIn, startConsoleNeuron } from './harness.ts';

const OUT = path.resolve(import.meta.dirname, '..', '..', 'docs', 'console');
const PAGES: Array<{ label: string; file: string }> = [
  { label: 'Overview', file: 'overview' },
  { label: 'Patients', file: 'patients' },
  { label: 'Relationships', file: 'relationships' },
  { label: 'Providers', file: 'providers' },
  { label: 'API keys', file: 'api-keys' },
  { label: 'Audit log', file: 'audit' },
  { label: 'Outbox', file: 'outbox' },
];

const t = await startConsoleNeuron();
const browser = await launchChromium();
try {
  for (const [index, name] of ['Test Patient Alpha', 'Test Patient Bravo', 'Test Patient Charlie'].entries()) {
    await connectPatient(t, { agentId: `screenshot-patient-${index + 1}`, displayName: name });
  }
  const apiKeys = new ApiKeyService({ storage: t.neuron.storage, audit: t.neuron.audit });
  await apiKeys.create({ label: 'booking-app', scopes: ['read', 'write'], expiresAt: null, actor: 'cli' });
  await apiKeys.create({ label: 'reporting', scopes: ['read'], expiresAt: null, actor: 'cli' });
  mkdirSync(OUT, { recursive: true });
  for (const width of [1280, 390]) {
    const { context, page } = await openConsole(browser, t, { width });
    await page.screenshot({ path: path.join(OUT, `sign-in-${width}.png`) });
    await signIn(page, ADMIN);
    for (const entry of PAGES) {
      await goTo(page, entry.label);
      await page.locator('.loading').first().waitFor({ state: 'detached' });
      if (entry.file === 'relationships') {
        // One card opened: its signed attestation and audit receipt, as an operator sees them.
        await page.getByRole('button', { name: 'Show attestation' }).first().click();
        await page.getByTestId('audit-receipt').waitFor();
      }
      await page.mouse.move(0, 0);
      await page.screenshot({ path: path.join(OUT, `${entry.file}-${width}.png`), fullPage: true });
      if (entry.file === 'patients') {
        await page.getByRole('button', { name: 'Open Test Patient Alpha' }).click();
        await page.getByRole('heading', { level: 1, name: 'Test Patient Alpha' }).waitFor();
        await page.locator('.loading').first().waitFor({ state: 'detached' });
        await page.screenshot({ path: path.join(OUT, `patient-${width}.png`), fullPage: true });
      }
    }
    await context.close();
  }
  process.stdout.write(`screenshots written to ${path.relative(process.cwd(), OUT)}/\n`);
} finally {
  await browser.close();
  await t.stop();
}
