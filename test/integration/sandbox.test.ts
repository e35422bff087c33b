import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REFUSED_GROUP_NAMES } from "../../src/sandbox/atlassian-rules.js";
import { startSandbox, type RunningSandbox, type SandboxOptions } from "../../src/sandbox/server.js";
import type { StoreSnapshot } from "../../src/sandbox/store.js";
import { userBody } from "../support/scim-bodies.js";

const TOKEN = "sandbox-test-token";
const PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// Response bodies are whatever JSON the server sent; the assertions are the type check.
type Json = any;

interface Answer {
  status: number;
  headers: Headers;
  body: Json;
}

interface CallOptions {
  token?: string | null;
  contentType?: string;
}

async function call(sandbox: RunningSandbox, method: string, path: string, body?: unknown, options: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (body !== undefined) {
    headers["Content-Type"] = options.contentType ?? "application/scim+json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(sandbox.url + path, { method, headers, body: payload });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}


const patchBody = (...Operations: unknown[]): unknown => ({ schemas: [PATCH_OP], Operations });

async function createUser(sandbox: RunningSandbox, n: number, extra: Record<string, unknown> = {}): Promise<Json> {
  const answer = await call(sandbox, "POST", "/Users", userBody(n, extra));
  expect(answer.status, JSON.stringify(answer.body)).to.equal(201);
  return answer.body;
}

async function createGroup(sandbox: RunningSandbox, displayName: string, memberIds: string[] = []): Promise<Json> {
  const answer = await call(sandbox, "POST", "/Groups", {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    displayName,
    members: memberIds.map((value) => ({ value })),
  });
  expect(answer.status, JSON.stringify(answer.body)).to.equal(201);
  return answer.body;
}

function expectScimError(answer: Answer, status: number, scimType?: string): void {
  expect(answer.status, JSON.stringify(answer.body)).to.equal(status);
  expect(answer.headers.get("content-type")).to.equal("application/scim+json");
  expect(answer.body.schemas).to.deep.equal([ERROR_SCHEMA]);
  expect(answer.body.status).to.equal(String(status));
  expect(answer.body.detail).to.be.a("string").that.is.not.empty;
  if (scimType) expect(answer.body.scimType).to.equal(scimType);
}

const memberValues = (group: Json): string[] => (group.members as Array<{ value: string }>).map((m) => m.value).sort();

describe("SCIM sandbox (Atlassian-style)", function () {
  let sandbox: RunningSandbox;
  const started: RunningSandbox[] = [];

  async function start(options: Partial<SandboxOptions> = {}): Promise<RunningSandbox> {
    const running = await startSandbox({ token: TOKEN, ...options });
    started.push(running);
    return running;
  }

  beforeEach(async function () {
    sandbox = await start();
  });

  const closeAll = (): Promise<unknown> => Promise.all(started.splice(0).map((running) => running.close()));
  afterEach(closeAll);

  describe("endpoint", function () {
    it("serves health and discovery without a token, under the Atlassian-like base path", async function () {
      expect(sandbox.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/scim\/directory\/sandbox$/);
      expect(sandbox.url).to.contain(`:${sandbox.port}/`);
      const health = await fetch(`http://127.0.0.1:${sandbox.port}/healthz`);
      expect(health.status).to.equal(200);

      const config = await call(sandbox, "GET", "/ServiceProviderConfig", undefined, { token: null });
      expect(config.status).to.equal(200);
      expect(config.headers.get("content-type")).to.equal("application/scim+json");
      expect(config.body.patch.supported).to.equal(true);
      expect(config.body.filter.maxResults).to.equal(100);

      const types = await call(sandbox, "GET", "/ResourceTypes", undefined, { token: null });
      expect(types.body.schemas).to.deep.equal([LIST_SCHEMA]);
      expect(types.body.Resources.map((t: Json) => t.endpoint)).to.deep.equal(["/Users", "/Groups"]);

      const schemas = await call(sandbox, "GET", "/Schemas", undefined, { token: null });
      expect(schemas.body.Resources.map((s: Json) => s.id)).to.include(ENTERPRISE);
    });

    it("answers 401 without or with a wrong bearer token, and rotates keys with setToken", async function () {
      expectScimError(await call(sandbox, "GET", "/Users", undefined, { token: null }), 401);
      expectScimError(await call(sandbox, "GET", "/Users", undefined, { token: "wrong" }), 401);
      expect((await call(sandbox, "GET", "/Users")).status).to.equal(200);

      sandbox.setToken("rotated-token");
      expectScimError(await call(sandbox, "GET", "/Users"), 401);
      expectScimError(await call(sandbox, "POST", "/Groups", { displayName: "g" }), 401);
      expect((await call(sandbox, "GET", "/Users", undefined, { token: "rotated-token" })).status).to.equal(200);
      expect(sandbox.groups()).to.have.length(0);
    });

    it("answers 400 invalidSyntax to a body that is not JSON, 415 to other media types, and accepts application/json", async function () {
      expectScimError(await call(sandbox, "POST", "/Users", "{not json"), 400, "invalidSyntax");
      expectScimError(await call(sandbox, "POST", "/Users", JSON.stringify(userBody(1)), { contentType: "text/plain" }), 415);
      const created = await call(sandbox, "POST", "/Users", userBody(1), { contentType: "application/json; charset=utf-8" });
      expect(created.status).to.equal(201);
    });

    it("refuses a body over 10 MB with 413", async function () {
      const huge = JSON.stringify(userBody(1, { title: "x".repeat(11 * 1024 * 1024) }));
      expectScimError(await call(sandbox, "POST", "/Users", huge), 413);
      expect(sandbox.users()).to.have.length(0);
    });

    it("answers 404 for unknown paths", async function () {
      expectScimError(await call(sandbox, "GET", "/Widgets"), 404);
      expect((await fetch(`http://127.0.0.1:${sandbox.port}/elsewhere`)).status).to.equal(404);
    });
  });

  describe("users", function () {
    it("creates a user (201, UUID id, meta, Location) and gets it back as sent", async function () {
      const enterprise = { department: "R&D", organization: "Example Ltd" };
      const answer = await call(
        sandbox,
        "POST",
        "/Users",
        userBody(1, { title: "Engineer", department: "Top Dept", [ENTERPRISE]: enterprise, timezone: "Europe/Paris" }),
      );
      expect(answer.status).to.equal(201);
      const user = answer.body;
      expect(user.id).to.match(UUID);
      expect(user.active).to.equal(true);
      expect(user.meta.resourceType).to.equal("User");
      expect(user.meta.location).to.equal(`${sandbox.url}/Users/${user.id}`);
      expect(answer.headers.get("location")).to.equal(user.meta.location);
      expect(Date.parse(user.meta.created)).to.be.a("number").and.not.NaN;
      expect(user.department).to.equal("Top Dept");
      expect(user[ENTERPRISE]).to.deep.equal(enterprise);
      expect(user.schemas).to.include(ENTERPRISE);
      expect(user.emails).to.deep.equal([{ value: "user1@example.com", primary: true, type: "work" }]);

      const fetched = await call(sandbox, "GET", `/Users/${user.id}`);
      expect(fetched.status).to.equal(200);
      expect(fetched.body).to.deep.equal(user);
      expect(sandbox.users()).to.deep.equal([user]);
    });

    it("requires userName", async function () {
      expectScimError(await call(sandbox, "POST", "/Users", { emails: [{ value: "a@example.com" }] }), 400);
      expect(sandbox.users()).to.have.length(0);
    });

    it("answers 404 for an unknown id", async function () {
      expectScimError(await call(sandbox, "GET", `/Users/${randomUUID()}`), 404);
    });

    it("answers 409 uniqueness on a duplicate userName, email (any case) or externalId", async function () {
      await createUser(sandbox, 1);
      const sameUserName = await call(sandbox, "POST", "/Users", userBody(2, { userName: "USER1@example.com" }));
      expectScimError(sameUserName, 409, "uniqueness");

      const sameEmail = await call(sandbox, "POST", "/Users", userBody(3, { emails: [{ value: "User1@Example.COM" }] }));
      expectScimError(sameEmail, 409, "uniqueness");
      expect(sameEmail.body.detail).to.equal("Resource [USER]: with email[User1@Example.COM] already exists.");

      expectScimError(await call(sandbox, "POST", "/Users", userBody(4, { externalId: "ext-1" })), 409, "uniqueness");
      expect(sandbox.users()).to.have.length(1);
    });

    it("lists 250 users in creation order, in pages of at most 100", async function () {
      const ids: string[] = [];
      for (let batch = 0; batch < 5; batch++) {
        // Sequential batches keep creation order known while still creating quickly.
        const created = await Promise.all(Array.from({ length: 50 }, (_, i) => createUser(sandbox, batch * 50 + i)));
        ids.push(...created.map((user) => user.id as string));
      }
      const seen: string[] = [];
      const pageSizes: number[] = [];
      for (let startIndex = 1; ; ) {
        const page = await call(sandbox, "GET", `/Users?startIndex=${startIndex}&count=100`);
        expect(page.status).to.equal(200);
        expect(page.body.schemas).to.deep.equal([LIST_SCHEMA]);
        expect(page.body.totalResults).to.equal(250);
        expect(page.body.startIndex).to.equal(startIndex);
        expect(page.body.itemsPerPage).to.equal(page.body.Resources.length);
        pageSizes.push(page.body.Resources.length);
        seen.push(...page.body.Resources.map((user: Json) => user.id));
        startIndex += page.body.Resources.length;
        if (startIndex > page.body.totalResults) break;
      }
      expect(pageSizes).to.deep.equal([100, 100, 50]);
      expect(new Set(seen).size).to.equal(250);
      // Within a batch creation was concurrent, so compare as sets per batch of 50 and as a whole.
      for (let batch = 0; batch < 5; batch++) {
        expect(new Set(seen.slice(batch * 50, batch * 50 + 50))).to.deep.equal(new Set(ids.slice(batch * 50, batch * 50 + 50)));
      }

      const capped = await call(sandbox, "GET", "/Users?count=500");
      expect(capped.body.itemsPerPage).to.equal(100);
      expect(capped.body.totalResults).to.equal(250);
      const beyond = await call(sandbox, "GET", "/Users?startIndex=300");
      expect(beyond.body.Resources).to.deep.equal([]);
      expect(beyond.body.totalResults).to.equal(250);
    });

    it("honours a smaller maxPageSize", async function () {
      const small = await start({ maxPageSize: 2 });
      for (let n = 0; n < 3; n++) await createUser(small, n);
      const page = await call(small, "GET", "/Users?count=50");
      expect(page.body.itemsPerPage).to.equal(2);
      expect(page.body.totalResults).to.equal(3);
    });

    it("filters on one eq: userName (any case), externalId (exact), emails.value", async function () {
      const user = await createUser(sandbox, 7, { emails: [{ value: "Seven@Example.com", primary: true }] });
      await createUser(sandbox, 8);

      const byUserName = await call(sandbox, "GET", `/Users?filter=${encodeURIComponent('userName eq "USER7@EXAMPLE.COM"')}`);
      expect(byUserName.body.totalResults).to.equal(1);
      expect(byUserName.body.Resources[0].id).to.equal(user.id);

      const byExternalId = await call(sandbox, "GET", `/Users?filter=${encodeURIComponent('externalId eq "ext-7"')}`);
      expect(byExternalId.body.Resources.map((u: Json) => u.id)).to.deep.equal([user.id]);
      const wrongCase = await call(sandbox, "GET", `/Users?filter=${encodeURIComponent('externalId eq "EXT-7"')}`);
      expect(wrongCase.body.totalResults).to.equal(0);

      const byEmail = await call(sandbox, "GET", `/Users?filter=${encodeURIComponent('emails.value eq "seven@example.com"')}`);
      expect(byEmail.body.Resources.map((u: Json) => u.id)).to.deep.equal([user.id]);

      const none = await call(sandbox, "GET", `/Users?filter=${encodeURIComponent('userName eq "nobody@example.com"')}`);
      expect(none.status).to.equal(200);
      expect(none.body.totalResults).to.equal(0);
      expect(none.body.Resources).to.deep.equal([]);
    });

    it("answers 400 invalidFilter to anything but one eq on a supported attribute", async function () {
      for (const filter of [
        'userName eq "a" and externalId eq "b"',
        'userName eq "a" or userName eq "b"',
        'userName co "a"',
        'userName sw "a"',
        'title eq "Engineer"',
        "userName eq",
        'not (userName eq "a")',
      ]) {
        const answer = await call(sandbox, "GET", `/Users?filter=${encodeURIComponent(filter)}`);
        expectScimError(answer, 400, "invalidFilter");
      }
    });

    it("PATCHes title, active, enterprise department, name parts, and removes", async function () {
      const user = await createUser(sandbox, 1, { title: "Engineer" });
      const path = `/Users/${user.id}`;

      const retitled = await call(sandbox, "PATCH", path, patchBody({ op: "replace", path: "title", value: "Lead" }));
      expect(retitled.status).to.equal(200);
      expect(retitled.body.title).to.equal("Lead");
      expect(retitled.body.id).to.equal(user.id);
      expect(retitled.body.userName).to.equal(user.userName);

      const deactivated = await call(sandbox, "PATCH", path, patchBody({ op: "Replace", path: "active", value: false }));
      expect(deactivated.body.active).to.equal(false);
      const reactivated = await call(sandbox, "PATCH", path, patchBody({ op: "replace", path: "active", value: "True" }));
      expect(reactivated.body.active).to.equal(true);

      const moved = await call(
        sandbox,
        "PATCH",
        path,
        patchBody(
          { op: "add", path: `${ENTERPRISE}:department`, value: "Sales" },
          { op: "replace", path: "name.givenName", value: "Renamed" },
        ),
      );
      expect(moved.body[ENTERPRISE]).to.deep.equal({ department: "Sales" });
      expect(moved.body.schemas).to.include(ENTERPRISE);
      expect(moved.body.name).to.deep.equal({ givenName: "Renamed", familyName: "Family1" });

      const removed = await call(
        sandbox,
        "PATCH",
        path,
        patchBody({ op: "remove", path: "title" }, { op: "remove", path: `${ENTERPRISE}:department` }),
      );
      expect(removed.body).to.not.have.property("title");
      expect(removed.body).to.not.have.property(ENTERPRISE);
      expect(removed.body.schemas).to.not.include(ENTERPRISE);

      const merged = await call(
        sandbox,
        "PATCH",
        path,
        patchBody({ op: "replace", value: { displayName: "Merged", nickName: "M", [ENTERPRISE]: { organization: "Org" } } }),
      );
      expect(merged.body.displayName).to.equal("Merged");
      expect(merged.body.nickName).to.equal("M");
      expect(merged.body[ENTERPRISE]).to.deep.equal({ organization: "Org" });

      expect((await call(sandbox, "GET", path)).body).to.deep.equal(merged.body);
      expect(new Date(merged.body.meta.lastModified).getTime()).to.be.at.least(new Date(user.meta.lastModified).getTime());
    });

    it("refuses bad PATCH bodies and re-checks uniqueness", async function () {
      const first = await createUser(sandbox, 1);
      const second = await createUser(sandbox, 2);
      const path = `/Users/${second.id}`;
      expectScimError(await call(sandbox, "PATCH", path, { Operations: [{ op: "replace", path: "title", value: "x" }] }), 400);
      expectScimError(await call(sandbox, "PATCH", path, patchBody({ op: "frobnicate", path: "title", value: "x" })), 400);
      expectScimError(await call(sandbox, "PATCH", path, patchBody({ op: "replace", path: "shoeSize", value: "9" })), 400, "invalidPath");
      expectScimError(await call(sandbox, "PATCH", path, patchBody({ op: "replace", path: "active", value: "maybe" })), 400);
      expectScimError(await call(sandbox, "PATCH", path, patchBody({ op: "remove", path: "userName" })), 400);
      const clash = await call(
        sandbox,
        "PATCH",
        path,
        patchBody({ op: "replace", path: "emails", value: [{ value: first.userName.toUpperCase(), primary: true }] }),
      );
      expectScimError(clash, 409, "uniqueness");
      expectScimError(await call(sandbox, "PATCH", path, patchBody({ op: "replace", path: "userName", value: first.userName })), 409);
      expectScimError(await call(sandbox, "PATCH", `/Users/${randomUUID()}`, patchBody({ op: "remove", path: "title" })), 404);
      // Nothing above may have changed the user.
      expect((await call(sandbox, "GET", path)).body).to.deep.equal(second);
    });

    it("frees a userName and email changed by PATCH for another user", async function () {
      const user = await createUser(sandbox, 1);
      await call(
        sandbox,
        "PATCH",
        `/Users/${user.id}`,
        patchBody(
          { op: "replace", path: "userName", value: "moved@example.com" },
          { op: "replace", path: "emails", value: [{ value: "moved@example.com", primary: true }] },
        ),
      );
      await createUser(sandbox, 1, { externalId: "ext-new" });
      const moved = await call(sandbox, "GET", `/Users?filter=${encodeURIComponent('emails.value eq "MOVED@example.com"')}`);
      expect(moved.body.Resources.map((u: Json) => u.id)).to.deep.equal([user.id]);
    });

    it("PUT replaces the whole user and clears what was left out", async function () {
      const user = await createUser(sandbox, 1, { title: "Engineer", [ENTERPRISE]: { department: "R&D" } });
      const answer = await call(sandbox, "PUT", `/Users/${user.id}`, {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: user.userName,
        emails: user.emails,
        active: false,
      });
      expect(answer.status).to.equal(200);
      expect(answer.body.id).to.equal(user.id);
      expect(answer.body.active).to.equal(false);
      for (const cleared of ["title", "externalId", "name", "displayName", ENTERPRISE]) {
        expect(answer.body, cleared).to.not.have.property(cleared);
      }
      expect(answer.body.meta.created).to.equal(user.meta.created);
      // The cleared externalId is free again.
      await createUser(sandbox, 2, { externalId: "ext-1" });
    });

    it("DELETE removes the record and its memberships, and the email may be created again", async function () {
      const user = await createUser(sandbox, 1);
      const other = await createUser(sandbox, 2);
      const group = await createGroup(sandbox, "engineering", [user.id, other.id]);

      const deleted = await call(sandbox, "DELETE", `/Users/${user.id}`);
      expect(deleted.status).to.equal(204);
      expectScimError(await call(sandbox, "GET", `/Users/${user.id}`), 404);
      expectScimError(await call(sandbox, "DELETE", `/Users/${user.id}`), 404);
      const after = await call(sandbox, "GET", `/Groups/${group.id}`);
      expect(memberValues(after.body)).to.deep.equal([other.id]);

      const again = await createUser(sandbox, 1);
      expect(again.id).to.not.equal(user.id);
      expect(sandbox.users().map((u) => u.id)).to.deep.equal([other.id, again.id]);
    });
  });

  describe("groups", function () {
    it("creates a group with members shown with their display names, and gets it", async function () {
      const a = await createUser(sandbox, 1);
      const b = await createUser(sandbox, 2);
      const answer = await call(sandbox, "POST", "/Groups", {
        displayName: "Engineering",
        externalId: "grp-1",
        members: [{ value: a.id }, { value: b.id }],
      });
      expect(answer.status).to.equal(201);
      const group = answer.body;
      expect(group.id).to.match(UUID);
      expect(group.schemas).to.deep.equal(["urn:ietf:params:scim:schemas:core:2.0:Group"]);
      expect(group.externalId).to.equal("grp-1");
      expect(group.members).to.deep.equal([
        { value: a.id, display: "User 1" },
        { value: b.id, display: "User 2" },
      ]);
      expect(group.meta.location).to.equal(`${sandbox.url}/Groups/${group.id}`);
      expect(answer.headers.get("location")).to.equal(group.meta.location);
      expect((await call(sandbox, "GET", `/Groups/${group.id}`)).body).to.deep.equal(group);
      expect(sandbox.groups()).to.deep.equal([group]);
    });

    it("answers 409 on a duplicate displayName in any case", async function () {
      await createGroup(sandbox, "Engineering");
      const answer = await call(sandbox, "POST", "/Groups", { displayName: "ENGINEERING" });
      expectScimError(answer, 409, "uniqueness");
      expect(answer.body.detail).to.equal("Resource [GROUP]: with displayName already exists.");
      expect(sandbox.groups()).to.have.length(1);
    });

    it("refuses Atlassian's built-in group names, in any case", async function () {
      expect(REFUSED_GROUP_NAMES).to.include.members(["site-admins", "org-admins", "system-administrators"]);
      for (const name of [...REFUSED_GROUP_NAMES, "Site-Admins"]) {
        const answer = await call(sandbox, "POST", "/Groups", { displayName: name });
        expectScimError(answer, 400);
        expect(answer.body.detail).to.contain(name).and.to.contain("managed by Atlassian");
      }
      expect(sandbox.groups()).to.have.length(0);
    });

    it("allows jira-*/confluence-* names by default and refuses them when the site does", async function () {
      await createGroup(sandbox, "jira-software-users");
      const strict = await start({ refuseProductGroups: true });
      expectScimError(await call(strict, "POST", "/Groups", { displayName: "confluence-users" }), 400);
      expect(strict.groups()).to.have.length(0);
    });

    it("answers 400 naming the member that is not a user of this directory", async function () {
      const user = await createUser(sandbox, 1);
      const ghost = randomUUID();
      const answer = await call(sandbox, "POST", "/Groups", { displayName: "g", members: [{ value: user.id }, { value: ghost }] });
      expectScimError(answer, 400);
      expect(answer.body.detail).to.contain("One or more Group members are invalid").and.to.contain(ghost);
      expect(sandbox.groups()).to.have.length(0);
    });

    it("filters by displayName (any case) and externalId, pages, and can leave members out", async function () {
      const user = await createUser(sandbox, 1);
      const group = await createGroup(sandbox, "Engineering", [user.id]);
      await createGroup(sandbox, "Sales");

      const byName = await call(sandbox, "GET", `/Groups?filter=${encodeURIComponent('displayName eq "engineering"')}`);
      expect(byName.body.totalResults).to.equal(1);
      expect(byName.body.Resources[0].id).to.equal(group.id);
      expect(byName.body.Resources[0].members).to.have.length(1);

      await call(sandbox, "PATCH", `/Groups/${group.id}`, patchBody({ op: "replace", path: "externalId", value: "grp-9" }));
      const byExternalId = await call(sandbox, "GET", `/Groups?filter=${encodeURIComponent('externalId eq "grp-9"')}`);
      expect(byExternalId.body.Resources.map((g: Json) => g.id)).to.deep.equal([group.id]);

      const slim = await call(sandbox, "GET", "/Groups?excludedAttributes=members&count=1");
      expect(slim.body.totalResults).to.equal(2);
      expect(slim.body.Resources).to.have.length(1);
      expect(slim.body.Resources[0]).to.not.have.property("members");
      const slimOne = await call(sandbox, "GET", `/Groups/${group.id}?excludedAttributes=members`);
      expect(slimOne.body).to.not.have.property("members");
      expect(slimOne.body.displayName).to.equal("Engineering");

      expectScimError(await call(sandbox, "GET", `/Groups?filter=${encodeURIComponent('displayName sw "Eng"')}`), 400, "invalidFilter");
    });

    it("PATCHes members: add (re-add is a no-op), both remove forms, remove all, replace", async function () {
      const [a, b, c] = await Promise.all([1, 2, 3].map((n) => createUser(sandbox, n)));
      const group = await createGroup(sandbox, "Engineering", [a.id]);
      const path = `/Groups/${group.id}`;

      const added = await call(sandbox, "PATCH", path, patchBody({ op: "add", path: "members", value: [{ value: a.id }, { value: b.id }, { value: c.id }] }));
      expect(added.status).to.equal(200);
      expect(memberValues(added.body)).to.deep.equal([a.id, b.id, c.id].sort());

      const byFilter = await call(sandbox, "PATCH", path, patchBody({ op: "remove", path: `members[value eq "${a.id}"]` }));
      expect(memberValues(byFilter.body)).to.deep.equal([b.id, c.id].sort());

      const byList = await call(sandbox, "PATCH", path, patchBody({ op: "remove", path: "members", value: [{ value: b.id }] }));
      expect(memberValues(byList.body)).to.deep.equal([c.id]);

      const replaced = await call(sandbox, "PATCH", path, patchBody({ op: "replace", path: "members", value: [{ value: a.id }, { value: b.id }] }));
      expect(memberValues(replaced.body)).to.deep.equal([a.id, b.id].sort());

      const cleared = await call(sandbox, "PATCH", path, patchBody({ op: "remove", path: "members" }));
      expect(cleared.body.members).to.deep.equal([]);

      const several = await call(
        sandbox,
        "PATCH",
        `${path}?excludedAttributes=members`,
        patchBody(
          { op: "add", path: "members", value: [{ value: a.id }, { value: b.id }] },
          { op: "remove", path: `members[value eq "${b.id}"]` },
          { op: "replace", path: "externalId", value: "grp-7" },
        ),
      );
      expect(several.body).to.not.have.property("members");
      expect(several.body.externalId).to.equal("grp-7");
      expect(memberValues((await call(sandbox, "GET", path)).body)).to.deep.equal([a.id]);
    });

    it("refuses a rename and an unknown member without changing the group", async function () {
      const user = await createUser(sandbox, 1);
      const group = await createGroup(sandbox, "Engineering");
      const path = `/Groups/${group.id}`;

      const rename = await call(
        sandbox,
        "PATCH",
        path,
        patchBody({ op: "add", path: "members", value: [{ value: user.id }] }, { op: "replace", path: "displayName", value: "Platform" }),
      );
      expectScimError(rename, 400);
      expect(rename.body.detail).to.equal("group rename is not supported");
      const pathless = await call(sandbox, "PATCH", path, patchBody({ op: "replace", value: { displayName: "Platform" } }));
      expect(pathless.body.detail).to.equal("group rename is not supported");

      const ghost = randomUUID();
      const invalid = await call(sandbox, "PATCH", path, patchBody({ op: "add", path: "members", value: [{ value: ghost }] }));
      expectScimError(invalid, 400);
      expect(invalid.body.detail).to.contain(ghost);

      const unchanged = await call(sandbox, "GET", path);
      expect(unchanged.body.displayName).to.equal("Engineering");
      expect(unchanged.body.members).to.deep.equal([]);
      // Replacing the name with itself is not a rename.
      const same = await call(sandbox, "PATCH", path, patchBody({ op: "replace", path: "displayName", value: "Engineering" }));
      expect(same.status).to.equal(200);
    });

    it("PUT replaces members and externalId but refuses a new name", async function () {
      const [a, b] = await Promise.all([1, 2].map((n) => createUser(sandbox, n)));
      const group = await createGroup(sandbox, "Engineering", [a.id]);
      const path = `/Groups/${group.id}`;
      const tagged = await call(sandbox, "PATCH", path, patchBody({ op: "add", path: "externalId", value: "grp-1" }));
      expect(tagged.body.externalId).to.equal("grp-1");
      const put = await call(sandbox, "PUT", path, { displayName: "Engineering", members: [{ value: b.id }] });
      expect(put.status).to.equal(200);
      expect(memberValues(put.body)).to.deep.equal([b.id]);
      expect(put.body).to.not.have.property("externalId");

      const renamed = await call(sandbox, "PUT", path, { displayName: "Platform", members: [] });
      expectScimError(renamed, 400);
      expect(renamed.body.detail).to.equal("group rename is not supported");
      expect(memberValues((await call(sandbox, "GET", path)).body)).to.deep.equal([b.id]);
    });

    it("DELETE removes the group", async function () {
      const group = await createGroup(sandbox, "Engineering");
      expect((await call(sandbox, "DELETE", `/Groups/${group.id}`)).status).to.equal(204);
      expectScimError(await call(sandbox, "GET", `/Groups/${group.id}`), 404);
      // The name is free again.
      await createGroup(sandbox, "engineering");
    });
  });

  describe("request log, rate limit and persistence", function () {
    it("records every request without its query, and counts writes whatever their status", async function () {
      const log: string[] = [];
      const logged = await start({ log: (line) => log.push(line) });
      const user = await createUser(logged, 1);
      expectScimError(await call(logged, "POST", "/Users", userBody(1)), 409);
      await call(logged, "GET", "/Users?filter=userName%20eq%20%22x%22");
      const ghost = randomUUID();
      await call(logged, "PATCH", `/Users/${ghost}`, patchBody({ op: "remove", path: "title" }));
      await call(logged, "DELETE", `/Users/${user.id}`);

      const base = new URL(logged.url).pathname;
      // Each record carries when it was answered, in order.
      const times = logged.requests.map((r) => r.at);
      expect(times.every((t, i) => Number.isInteger(t) && t >= (times[i - 1] ?? 0) && Math.abs(t - Date.now()) < 60_000)).to.equal(true);
      expect(logged.requests.map(({ at: _at, ...rest }) => rest)).to.deep.equal([
        { method: "POST", path: `${base}/Users`, status: 201 },
        { method: "POST", path: `${base}/Users`, status: 409 },
        { method: "GET", path: `${base}/Users`, status: 200 },
        { method: "PATCH", path: `${base}/Users/${ghost}`, status: 404 },
        { method: "DELETE", path: `${base}/Users/${user.id}`, status: 204 },
      ]);
      expect(logged.writeCount()).to.equal(4);
      expect(log).to.have.length(5);
      expect(log[1]).to.match(/^POST \/scim\/directory\/sandbox\/Users 409 \d+ms$/);
      expect(log.join("\n")).to.not.contain(TOKEN);

      const held = logged.requests;
      logged.resetRequests();
      expect(held).to.have.length(0);
      expect(logged.writeCount()).to.equal(0);
      await call(logged, "GET", "/Users");
      expect(logged.requests).to.have.length(1);
      expect(logged.writeCount()).to.equal(0);
    });

    it("answers 429 with Retry-After over the rate, records it, and serves again after the wait", async function () {
      const limited = await start({ rateLimit: { requestsPerSecond: 5 } });
      const answers = await Promise.all(Array.from({ length: 12 }, () => call(limited, "GET", "/Users")));
      const refused = answers.filter((answer) => answer.status === 429);
      expect(answers.filter((answer) => answer.status === 200)).to.have.length(5);
      expect(refused).to.have.length(7);
      for (const answer of refused) {
        expectScimError(answer, 429);
        const retryAfter = answer.headers.get("retry-after");
        expect(retryAfter).to.match(/^\d+$/);
        expect(Number(retryAfter)).to.be.at.least(1);
      }
      expect(limited.requests.filter((request) => request.status === 429)).to.have.length(7);

      await new Promise((resolve) => setTimeout(resolve, Number(refused[0]?.headers.get("retry-after")) * 1000 + 50));
      expect((await call(limited, "GET", "/Users")).status).to.equal(200);
    });

    describe("dataFile", function () {
      let dir: string;
      beforeEach(async function () {
        dir = await mkdtemp(join(tmpdir(), "sandbox-test-"));
      });
      afterEach(async function () {
        await closeAll(); // before the directory goes: close() writes the last save into it
        await rm(dir, { recursive: true, force: true });
      });

      it("saves soon after writes and survives close and restart", async function () {
        const dataFile = join(dir, "sandbox.json");
        const first = await start({ dataFile });
        const user = await createUser(first, 1, { [ENTERPRISE]: { department: "R&D" } });
        const group = await createGroup(first, "Engineering", [user.id]);

        // Debounced save, without waiting for close.
        const deadline = Date.now() + 3000;
        while (!(await stat(dataFile).catch(() => undefined)) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const saved = JSON.parse(await readFile(dataFile, "utf8")) as StoreSnapshot;
        expect(saved.users.map((u) => u.id)).to.deep.equal([user.id]);

        await call(first, "PATCH", `/Users/${user.id}`, patchBody({ op: "replace", path: "title", value: "Lead" }));
        await first.close();
        expect(await readdir(dir)).to.deep.equal(["sandbox.json"]); // no temp file left behind

        const second = await start({ dataFile });
        const fetched = await call(second, "GET", `/Users/${user.id}`);
        expect(fetched.status).to.equal(200);
        expect(fetched.body.title).to.equal("Lead");
        expect(fetched.body[ENTERPRISE]).to.deep.equal({ department: "R&D" });
        expect(second.groups().map((g) => ({ id: g.id, members: g.members?.map((m) => m.value) }))).to.deep.equal([
          { id: group.id, members: [user.id] },
        ]);
        // Indexes were rebuilt from the file, not just the records.
        expectScimError(await call(second, "POST", "/Users", userBody(1)), 409);
        const byName = await call(second, "GET", `/Groups?filter=${encodeURIComponent('displayName eq "ENGINEERING"')}`);
        expect(byName.body.totalResults).to.equal(1);
      });

      it("refuses to start from a file that is not a sandbox snapshot", async function () {
        const dataFile = join(dir, "broken.json");
        await writeFile(dataFile, "{ this is not json");
        let failure: unknown;
        await startSandbox({ token: TOKEN, dataFile }).then(
          (running) => started.push(running),
          (error: unknown) => (failure = error),
        );
        expect(String(failure)).to.contain(dataFile);
      });

      it("serves 150,000 users and a 35,000-member group from a data file (speed is measured by the benchmark, not here)", async function () {
        this.timeout(120_000);
        const at = new Date().toISOString();
        const users = Array.from({ length: 150_000 }, (_, n) => ({
          id: randomUUID(),
          created: at,
          lastModified: at,
          attributes: {
            userName: `user${n}@example.com`,
            externalId: `ext-${n}`,
            emails: [{ value: `user${n}@example.com`, primary: true }],
            displayName: `User ${n}`,
            active: true,
          },
        }));
        const big = { id: randomUUID(), displayName: "everyone", created: at, lastModified: at, members: users.slice(0, 35_000).map((u) => u.id) };
        const snapshot: StoreSnapshot = { version: 1, users, groups: [big] };
        const dataFile = join(dir, "big.json");
        await writeFile(dataFile, JSON.stringify(snapshot));

        const large = await start({ dataFile });
        const lookupIn = (method: string, path: string, body?: unknown): Promise<Answer> => call(large, method, path, body);
        const lookup = await lookupIn("GET", `/Users?filter=${encodeURIComponent('userName eq "USER149999@example.com"')}`);
        expect(lookup.body.Resources[0].id).to.equal(users[149_999]?.id);
        const lastPage = await lookupIn("GET", "/Users?startIndex=149951&count=100");
        expect(lastPage.body.totalResults).to.equal(150_000);
        expect(lastPage.body.itemsPerPage).to.equal(50);

        const added = users.slice(35_000, 35_100).map((u) => ({ value: u.id }));
        const patched = await lookupIn("PATCH", `/Groups/${big.id}?excludedAttributes=members`, patchBody({ op: "add", path: "members", value: added }));
        expect(patched.status).to.equal(200);
        expect((await lookupIn("DELETE", `/Users/${users[0]?.id}`)).status).to.equal(204);
        expect((await lookupIn("POST", "/Users", userBody(150_001))).status).to.equal(201);

        const group = large.groups()[0];
        expect(group?.members).to.have.length(35_099);
        const byExternalId = await call(large, "GET", `/Users?filter=${encodeURIComponent('externalId eq "ext-140000"')}`);
        expect(byExternalId.body.Resources[0].id).to.equal(users[140_000]?.id);
      });
    });
  });
});
