/**
 * The chat page's HTTP server (node:http, no framework): GET / is the page, GET /api/info the
 * variants, GET /api/generate streams a response as server-sent events (`token` with the new
 * text, then `done` or `failed`). Closing the page's connection cancels the generation.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import type { CompiledTemplate } from "../prompt/templates.ts";
import type { ModelTokenizer } from "../tokenizer/tokenizer.ts";
import type { InferenceWorker } from "./inference.ts";
import { CHAT_PAGE } from "./page.ts";
import { SamplingSchema } from "./sampling.ts";

export interface ChatServerOptions {
  host: string;
  port: number;
  tokenizer: ModelTokenizer;
  template: CompiledTemplate;
  worker: InferenceWorker;
  /** model names shown on the page */
  labels: Record<string, string>;
}

export interface ChatServer {
  url: string;
  close(): Promise<void>;
}

const RequestSchema = SamplingSchema.extend({
  instruction: z.string().trim().min(1, "is empty"),
  input: z.string().default(""),
  variant: z.string(),
});

export async function startChatServer(o: ChatServerOptions): Promise<ChatServer> {
  const stopTokens = [...new Set([o.tokenizer.eosId, o.tokenizer.bosId])];
  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
      res.end(e instanceof Error ? e.message : String(e));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET") {
      res.writeHead(405, { Allow: "GET" }).end();
      return;
    }
    if (url.pathname === "/") {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(CHAT_PAGE);
      return;
    }
    if (url.pathname === "/api/info") {
      const variants = o.worker.variants.map((v) => ({ name: v, label: o.labels[v] ?? v }));
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ variants }));
      return;
    }
    if (url.pathname !== "/api/generate") {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
      return;
    }
    const parsed = RequestSchema.safeParse(Object.fromEntries(url.searchParams));
    const variantOk = parsed.success && o.worker.variants.includes(parsed.data.variant);
    if (!parsed.success || !variantOk) {
      const issue = parsed.success ? undefined : parsed.error.issues[0];
      const message = issue
        ? `${issue.path.join(".")}: ${issue.message}`
        : `variant: must be one of ${o.worker.variants.join(", ")}`;
      res.writeHead(400, { "Content-Type": "text/plain" }).end(message);
      return;
    }
    const r = parsed.data;
    const prompt = o.tokenizer.encode(o.template.render(r.instruction, r.input));
    res.writeHead(200, {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache",
      Connection: "keep-alive",
    });
    const send = (event: string, data: unknown) =>
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const generated: number[] = [];
    let shown = "";
    const run = o.worker.generate(r.variant, prompt, r, stopTokens, (token) => {
      generated.push(token);
      const text = o.tokenizer.encoder.decode(generated);
      // a byte-fallback character may still be incomplete: wait for its other bytes
      if (text.endsWith("\uFFFD") || !text.startsWith(shown)) return;
      send("token", { text: text.slice(shown.length), token });
      shown = text;
    });
    res.on("close", () => {
      if (!res.writableFinished) run.cancel(); // the page went away mid-answer
    });
    try {
      const done = await run.done;
      const text = o.tokenizer.encoder.decode(generated);
      if (text.length > shown.length && text.startsWith(shown))
        send("token", { text: text.slice(shown.length) });
      send("done", { ...done, promptTokens: prompt.length });
    } catch (e) {
      send("failed", { message: e instanceof Error ? e.message : String(e) });
    }
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
