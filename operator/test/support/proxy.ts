// A TCP proxy between the operator and the API server, for network faults: `down` cuts
// every connection and refuses new ones; `freeze` makes every open connection go silent
// without closing it (as a dropped NAT entry or a half-open socket does) while new
// connections work.

import { connect, createServer, type Server, type Socket } from "node:net";

export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private readonly frozen = new Set<{ client: Socket; upstream: Socket }>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async listen(port = 0) {
    this.server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      const pair = { client, upstream };
      this.pairs.add(pair);
      // One side closing closes the other: `pipe` only ends its destination when the source
      // ends, not when it is destroyed, and an upstream left open (a watch streaming into a
      // dead pipe) would hold this test process until the API server ends the watch, minutes.
      for (const [s, other] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        s.on("close", () => {
          this.pairs.delete(pair);
          other.destroy();
        });
        s.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this.server?.listen(port, "127.0.0.1", () => r()));
    const a = this.server.address();
    this.port = typeof a === "object" && a ? a.port : 0;
  }

  /** Cuts every connection and refuses new ones until listen() again. */
  async down() {
    await new Promise<void>((r) => {
      this.server?.close(() => r());
      for (const { client, upstream } of [...this.pairs, ...this.frozen]) {
        client.destroy();
        upstream.destroy();
      }
      this.frozen.clear();
    });
  }

  /**
   * Every open connection stops delivering: nothing from the API server reaches the client
   * any more, and nothing is closed. (A client that sends on a frozen connection has it
   * reset, so a request on a pooled connection fails fast instead of hanging.)
   */
  freeze() {
    const frozen = [...this.pairs];
    this.pairs.clear();
    for (const pair of frozen) {
      const { client, upstream } = pair;
      this.frozen.add(pair);
      upstream.unpipe(client);
      client.unpipe(upstream);
      upstream.pause();
      const cut = () => {
        client.destroy();
        upstream.destroy();
        this.frozen.delete(pair);
      };
      client.on("data", cut);
      client.on("close", cut);
      client.resume(); // unpipe left it paused: a 'data' listener alone would not see a byte
    }
    return frozen.length;
  }
}
