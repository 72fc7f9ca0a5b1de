import { describe, expect, it } from 'vitest';
import { backoffDelay, ItemBackoff } from '../../src/watch/backoff.js';

describe('backoffDelay', () => {
  it('doubles from 1 s and caps at 5 min by default', () => {
    const d = [1, 2, 3, 4, 5, 9, 10, 50, 5000].map((n) => backoffDelay(n, { jitter: 0 }));
    expect(d).toEqual([1000, 2000, 4000, 8000, 16000, 256000, 300000, 300000, 300000]);
  });

  it('treats 0 and negative failure counts as the first failure', () => {
    expect(backoffDelay(0, { jitter: 0 })).toBe(1000);
    expect(backoffDelay(-3, { jitter: 0 })).toBe(1000);
  });

  it('honours base, cap and factor', () => {
    expect(backoffDelay(3, { baseMs: 10, factor: 3, capMs: 1000, jitter: 0 })).toBe(90);
    expect(backoffDelay(10, { baseMs: 10, factor: 3, capMs: 1000, jitter: 0 })).toBe(1000);
  });

  it('jitter only shortens the delay, within the fraction', () => {
    expect(backoffDelay(4, { jitter: 0.5, random: () => 0 })).toBe(8000);
    expect(backoffDelay(4, { jitter: 0.5, random: () => 0.999999 })).toBe(4000);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(20, { jitter: 0.2 });
      expect(d).toBeLessThanOrEqual(300000);
      expect(d).toBeGreaterThanOrEqual(240000);
    }
  });
});

describe('ItemBackoff', () => {
  it('counts failures per key and resets on forget', () => {
    const b = new ItemBackoff<string>({ jitter: 0 });
    expect([b.next('a'), b.next('a'), b.next('b'), b.next('a')]).toEqual([1000, 2000, 1000, 4000]);
    expect(b.count('a')).toBe(3);
    b.forget('a');
    expect(b.count('a')).toBe(0);
    expect(b.next('a')).toBe(1000);
    expect(b.next('b')).toBe(2000);
  });
});
