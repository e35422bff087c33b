import { createServer } from "node:net";

/**
 * Asks the kernel for an unused TCP port on `host`. The port is released before this resolves, so another process
 * can take it in between: callers that bind it later must retry on "address in use".
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error(`could not read a free port on ${host}`))));
    });
  });
}
