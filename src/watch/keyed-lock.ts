// Per-key mutual exclusion inside one watch process: each workload is one unit of work with its own
// lock, so an eviction of one node never waits for a reconcile or a migration of another, and no
// two units ever act on the same workload at once.

export interface KeyedLockHandle {
  release(): void;
}

export class KeyedLock {
  private readonly held = new Map<string, Promise<void>>();

  /** True while some unit holds `key`. */
  isHeld(key: string): boolean {
    return this.held.has(key);
  }

  /** Takes `key` now, or returns undefined when it is held. */
  tryAcquire(key: string): KeyedLockHandle | undefined {
    if (this.held.has(key)) return undefined;
    return this.take(key);
  }

  /** Waits until `key` is free, then takes it. */
  async acquire(key: string): Promise<KeyedLockHandle> {
    for (;;) {
      const cur = this.held.get(key);
      if (!cur) return this.take(key);
      await cur;
    }
  }

  private take(key: string): KeyedLockHandle {
    let done!: () => void;
    const p = new Promise<void>((r) => (done = r));
    this.held.set(key, p);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        if (this.held.get(key) === p) this.held.delete(key);
        done();
      },
    };
  }
}
