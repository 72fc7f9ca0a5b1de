// A TCP relay on loopback that can cut its client off the way a network partition does: `cut()`
// stops moving bytes in both directions without closing anything (no FIN, no RST: the client's
// queries just hang, as behind a dead link), and new connections are accepted but go nowhere.
// `heal()` lets new connections through again (the cut ones stay dead, as after a real partition
// their TCP state is gone). Stopped by `close()`. Nothing here imports vitest.
import { createServer, connect, type Server, type Socket } from 'node:net';

export class PartitionProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private readonly held = new Set<Socket>();
  private isCut = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<number> {
    this.server = createServer((client) => this.onClient(client));
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', () => r()));
    const a = this.server.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
    return this.port;
  }

  private onClient(client: Socket): void {
    client.on('error', () => undefined);
    if (this.isCut) {
      // Accepted, never answered: the client waits for the server's greeting until it gives up.
      client.pause();
      this.held.add(client);
      return;
    }
    const upstream = connect(this.targetPort, this.targetHost);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    // Behind a partition the client hears nothing, not even that the server side closed.
    upstream.on('close', () => {
      if (!this.isCut) client.destroy();
    });
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    client.on('data', (d) => {
      if (!this.isCut) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!this.isCut) client.write(d);
    });
    client.on('close', () => this.pairs.delete(pair));
  }

  /**
   * The partition: nothing passes from now on, and the client's side is never closed. The server's
   * side is closed, as the server's TCP keepalive would find it dead (spotfleet's lock session asks
   * for detection within about 15 s; here it is at once).
   */
  cut(): void {
    this.isCut = true;
    for (const [, upstream] of this.pairs) upstream.destroy();
  }

  /** New connections pass again. */
  heal(): void {
    this.isCut = false;
    for (const s of this.held) s.destroy();
    this.held.clear();
  }

  async close(): Promise<void> {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    for (const s of this.held) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
