// /healthz (the process serves), /readyz (caches synced, or standing by for the lease)
// and /metrics (Prometheus text format).

import { createServer, type Server } from "node:http";
import type { Metrics } from "./metrics.ts";

export function startHttpServer(
  port: number,
  metrics: Metrics,
  ready: () => boolean,
): Promise<Server> {
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    } else if (url === "/readyz") {
      const ok = ready();
      res
        .writeHead(ok ? 200 : 503, { "content-type": "text/plain" })
        .end(ok ? "ok" : "caches not synced");
    } else if (url === "/metrics") {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
        (error: Error) => res.writeHead(500).end(error.message),
      );
    } else {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, () => resolve(server));
  });
}
