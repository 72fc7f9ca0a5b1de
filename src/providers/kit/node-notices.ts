// Eviction notices and node death for folder-backed nodes (`local`, `sim`). A notice is a file in
// the node's folder; once its deadline has passed the node is dead: its processes are killed and a
// `terminated.json` marks it. A rebalance recommendation is a warning, not a notice: it lives in
// its own file (so an eviction can follow it, or not), is reported until its deadline, and takes
// nothing away. Evaluated lazily on every call (level-triggered), so no timers run and
// every CLI process reaches the same conclusion from the same files.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ProviderError } from '../../core/errors.js';
import type { Notice, NoticeKind } from '../../core/types.js';
import { readJson, writeJsonAtomic } from './fs-util.js';

export interface TerminatedMark {
  at: string;
  reason: string;
}

export interface NodeNoticesOptions {
  provider: string;
  /** `local` or `sim`: Notice.source. */
  source: string;
  nodeDir(node: string): string;
  now(): number;
  /** Kills the node's processes; called once when a notice's deadline passes. */
  onDeath(node: string): Promise<void>;
}

/** Notice and termination files of folder-backed nodes. */
export class NodeNotices {
  constructor(private readonly o: NodeNoticesOptions) {}

  private noticePath(node: string): string {
    return join(this.o.nodeDir(node), 'notice.json');
  }
  private deadPath(node: string): string {
    return join(this.o.nodeDir(node), 'terminated.json');
  }
  private warningPath(node: string): string {
    return join(this.o.nodeDir(node), 'warning.json');
  }

  /** The rebalance recommendation posted on a node, if any (in force or not). */
  warning(node: string): Notice | undefined {
    return readJson<Notice>(this.warningPath(node));
  }

  notice(node: string): Notice | undefined {
    return readJson<Notice>(this.noticePath(node));
  }

  terminated(node: string): TerminatedMark | undefined {
    return readJson<TerminatedMark>(this.deadPath(node));
  }

  /**
   * Posts a notice; the deadline is wall-clock `now + inMs`. Keeps an earlier deadline. A
   * `rebalance` kind is a warning: kept apart, and the node does not die at its deadline.
   */
  post(node: string, opts: { inMs: number; kind?: NoticeKind; at?: number; action?: string; detail?: Notice['detail'] }): Notice {
    if (this.terminated(node)) throw new ProviderError(this.o.provider, `node ${node} is already terminated`);
    const at = opts.at ?? this.o.now();
    const deadline = at + Math.max(0, opts.inMs);
    const kind = opts.kind ?? 'preemption';
    const warning = kind === 'rebalance';
    const existing = warning ? this.warning(node) : this.notice(node);
    // An expired warning is replaced by a new one; an eviction notice keeps its earlier deadline.
    if (existing && Date.parse(existing.deadline) <= deadline && (!warning || Date.parse(existing.deadline) > at)) return existing;
    const n: Notice = {
      id: `${this.o.source}-${node}-${warning ? 'rebalance-' : ''}${deadline}`,
      provider: this.o.provider,
      node,
      source: this.o.source,
      kind,
      action: opts.action ?? (warning ? 'rebalance-recommendation' : 'terminate'),
      deadline: new Date(deadline).toISOString(),
      receivedAt: new Date(at).toISOString(),
    };
    if (opts.detail) n.detail = opts.detail;
    writeJsonAtomic(warning ? this.warningPath(node) : this.noticePath(node), n);
    return n;
  }

  /**
   * Brings the node's files up to date with the clock: a notice past its deadline kills the node.
   * Returns the node's condition.
   */
  async settle(node: string): Promise<'ok' | 'noticed' | 'terminated'> {
    if (existsSync(this.deadPath(node))) return 'terminated';
    const n = this.notice(node);
    if (!n) return 'ok';
    if (Date.parse(n.deadline) > this.o.now()) return 'noticed';
    await this.o.onDeath(node);
    writeJsonAtomic(this.deadPath(node), { at: n.deadline, reason: `${n.kind} notice ${n.id}` } satisfies TerminatedMark);
    return 'terminated';
  }

  /** Notices in force for a node (until their deadline): the eviction notice and the rebalance warning. */
  async poll(node: string): Promise<Notice[]> {
    const s = await this.settle(node);
    if (s === 'terminated') return [];
    const out: Notice[] = [];
    const n = s === 'noticed' ? this.notice(node) : undefined;
    if (n) out.push(n);
    const w = this.warning(node);
    if (w && Date.parse(w.deadline) > this.o.now()) out.push(w);
    return out;
  }

  /** Clears the notice, the warning and the termination mark. */
  restore(node: string): void {
    rmSync(this.noticePath(node), { force: true });
    rmSync(this.warningPath(node), { force: true });
    rmSync(this.deadPath(node), { force: true });
  }
}
