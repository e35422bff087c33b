import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { DEFAULT_MAX_PAGE_SIZE } from "./atlassian-rules.js";
import { resourceTypes, schemas, serviceProviderConfig } from "./discovery.js";
import { ScimError, notFound } from "./errors.js";
import { FaultInjector, InjectedFault, type FaultKind, type SandboxFaults } from "./faults.js";
import { rateLimitHeaders, type SandboxAnswerQuirks } from "./answer-quirks.js";
import { errorReply, readJsonBody, sendReply, type Reply } from "./http-io.js";
import { DebouncedSaver, readDataFile } from "./persistence.js";
import { SlidingWindowLimiter } from "./rate-limit.js";
import { renderGroup, renderUser } from "./render.js";
import { handleResource, type ResourceContext } from "./resource-routes.js";
import { SandboxStore, type StoreSnapshot } from "./store.js";
import type { ScimGroupResource, ScimUserResource } from "./types.js";

export type { ScimGroupResource, ScimUserResource } from "./types.js";
export type { FaultKind, SandboxFaults } from "./faults.js";
export type { SandboxAnswerQuirks } from "./answer-quirks.js";

/** Mirrors https://api.atlassian.com/scim/directory/{directoryId}. */
export const SANDBOX_BASE_PATH = "/scim/directory/sandbox";

/** The answer quirks (ignoreMembersOnGroupCreate, omitActive, ...) are each off unless set. */
export interface SandboxOptions extends SandboxAnswerQuirks {
  host?: string;
  port?: number;
  token: string;
  dataFile?: string;
  rateLimit?: { requestsPerSecond: number };
  maxPageSize?: number;
  log?: (line: string) => void;
  /**
   * Also refuse the creates of product group names (the connector's PRODUCT_GROUP_PATTERNS: jira-*, confluence-*),
   * which Atlassian takes and never propagates. Default false.
   */
  refuseProductGroups?: boolean;
  /** The organization's verified domains: an email moved off them, or a deactivation outside them, drops the groups. */
  verifiedDomains?: readonly string[];
  /** Names of groups the organization holds outside the SCIM directory: a create of one answers 409, unlisted. */
  organizationGroups?: readonly string[];
  /** Atlassian's cap on members per group (290,000 on its limits page): a change past it is refused. Default none. */
  maxGroupMembers?: number;
  /** Injected failures and latency, to test clients against a flaky SCIM side. Off by default. */
  faults?: SandboxFaults;
  /**
   * Also keep each request's JSON body in its record (`body`), for the benchmark's latency matching. Read at every
   * request, so a caller holding the options object may turn it on later. Default false.
   */
  recordBodies?: boolean;
}

export interface SandboxRequestRecord {
  method: string;
  path: string;
  /** 0 when the connection was reset instead of answered. */
  status: number;
  fault?: FaultKind;
  /** With `fault`: whether the request reached the store before failing (a write may have taken effect). */
  afterWrite?: boolean;
  /** When the answer went out (epoch ms): for measuring a client's pacing. */
  at: number;
  /** The parsed JSON body, only with the `recordBodies` option and when the request's body was read. */
  body?: unknown;
}

export interface RunningSandbox {
  url: string;
  port: number;
  requests: SandboxRequestRecord[];
  writeCount(): number;
  resetRequests(): void;
  setToken(token: string): void;
  /** Replaces the fault settings (restarting the seeded sequence); undefined turns faults off. */
  setFaults(faults: SandboxFaults | undefined): void;
  /** Injected faults among `requests`: before = nothing was changed, after = the request reached the store. */
  faultCount(): { before: number; after: number };
  users(): ScimUserResource[];
  groups(): ScimGroupResource[];
  close(): Promise<void>;
}

const WRITE_METHODS = new Set(["POST", "PATCH", "PUT", "DELETE"]);

