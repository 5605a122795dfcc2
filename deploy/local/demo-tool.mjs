// The demo tool: a tiny upstream HTTP tool the seeded assistant can call. It echoes the
// JSON it receives and remembers the W3C trace context of each call (the end-to-end tests
// use that to follow the trace into the tool).
import { createServer } from 'node:http';

/** @param {{ port: number, host?: string }} options */
export function startDemoTool({ port, host = '127.0.0.1' }) {
  const calls = [];
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/echo') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 65536) req.destroy();
    });
    req.on('end', () => {
      let input = null;
      try {
        input = JSON.parse(body || 'null');
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid JSON"}');
        return;
      }
      calls.push({ input, traceparent: req.headers.traceparent ?? null });
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ echo: input, tool: 'echo', at: new Date().toISOString() }));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve({
        url: `http://${host}:${address.port}/echo`,
        calls,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
