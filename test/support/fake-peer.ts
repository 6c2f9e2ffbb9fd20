// A loopback HTTP server that plays another cluster for the hardening tests: it records
// every request (method, raw path with query, headers) and answers from a handler, so a test
// can make a "peer" that answers with marker bodies where none may ever reach a caller.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  /** The raw request target: path and query, as the client sent it. */
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export type FakePeerHandler = (req: SeenRequest, res: ServerResponse) => void;

export interface FakePeer {
  /** http://127.0.0.1:<port> (no trailing slash). */
  readonly url: string;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

export const startFakePeer = async (handler: FakePeerHandler): Promise<FakePeer> => {
  const seen: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: SeenRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
};

/** OSCAR's /system/status shape with one node of `freeMillis` millicores and 4 GiB free. */
export const statusBody = (freeMillis: number, extra: Record<string, unknown> = {}) => ({
  cluster: {
    nodes_count: 1,
    metrics: { cpu: { total_free_cores: freeMillis, max_free_on_node_cores: freeMillis } },
    nodes: [
      {
        name: 'n1',
        cpu: { capacity_cores: freeMillis, usage_cores: 0, request_cores: 0 },
        memory: { capacity_bytes: 4 * 1024 ** 3, usage_bytes: 0, request_bytes: 0 },
        status: 'Ready',
      },
    ],
  },
  ...extra,
});

export const sendJson = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

export const sendText = (res: ServerResponse, status: number, body: string, type = 'text/plain'): void => {
  res.writeHead(status, { 'content-type': type });
  res.end(body);
};
