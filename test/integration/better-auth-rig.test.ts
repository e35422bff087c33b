import { expect } from "chai";
import { startBetterAuthScim, type BetterAuthScimInternal } from "../support/better-auth-scim.js";

const SCIM_JSON = "application/scim+json";
const USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

interface ScimResource {
  id: string;
  [key: string]: unknown;
}
interface ScimList {
  schemas: string[];
  totalResults: number;
  Resources: ScimResource[];
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

describe("better-auth SCIM rig (child process)", function () {
  this.timeout(60_000);

  let ba: BetterAuthScimInternal | undefined;
  let startMs = 0;

  before(async () => {
    const t0 = performance.now();
    ba = await startBetterAuthScim();
    startMs = performance.now() - t0;
    console.log(`      better-auth SCIM child ready in ${Math.round(startMs)} ms at ${ba.baseUrl}`);
  });

  after(async () => {
    await ba?.stop();
  });

  function rig(): BetterAuthScimInternal {
    if (!ba) throw new Error("rig not started");
    return ba;
  }

  async function scim(
    method: string,
    path: string,
    body?: unknown,
    opts: { auth?: boolean } = {},
  ): Promise<{ status: number; headers: Headers; json: unknown }> {
    const { baseUrl, token } = rig();
    const headers: Record<string, string> = { Accept: SCIM_JSON };
    if (body !== undefined) headers["Content-Type"] = SCIM_JSON;
    if (opts.auth !== false) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
  }

  it("serves on loopback with a per-start random token", () => {
    const { baseUrl, token, port } = rig();
    expect(baseUrl).to.equal(`http://127.0.0.1:${port}/api/auth/scim/v2`);
    expect(token).to.be.a("string").with.length.greaterThan(20);
    expect(startMs).to.be.below(20_000);
  });

  let userId = "";
  const userName = `jdoe-${Date.now()}@example.test`;

  it("POST /Users → 201", async () => {
    const r = await scim("POST", "/Users", {
      schemas: [USER_SCHEMA],
      userName,
      externalId: "uid=jdoe,ou=people,dc=example,dc=test",
      name: { givenName: "Jane", familyName: "Doe" },
      displayName: "Jane Doe",
      emails: [{ value: userName, type: "work", primary: true }],
      active: true,
    });
    expect(r.status, JSON.stringify(r.json)).to.equal(201);
    const user = r.json as ScimResource;
    expect(user.id).to.be.a("string").and.not.empty;
    expect(user.userName).to.equal(userName);
    expect(user.active).to.equal(true);
    expect(r.headers.get("location")).to.equal(`${rig().baseUrl}/Users/${user.id}`);
    userId = user.id;
  });

  it('GET /Users?filter=userName eq "..." finds it', async () => {
    const filter = encodeURIComponent(`userName eq "${userName}"`);
    const r = await scim("GET", `/Users?filter=${filter}`);
    expect(r.status).to.equal(200);
    const list = r.json as ScimList;
    expect(list.schemas).to.deep.equal([LIST_SCHEMA]);
    expect(list.totalResults).to.equal(1);
    expect(list.Resources.map((u) => u.id)).to.deep.equal([userId]);
  });

  it("PATCH active false → 200, user inactive", async () => {
    const r = await scim("PATCH", `/Users/${userId}`, {
      schemas: [PATCH_SCHEMA],
      Operations: [{ op: "replace", path: "active", value: false }],
    });
    expect(r.status, JSON.stringify(r.json)).to.equal(200);
    expect((r.json as ScimResource).active).to.equal(false);
    const g = await scim("GET", `/Users/${userId}`);
    expect(g.status).to.equal(200);
    expect((g.json as ScimResource).active).to.equal(false);
  });

  it("POST /Groups with that member → 201", async () => {
    const r = await scim("POST", "/Groups", {
      schemas: [GROUP_SCHEMA],
      displayName: "interop-devs",
      externalId: "cn=interop-devs,ou=groups,dc=example,dc=test",
      members: [{ value: userId }],
    });
    expect(r.status, JSON.stringify(r.json)).to.equal(201);
    const group = r.json as ScimResource & { members?: { value: string }[] };
    expect(group.displayName).to.equal("interop-devs");
    expect((group.members ?? []).map((m) => m.value)).to.deep.equal([userId]);
  });

  it("request without token → 401", async () => {
    const r = await scim("GET", "/Users", undefined, { auth: false });
    expect(r.status).to.equal(401);
    const wrong = await fetch(`${rig().baseUrl}/Users`, {
      headers: { Accept: SCIM_JSON, Authorization: "Bearer not-the-token" },
    });
    expect(wrong.status).to.equal(401);
    await wrong.body?.cancel();
  });

  it("stop() ends the child, and is idempotent", async () => {
    const { pid } = rig();
    expect(processAlive(pid)).to.equal(true);
    const t0 = performance.now();
    await rig().stop();
    const stopMs = performance.now() - t0;
    console.log(`      child stopped in ${Math.round(stopMs)} ms`);
    expect(processAlive(pid)).to.equal(false);
    await rig().stop(); // second call: no throw, same result
    expect(processAlive(pid)).to.equal(false);
    let refused = false;
    try {
      await fetch(`${rig().baseUrl}/ServiceProviderConfig`);
    } catch {
      refused = true;
    }
    expect(refused, "server still answering after stop()").to.equal(true);
  });
});