export async function startSandbox(options: SandboxOptions): Promise<RunningSandbox> {
  const maxPageSize = options.maxPageSize ?? DEFAULT_MAX_PAGE_SIZE;
  if (!Number.isInteger(maxPageSize) || maxPageSize < 1) throw new Error(`maxPageSize must be a positive integer`);
  let tokenDigest = digestToken(options.token);
  const limiter = options.rateLimit ? new SlidingWindowLimiter(options.rateLimit.requestsPerSecond) : undefined;
  let faults = options.faults && new FaultInjector(options.faults);
  const store = new SandboxStore({
    refuseProductGroups: options.refuseProductGroups ?? false,
    ...(options.organizationGroups ? { organizationGroups: options.organizationGroups } : {}),
    ...(options.verifiedDomains ? { verifiedDomains: options.verifiedDomains.map((d) => d.toLowerCase()) } : {}),
    ...(options.maxGroupMembers !== undefined ? { maxGroupMembers: options.maxGroupMembers } : {}),
  });
  if (options.dataFile) await loadDataFile(store, options.dataFile);
  const log = options.log;
  const saver =
    options.dataFile === undefined
      ? undefined
      : new DebouncedSaver(
          options.dataFile,
          () => JSON.stringify(store.toSnapshot()),
          (error) => (log ?? console.error)(`sandbox: saving ${options.dataFile} failed: ${String(error)}`),
        );
  const requests: SandboxRequestRecord[] = [];
  const bodies = new WeakMap<IncomingMessage, unknown>();
  const context: ResourceContext = { store, baseUrl: "", maxPageSize, quirks: options };

  async function dispatch(req: IncomingMessage, url: URL): Promise<Reply> {
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "");
    if (path === "/healthz") return { status: 200, body: { status: "ok" } };
    if (!path.startsWith(`${SANDBOX_BASE_PATH}/`)) throw notFound(`No resource at ${url.pathname}.`);
    const retryAfter = limiter?.take() ?? 0;
    if (retryAfter > 0) {
      throw new ScimError(429, "Too many requests: the sandbox rate limit was exceeded.", undefined, rateLimitHeaders(retryAfter, options));
    }
    const [resource, id, ...rest] = path.slice(SANDBOX_BASE_PATH.length + 1).split("/").map(decodeSegment);
    if (resource === "ServiceProviderConfig" && id === undefined) return discoveryReply(serviceProviderConfig(maxPageSize));
    if (resource === "ResourceTypes" && rest.length === 0) return discoveryReply(resourceTypes(id));
    if (resource === "Schemas" && rest.length === 0) return discoveryReply(schemas(id));
    if ((resource !== "Users" && resource !== "Groups") || rest.length > 0) {
      throw notFound(`No resource at ${url.pathname}.`);
    }
    authenticate(req.headers.authorization, tokenDigest);
    const fault = faults?.decide(method);
    if (fault && !fault.afterWrite) {
      req.resume(); // the body is never read; let the client finish sending it
      throw fault;
    }
    const reply = await handleResource(
      {
        method,
        resource,
        id,
        query: url.searchParams,
        readBody: async () => {
          const body = await readJsonBody(req);
          if (options.recordBodies) bodies.set(req, body);
          return body;
        },
      },
      context,
    ).catch((error: unknown) => {
      // A refused write changed nothing, but its answer is lost all the same.
      if (fault) throw fault;
      throw error;
    });
    if (fault) throw fault;
    return reply;
  }

  async function respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const method = req.method ?? "GET";
    let path = req.url ?? "/";
    let reply: Reply;
    let fault: InjectedFault | undefined;
    try {
      const url = new URL(path, "http://sandbox.invalid");
      path = url.pathname;
      reply = await dispatch(req, url);
    } catch (error) {
      reply = errorReply(error);
      if (error instanceof InjectedFault) fault = error;
    }
    if (WRITE_METHODS.has(method) && (fault ? fault.afterWrite : reply.status < 300)) saver?.schedule();
    const delayMs = faults?.delayMs() ?? 0;
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    // Recorded before the answer goes out, so a client that has its response can rely on the record.
    requests.push({
      method,
      path,
      status: reply.status,
      at: Date.now(),
      ...(fault && { fault: fault.kind, afterWrite: fault.afterWrite }),
      ...(bodies.has(req) && { body: bodies.get(req) }),
    });
    if (fault?.kind === "reset") req.socket.destroy();
    else sendReply(res, reply);
    const injected = fault ? ` (injected ${fault.kind}${fault.afterWrite ? " after write" : ""})` : "";
    log?.(`${method} ${path} ${reply.status}${injected} ${Math.round(performance.now() - started)}ms`);
  }

  const server = createServer((req, res) => void respond(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${urlHost(address.address)}:${address.port}${SANDBOX_BASE_PATH}`;
  context.baseUrl = url;

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    requests,
    writeCount: () => requests.filter((request) => WRITE_METHODS.has(request.method)).length,
    resetRequests: () => {
      requests.length = 0; // the same array, so that a caller holding `requests` sees the reset
    },
    setToken: (token) => {
      tokenDigest = digestToken(token);
    },
    setFaults: (next) => {
      faults = next && new FaultInjector(next);
    },
    faultCount: () => ({
      before: requests.filter((request) => request.fault && !request.afterWrite).length,
      after: requests.filter((request) => request.fault && request.afterWrite).length,
    }),
    users: () => store.allUsers().map((record) => renderUser(record, url)),
    groups: () => store.allGroups().map((record) => renderGroup(record, url, store, true)),
    close: () =>
      (closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await saver?.flush();
      })()),
  };
}

async function loadDataFile(store: SandboxStore, file: string): Promise<void> {
  const text = await readDataFile(file);
  if (text === undefined) return;
  try {
    store.load(JSON.parse(text) as StoreSnapshot);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`sandbox dataFile ${file} cannot be loaded: ${reason}`);
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw notFound(`Malformed path segment [${segment}].`);
  }
}

function discoveryReply(body: object | undefined): Reply {
  if (body === undefined) throw notFound("No such discovery resource.");
  return { status: 200, body };
}

/** Digests have one length, so the comparison takes the same time whatever token is tried. */
function digestToken(token: string): Buffer {
  if (!token) throw new Error("sandbox token must not be empty");
  return createHash("sha256").update(token).digest();
}

function authenticate(header: string | undefined, expected: Buffer): void {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  if (!match?.[1]) {
    throw new ScimError(401, "Authorization header with a Bearer token is required.", undefined, {
      "WWW-Authenticate": 'Bearer realm="SCIM"',
    });
  }
  if (!timingSafeEqual(createHash("sha256").update(match[1]).digest(), expected)) {
    throw new ScimError(401, "The bearer token is not valid for this directory (expired, revoked or rotated).", undefined, {
      "WWW-Authenticate": 'Bearer realm="SCIM"',
    });
  }
}

function urlHost(address: string): string {
  if (address === "0.0.0.0") return "127.0.0.1";
  if (address === "::") return "[::1]";
  return address.includes(":") ? `[${address}]` : address;
}
