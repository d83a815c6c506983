import { describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { Admission } from '../../../src/server/admission.ts';

describe('Admission', () => {
  it('admits up to the concurrency at once, queues up to the limit, refuses beyond with E_SERVER_QUEUE_FULL', async () => {
    const admission = new Admission(2, 1);
    const a = admission.acquire('m');
    const b = admission.acquire('m');
    const c = admission.acquire('m');
    let cReady = false;
    void c.ready.then(() => (cReady = true));
    expect(admission.running).toBe(2);
    expect(admission.queued).toBe(1);
    let refused: unknown;
    try {
      admission.acquire('m');
    } catch (err) {
      refused = err;
    }
    expect(isEdgevolveError(refused, 'E_SERVER_QUEUE_FULL')).toBe(true);
    expect(admission.rejected).toBe(1);
    await Promise.all([a.ready, b.ready]);
    await Promise.resolve();
    expect(cReady).toBe(false);
    admission.release();
    await c.ready;
    expect(admission.running).toBe(2);
    expect(admission.queued).toBe(0);
    admission.release();
    admission.release();
    expect(admission.running).toBe(0);
  });

  it('hands permits in arrival order and skips a waiter that cancelled (timed out)', async () => {
    const admission = new Admission(1, 10);
    admission.acquire('m');
    const order: string[] = [];
    const first = admission.acquire('m');
    const second = admission.acquire('m');
    const third = admission.acquire('m');
    void first.ready.then(() => order.push('first'));
    void second.ready.then(() => order.push('second'));
    void third.ready.then(() => order.push('third'));
    expect(second.cancel()).toBe(true);
    expect(second.cancel()).toBe(false);
    expect(admission.queued).toBe(2);
    admission.release();
    await first.ready;
    admission.release();
    await third.ready;
    expect(order).toEqual(['first', 'third']);
    expect(admission.running).toBe(1);
    // A granted waiter can no longer cancel: its permit must be released instead.
    expect(third.cancel()).toBe(false);
  });
});
