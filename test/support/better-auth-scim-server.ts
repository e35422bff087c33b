/**
 * Child-process entry point for the better-auth SCIM interop server (better-auth 1.7.5 +
 * @better-auth/scim 1.7.5). Started by `startBetterAuthScim()` in ./better-auth-scim.ts via
 * `node --import tsx better-auth-scim-server.ts`; not meant to be imported.
 *
 * Listens on 127.0.0.1 (port from BA_SCIM_PORT, default 0 = ephemeral), then builds the auth
 * instance with the real port (meta.location / Location headers come from baseURL), then prints
 * exactly one JSON line `{"port","baseUrl","token"}` on stdout. Everything else goes to stderr.
 *
 * Exits 0 on SIGTERM/SIGINT, and also when stdin reaches EOF (the parent holds the other end
 * of the pipe, so the server dies with the parent even if the parent is SIGKILLed).
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { betterAuth, type BetterAuthOptions } from "better-auth";
import { memoryAdapter, type MemoryDB } from "better-auth/adapters/memory";
import { getAuthTables } from "better-auth/db";
import { toNodeHandler } from "better-auth/node";
import { scim } from "@better-auth/scim";

const HOST = "127.0.0.1";
const BASE_PATH = "/api/auth";

// Anything chatty (better-auth logger, warnings) must not pollute the stdout protocol line.
console.log = (...args: unknown[]) => console.error(...args);
console.info = (...args: unknown[]) => console.error(...args);

function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

async function main(): Promise<void> {
  const token = process.env.BA_SCIM_TOKEN || randomToken();
  const requestedPort = Number(process.env.BA_SCIM_PORT ?? "0");

  // Listen first with a placeholder handler: the auth instance needs the real port in baseURL.
  let handler: http.RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(requestedPort, HOST, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://${HOST}:${port}`;

  const store: MemoryDB = {};
  const options = {
    baseURL: origin,
    basePath: BASE_PATH,
    secret: randomToken(),
    database: memoryAdapter(store),
    telemetry: { enabled: false },
    plugins: [
      scim({
        connections: [
          {
            id: "ldap-scim-interop",
            credentials: [{ type: "bearer", id: "ldap-scim-interop-key", token }],
          },
        ],
      }),
    ],
  } satisfies BetterAuthOptions;
  // Memory adapter pitfall: reading a table that was never written throws "Model X not found".
  for (const table of Object.values(getAuthTables(options))) {
    store[table.modelName] ??= [];
  }
  const auth = betterAuth(options);
  handler = toNodeHandler(auth);

  let stopping = false;
  const shutdown = (code: number): void => {
    if (stopping) return;
    stopping = true;
    server.close(() => process.exit(code));
    server.closeAllConnections();
    // Never hang: the parent also has a SIGKILL fallback, but exit on our own first.
    setTimeout(() => process.exit(code), 2000).unref();
  };
  process.on("SIGTERM", () => shutdown(0));
  process.on("SIGINT", () => shutdown(0));
  // Parent gone (pipe closed) => go too.
  process.stdin.on("end", () => shutdown(0));
  process.stdin.on("error", () => shutdown(0));
  process.stdin.resume();

  process.stdout.write(
    `${JSON.stringify({ port, baseUrl: `${origin}${BASE_PATH}/scim/v2`, token })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`better-auth-scim-server failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
