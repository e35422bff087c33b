import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FaultKind } from "../../src/sandbox/faults.js";
import { startSandbox, type RunningSandbox, type SandboxOptions } from "../../src/sandbox/server.js";
import { userBody } from "../support/scim-bodies.js";

const TOKEN = "sandbox-faults-token";
const ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error";
const PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

// Response bodies are whatever JSON the server sent; the assertions are the type check.
type Json = any;

/** What the client saw: an HTTP answer, or a connection that died without one. */
type Outcome =
  | { kind: "answer"; status: number; headers: Headers; body: Json }
  | { kind: "connection-error"; message: string };

async function call(
  sandbox: RunningSandbox,
  method: string,
  path: string,
  body?: unknown,
  token: string | null = TOKEN,
): Promise<Outcome> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/scim+json";
  try {
    const response = await fetch(sandbox.url + path, {
      method,
      headers,
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { kind: "answer", status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return { kind: "connection-error", message: `${String(error)} ${cause?.code ?? ""} ${cause?.message ?? ""}` };
  }
}

function statusOf(outcome: Outcome): number | "reset" {
  return outcome.kind === "answer" ? outcome.status : "reset";
}

function expectAnswer(outcome: Outcome, status: number): Json {
  expect(outcome.kind, JSON.stringify(outcome)).to.equal("answer");
  if (outcome.kind !== "answer") throw new Error("unreachable");
  expect(outcome.status, JSON.stringify(outcome.body)).to.equal(status);
  return outcome.body;
}

function expectInjected(outcome: Outcome, kind: FaultKind): void {
  if (kind === "reset") {
    expect(outcome.kind, JSON.stringify(outcome)).to.equal("connection-error");
    if (outcome.kind === "connection-error") {
      expect(outcome.message).to.match(/ECONNRESET|socket hang up|other side closed|fetch failed|UND_ERR_SOCKET/);
    }
    return;
  }
  const body = expectAnswer(outcome, Number(kind));
  expect(body).to.deep.equal({ schemas: [ERROR_SCHEMA], status: kind, detail: "injected fault" });
}


const userNames = (sandbox: RunningSandbox): string[] => sandbox.users().map((user) => user.userName).sort();

describe("SCIM sandbox fault injection", function () {
  const started: RunningSandbox[] = [];

  async function start(options: Partial<SandboxOptions> = {}): Promise<RunningSandbox> {
    const running = await startSandbox({ token: TOKEN, ...options });
    started.push(running);
    return running;
  }

  afterEach(() => Promise.all(started.splice(0).map((running) => running.close())));

  it("injects nothing with errorRate 0, and records no fault fields", async function () {
    const sandbox = await start({ faults: { errorRate: 0, afterWriteRate: 1, includeReads: true } });
    for (let n = 0; n < 20; n += 1) expectAnswer(await call(sandbox, "POST", "/Users", userBody(n)), 201);
    expectAnswer(await call(sandbox, "GET", "/Users"), 200);
    expect(sandbox.users()).to.have.length(20);
    expect(sandbox.faultCount()).to.deep.equal({ before: 0, after: 0 });
    expect(sandbox.requests.every((request) => !("fault" in request) && !("afterWrite" in request))).to.equal(true);
  });

  describe("before the write (afterWriteRate 0)", function () {
    for (const kind of ["500", "502", "503", "reset"] as const) {
      it(`${kind}: the POST fails and the user does not exist`, async function () {
        const sandbox = await start({ faults: { errorRate: 1, afterWriteRate: 0, kinds: [kind] } });
        expectInjected(await call(sandbox, "POST", "/Users", userBody(1)), kind);
        expect(sandbox.users()).to.deep.equal([]);
        expect(sandbox.faultCount()).to.deep.equal({ before: 1, after: 0 });
        expect(sandbox.requests.map(({ at: _at, ...rest }) => rest)).to.deep.equal([
          { method: "POST", path: new URL(sandbox.url).pathname + "/Users", status: kind === "reset" ? 0 : Number(kind), fault: kind, afterWrite: false },
        ]);

        // It was the fault and nothing else that stopped the write.
        sandbox.setFaults(undefined);
        expectAnswer(await call(sandbox, "POST", "/Users", userBody(1)), 201);
      });
    }

    it("with the default kinds, every POST answers 5xx or resets, and no user is created", async function () {
      const sandbox = await start({ faults: { errorRate: 1 } });
      const seen = new Set<number | "reset">();
      for (let n = 0; n < 30; n += 1) {
        const outcome = await call(sandbox, "POST", "/Users", userBody(n));
        const status = statusOf(outcome);
        expect(status === "reset" || (status >= 500 && status <= 599), JSON.stringify(outcome)).to.equal(true);
        seen.add(status);
      }
      expect(sandbox.users()).to.deep.equal([]);
      expect([...seen].sort()).to.deep.equal([500, 503, "reset"]);
      expect(sandbox.faultCount()).to.deep.equal({ before: 30, after: 0 });
    });

    it("leaves a user in place when its DELETE is faulted", async function () {
      const sandbox = await start();
      const user = expectAnswer(await call(sandbox, "POST", "/Users", userBody(1)), 201);
      sandbox.setFaults({ errorRate: 1, kinds: ["500"] });
      expectInjected(await call(sandbox, "DELETE", `/Users/${user.id}`), "500");
      expect(sandbox.users().map((u) => u.id)).to.deep.equal([user.id]);
    });
  });

  describe("after the write (afterWriteRate 1)", function () {
    for (const kind of ["500", "502", "503", "reset"] as const) {
      it(`${kind}: the POST fails but the user exists, and the same POST then answers 409`, async function () {
        const sandbox = await start({ faults: { errorRate: 1, afterWriteRate: 1, kinds: [kind] } });
        expectInjected(await call(sandbox, "POST", "/Users", userBody(1)), kind);
        expect(userNames(sandbox)).to.deep.equal(["user1@example.com"]);
        expect(sandbox.faultCount()).to.deep.equal({ before: 0, after: 1 });
        expect(sandbox.requests[0]).to.include({ fault: kind, afterWrite: true });

        sandbox.setFaults(undefined);
        const retry = expectAnswer(await call(sandbox, "POST", "/Users", userBody(1)), 409);
        expect(retry.scimType).to.equal("uniqueness");
        expect(sandbox.users()).to.have.length(1);
      });
    }

    it("applies a PATCH whose answer is lost", async function () {
      const sandbox = await start();
      const user = expectAnswer(await call(sandbox, "POST", "/Users", userBody(1)), 201);
      sandbox.setFaults({ errorRate: 1, afterWriteRate: 1, kinds: ["503"] });
      const patch = { schemas: [PATCH_OP], Operations: [{ op: "replace", path: "title", value: "Lead" }] };
      expectInjected(await call(sandbox, "PATCH", `/Users/${user.id}`, patch), "503");
      expect(sandbox.users()[0]?.title).to.equal("Lead");
    });

    it("saves an after-write change to the data file although the client got an error", async function () {
      const dir = await mkdtemp(join(tmpdir(), "sandbox-faults-"));
      try {
        const dataFile = join(dir, "sandbox.json");
        const first = await start({ dataFile, faults: { errorRate: 1, afterWriteRate: 1, kinds: ["500"] } });
        expectInjected(await call(first, "POST", "/Users", userBody(1)), "500");
        await first.close();
        const second = await start({ dataFile });
        expect(userNames(second)).to.deep.equal(["user1@example.com"]);
      } finally {
        await Promise.all(started.splice(0).map((running) => running.close()));
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe("seeded sequence", function () {
    /** 50 writes that change nothing (404s), so only the fault sequence differs between runs. */
    async function sequence(seed: number): Promise<{ server: string[]; client: Array<number | "reset"> }> {
      const sandbox = await start({
        faults: { errorRate: 0.5, afterWriteRate: 0.5, kinds: ["500", "502", "503", "reset"], seed },
      });
      const client: Array<number | "reset"> = [];
      for (let n = 0; n < 50; n += 1) client.push(statusOf(await call(sandbox, "DELETE", `/Users/${randomUUID()}`)));
      const server = sandbox.requests.map((request) => (request.fault ? `${request.fault}${request.afterWrite ? "+after" : ""}` : "-"));
      return { server, client };
    }

    it("repeats the same faults for the same seed and differs for another seed", async function () {
      const first = await sequence(7);
      const again = await sequence(7);
      const other = await sequence(8);
      expect(first.server).to.have.length(50);
      expect(again).to.deep.equal(first);
      expect(other.server).to.not.deep.equal(first.server);

      // Not a trivial sequence: faults and clean answers, before and after the write, of every kind.
      expect(first.server).to.include("-");
      expect(first.server.some((entry) => entry.endsWith("+after"))).to.equal(true);
      expect(first.server.some((entry) => entry !== "-" && !entry.endsWith("+after"))).to.equal(true);
      expect(new Set(first.client)).to.include.members([404, 500, 502, 503, "reset"]);
      // What the client saw is what the server recorded.
      first.server.forEach((entry, index) => {
        const expected = entry === "-" ? 404 : entry.startsWith("reset") ? "reset" : Number(entry.slice(0, 3));
        expect(first.client[index], `request ${index}`).to.equal(expected);
      });
    });

    it("spreads faults at about the configured rates", async function () {
      const sandbox = await start({ faults: { errorRate: 0.3, afterWriteRate: 0.5, kinds: ["500"], seed: 3 } });
      for (let n = 0; n < 200; n += 1) await call(sandbox, "DELETE", `/Users/${randomUUID()}`);
      const { before, after } = sandbox.faultCount();
      expect(before + after).to.be.within(40, 80);
      expect(after).to.be.within(Math.floor((before + after) * 0.25), Math.ceil((before + after) * 0.75));
    });

    it("restarts the sequence on setFaults", async function () {
      const faults = { errorRate: 0.5, kinds: ["500"] as FaultKind[], seed: 11 };
      const sandbox = await start({ faults });
      const run = async (): Promise<Array<number | "reset">> => {
        const statuses: Array<number | "reset"> = [];
        for (let n = 0; n < 20; n += 1) statuses.push(statusOf(await call(sandbox, "DELETE", `/Users/${randomUUID()}`)));
        return statuses;
      };
      const first = await run();
      sandbox.setFaults(faults);
      expect(await run()).to.deep.equal(first);
      expect(first).to.include.members([404, 500]);
    });
  });

  describe("reads, discovery, authentication and rate limit", function () {
    it("leaves reads alone unless includeReads", async function () {
      const sandbox = await start({ faults: { errorRate: 1, kinds: ["500"] } });
      for (let n = 0; n < 10; n += 1) {
        expectAnswer(await call(sandbox, "GET", "/Users"), 200);
        expectAnswer(await call(sandbox, "GET", `/Groups?filter=${encodeURIComponent('displayName eq "x"')}`), 200);
      }
      expect(sandbox.faultCount()).to.deep.equal({ before: 0, after: 0 });

      sandbox.setFaults({ errorRate: 1, kinds: ["500"], afterWriteRate: 1, includeReads: true });
      expectInjected(await call(sandbox, "GET", "/Users"), "500");
      // A read changes nothing, so its fault is never an after-write one.
      expect(sandbox.faultCount()).to.deep.equal({ before: 1, after: 0 });
      expect(sandbox.requests.at(-1)).to.include({ method: "GET", fault: "500", afterWrite: false });
    });

    it("never faults discovery endpoints or health", async function () {
      const sandbox = await start({ faults: { errorRate: 1, includeReads: true } });
      for (const path of ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes", "/ResourceTypes/User"]) {
        expectAnswer(await call(sandbox, "GET", path, undefined, null), 200);
        expectAnswer(await call(sandbox, "GET", path), 200);
      }
      const health = await fetch(`http://127.0.0.1:${sandbox.port}/healthz`);
      expect(health.status).to.equal(200);
      expect(sandbox.faultCount()).to.deep.equal({ before: 0, after: 0 });
    });

    it("answers 401 to an unauthenticated request even with errorRate 1, and writes nothing", async function () {
      const sandbox = await start({ faults: { errorRate: 1, afterWriteRate: 1, includeReads: true } });
      for (let n = 0; n < 10; n += 1) {
        const anonymous = expectAnswer(await call(sandbox, "POST", "/Users", userBody(n), null), 401);
        expect(anonymous.schemas).to.deep.equal([ERROR_SCHEMA]);
        expectAnswer(await call(sandbox, "POST", "/Users", userBody(n), "wrong-token"), 401);
        expectAnswer(await call(sandbox, "GET", "/Users", undefined, null), 401);
      }
      expect(sandbox.users()).to.deep.equal([]);
      expect(sandbox.faultCount()).to.deep.equal({ before: 0, after: 0 });
    });

    it("answers the rate limit's 429 ahead of any injected fault", async function () {
      const sandbox = await start({ rateLimit: { requestsPerSecond: 1 }, faults: { errorRate: 1, kinds: ["500"] } });
      expectInjected(await call(sandbox, "POST", "/Users", userBody(1)), "500");
      const limited = expectAnswer(await call(sandbox, "POST", "/Users", userBody(2)), 429);
      expect(limited.status).to.equal("429");
      expect(sandbox.requests.map((request) => [request.status, request.fault])).to.deep.equal([
        [500, "500"],
        [429, undefined],
      ]);
    });
  });

  describe("kinds and latency", function () {
    it("sends Retry-After: 1 with an injected 503, and none with a 500 or 502", async function () {
      const sandbox = await start({ faults: { errorRate: 1, kinds: ["503"] } });
      const unavailable = await call(sandbox, "POST", "/Users", userBody(1));
      expectInjected(unavailable, "503");
      expect(unavailable.kind === "answer" && unavailable.headers.get("retry-after")).to.equal("1");
      expect(unavailable.kind === "answer" && unavailable.headers.get("content-type")).to.equal("application/scim+json");

      for (const kind of ["500", "502"] as const) {
        sandbox.setFaults({ errorRate: 1, kinds: [kind] });
        const outcome = await call(sandbox, "POST", "/Users", userBody(1));
        expectInjected(outcome, kind);
        expect(outcome.kind === "answer" && outcome.headers.get("retry-after")).to.equal(null);
      }
    });

    it("resets the connection without an answer, and the sandbox keeps serving", async function () {
      const sandbox = await start({ faults: { errorRate: 1, kinds: ["reset"] } });
      for (let n = 0; n < 3; n += 1) expectInjected(await call(sandbox, "POST", "/Users", userBody(n)), "reset");
      expect(sandbox.requests.map((request) => request.status)).to.deep.equal([0, 0, 0]);
      sandbox.setFaults(undefined);
      expectAnswer(await call(sandbox, "POST", "/Users", userBody(1)), 201);
    });

    it("adds the configured latency to every request, reads and discovery included", async function () {
      const sandbox = await start({ faults: { latencyMs: { min: 100, max: 100 } } });
      for (const [method, path] of [
        ["GET", "/Users"],
        ["GET", "/ServiceProviderConfig"],
        ["POST", "/Users"],
      ] as const) {
        const began = performance.now();
        const outcome = await call(sandbox, method, path, method === "POST" ? userBody(1) : undefined);
        const took = performance.now() - began;
        expect(statusOf(outcome)).to.be.oneOf([200, 201]);
        expect(took, `${method} ${path}`).to.be.at.least(95);
      }
      expect(sandbox.faultCount()).to.deep.equal({ before: 0, after: 0 });
    });
  });

  describe("runtime control and counters", function () {
    it("turns faults off with setFaults(undefined) and counts before/after faults", async function () {
      const sandbox = await start({ faults: { errorRate: 1, afterWriteRate: 0, kinds: ["500"] } });
      for (let n = 0; n < 3; n += 1) expectInjected(await call(sandbox, "POST", "/Users", userBody(n)), "500");
      expect(sandbox.faultCount()).to.deep.equal({ before: 3, after: 0 });
      expect(sandbox.users()).to.have.length(0);

      sandbox.setFaults({ errorRate: 1, afterWriteRate: 1, kinds: ["502"] });
      for (let n = 10; n < 12; n += 1) expectInjected(await call(sandbox, "POST", "/Users", userBody(n)), "502");
      expect(sandbox.faultCount()).to.deep.equal({ before: 3, after: 2 });
      expect(sandbox.users()).to.have.length(2);

      sandbox.setFaults(undefined);
      for (let n = 20; n < 25; n += 1) expectAnswer(await call(sandbox, "POST", "/Users", userBody(n)), 201);
      expectAnswer(await call(sandbox, "GET", "/Users"), 200);
      expect(sandbox.faultCount()).to.deep.equal({ before: 3, after: 2 });
      expect(sandbox.users()).to.have.length(7);
      expect(sandbox.writeCount()).to.equal(10);

      sandbox.resetRequests();
      expect(sandbox.faultCount()).to.deep.equal({ before: 0, after: 0 });
    });

    it("logs injected faults", async function () {
      const log: string[] = [];
      const sandbox = await start({ log: (line) => log.push(line), faults: { errorRate: 1, afterWriteRate: 1, kinds: ["503"] } });
      await call(sandbox, "POST", "/Users", userBody(1));
      expect(log).to.have.length(1);
      expect(log[0]).to.match(/^POST \/scim\/directory\/sandbox\/Users 503 \(injected 503 after write\) \d+ms$/);
    });

    it("refuses invalid settings", async function () {
      const invalid = [
        { errorRate: 1.5 },
        { errorRate: -0.1 },
        { errorRate: Number.NaN },
        { afterWriteRate: 2 },
        { kinds: [] },
        { kinds: ["418" as FaultKind] },
        { latencyMs: { min: 50, max: 10 } },
        { latencyMs: { min: -1, max: 10 } },
        { seed: 1.5 },
      ];
      for (const faults of invalid) {
        let failure: unknown;
        await startSandbox({ token: TOKEN, faults }).then(
          (running) => started.push(running),
          (error: unknown) => (failure = error),
        );
        expect(String(failure), JSON.stringify(faults)).to.match(/^Error: faults\./);
      }
      const sandbox = await start();
      expect(() => sandbox.setFaults({ errorRate: 3 })).to.throw(/faults\.errorRate/);
    });
  });
});
