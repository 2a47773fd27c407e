import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { DeadlineList } from './deadlines.ts';

describe('DeadlineList', () => {
  it('calls onDue once per deadline, in the order added, after its span; never for a cancelled one', async () => {
    const due: Array<{ name: string; afterMs: number }> = [];
    const started = performance.now();
    const list = new DeadlineList<string>({
      spanMs: 60,
      onDue: (name) => due.push({ name, afterMs: performance.now() - started }),
    });
    list.add('first');
    const second = list.add('second');
    await sleep(20);
    list.add('third');
    list.cancel(second);
    list.cancel(second); // twice is harmless
    assert.equal(list.size, 2);
    await sleep(150);
    assert.deepEqual(
      due.map((d) => d.name),
      ['first', 'third'],
    );
    assert.ok(due[0]!.afterMs >= 60, `first fell due after ${due[0]!.afterMs} ms`);
    assert.ok(due[1]!.afterMs >= 80, `third fell due after ${due[1]!.afterMs} ms`);
    assert.equal(list.size, 0);
  });

  it('keeps going when the head was cancelled, and with deadlines added from onDue', async () => {
    const due: string[] = [];
    const list: DeadlineList<string> = new DeadlineList<string>({
      spanMs: 30,
      onDue: (name) => {
        due.push(name);
        if (name === 'b') list.add('c');
      },
    });
    const a = list.add('a');
    await sleep(10);
    list.add('b');
    list.cancel(a);
    await sleep(120);
    assert.deepEqual(due, ['b', 'c']);
  });

  it("runs on one unref'd timer, whatever the number of deadlines, and clear() drops them all", async () => {
    const refTimers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const before = refTimers();
    const list = new DeadlineList<number>({ spanMs: 30, onDue: () => assert.fail('nothing is due') });
    for (let i = 0; i < 100; i += 1) list.add(i);
    // A pending deadline never keeps the process alive by itself (its session's socket does).
    assert.equal(refTimers(), before);
    list.clear();
    assert.equal(list.size, 0);
    await sleep(60);
  });
});
