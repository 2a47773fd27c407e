import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestNeuron, type TestNeuron } from '../../test/helpers/neuron.ts';
import { CONSOLE_CSP, consoleRoutes } from './plugin.ts';
import Fastify from 'fastify';

describe('the console pages at /console', () => {
  let t: TestNeuron;
  before(async () => {
    t = await startTestNeuron();
  });
  after(async () => {
    await t.stop();
  });

  it('serves the page with a strict policy: scripts and styles from this origin only, no inline code', async () => {
    const response = await fetch(`${t.url}/console`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(response.headers.get('content-security-policy'), CONSOLE_CSP);
    assert.doesNotMatch(CONSOLE_CSP, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(response.headers.get('cache-control'), 'no-cache');
    const page = await response.text();
    // No inline script or style: every script and style sheet is a file under /console/assets/.
    assert.doesNotMatch(page, /<script(?![^>]*\ssrc=)[^>]*>/);
    assert.doesNotMatch(page, /<style|\sstyle=/);
    const script = /<script type="module" src="(\/console\/assets\/[^"]+\.js)"/.exec(page)?.[1];
    const style = /<link rel="stylesheet" href="(\/console\/assets\/[^"]+\.css)"/.exec(page)?.[1];
    assert.ok(script && style, 'the page names its script and style sheet');
    const js = await fetch(`${t.url}${script}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    assert.ok((await js.text()).length > 1000);
    const css = await fetch(`${t.url}${style}`);
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
  });

  it("answers the application's own pages with the same page, so a reload works", async () => {
    for (const page of ['/console/', '/console/patients', '/console/audit']) {
      const response = await fetch(`${t.url}${page}`);
      assert.equal(response.status, 200, page);
      assert.match(await response.text(), /<div id="app">/);
    }
  });

  it('answers an unknown asset with a problem document', async () => {
    const response = await fetch(`${t.url}/console/assets/nothing-here.js`);
    assert.equal(response.status, 404);
    assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.equal(((await response.json()) as { code: string }).code, 'ROUTE_NOT_FOUND');
  });
});

describe('the console without a build or sources', () => {
  it('answers 503 with a page that says to run the build', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'neuron-console-'));
    const app = Fastify();
    try {
      await app.register(consoleRoutes({ root }));
      const first = await app.inject({ method: 'GET', url: '/console' });
      assert.equal(first.statusCode, 503);
      assert.match(first.body, /npm run build/);
      assert.equal(first.headers['content-security-policy'], CONSOLE_CSP);
    } finally {
      await app.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('serves files from the loader once it succeeds', async () => {
    let calls = 0;
    const app = Fastify();
    await app.register(
      consoleRoutes({
        load: async () => {
          calls += 1;
          if (calls === 1) throw new Error('not yet');
          return new Map([['index.html', Buffer.from('<p>ok</p>')]]);
        },
      }),
    );
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/console' })).statusCode, 503);
      const second = await app.inject({ method: 'GET', url: '/console/overview' });
      assert.equal(second.statusCode, 200);
      assert.equal(second.body, '<p>ok</p>');
    } finally {
      await app.close();
    }
  });
});
