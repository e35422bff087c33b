import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A SCIM server whose `eq` filters find nothing, in front of a real one: a server whose filter is case-sensitive
 * where RFC 7643 says userName is not, seen from the side of a client that asks in another case. Everything else
 * is forwarded as it is, on the loopback.
 */
export async function startBlindFilterProxy(upstream: string): Promise<{ url: string; stop(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const path = req.url ?? '/';
        if (req.method === 'GET' && new URL(path, 'http://proxy').searchParams.has('filter')) {
          res.writeHead(200, { 'content-type': 'application/scim+json' });
          res.end(JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] }));
          return;
        }
        const headers: Record<string, string> = {};
        for (const name of ['authorization', 'content-type', 'accept']) if (req.headers[name]) headers[name] = String(req.headers[name]);
        const answer = await fetch(upstream + path.replace(/^\/scim\/directory\/sandbox/, ''), {
          method: req.method ?? 'GET',
          headers,
          ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
        });
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/scim+json' });
        res.end(Buffer.from(await answer.arrayBuffer()));
      })().catch((e: unknown) => {
        res.writeHead(502);
        res.end(String(e));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/scim/directory/sandbox`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
