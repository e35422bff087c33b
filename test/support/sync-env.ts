import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig, type Config } from '../../src/config/load.js';
import { readDesiredState } from '../../src/directory/reader.js';
import { startSandbox, type RunningSandbox, type SandboxOptions } from '../../src/sandbox/server.js';
import { startBetterAuthScim } from './better-auth-scim.js';
import { listAll, type ViewGroup, type ViewUser } from './scim-view.js';

export interface ScimUnderTest {
  kind: 'sandbox' | 'better-auth';
  url: string;
  token: string;
  /** Only the sandbox counts requests server-side; with better-auth, tests use the cycle report's count. */
  sandbox?: RunningSandbox;
  stop(): Promise<void>;
}

export async function startScim(kind: ScimUnderTest['kind'], sandboxOptions: Omit<SandboxOptions, 'token'> = {}): Promise<ScimUnderTest> {
  if (kind === 'sandbox') {
    const token = 'sandbox-token-' + Math.random().toString(36).slice(2);
    const sandbox = await startSandbox({ ...sandboxOptions, token });
    return { kind, url: sandbox.url, token, sandbox, stop: () => sandbox.close() };
  }
  const server = await startBetterAuthScim();
  return { kind, url: server.baseUrl, token: server.token, stop: () => server.stop() };
}

export interface ConfigParams {
  ldapUrl: string;
  suffix: string;
  bindDn: string;
  bindPassword: string;
  scimUrl: string;
  token: string;
  /** Extra YAML appended at the end (top-level keys). */
  extra?: string;
  /** Default 25, so the sample directory takes several pages. */
  pageSize?: number;
  /** Extra YAML inside `source:` (indented two spaces). */
  sourceExtra?: string;
  /** YAML lines inside `target:`, indented by two spaces, each ending in a newline. */
  targetExtra?: string;
}

/** Writes a config the way an admin would (secrets through the environment) and loads it. */
export function writeConfig(p: ConfigParams, dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-it-'))): { file: string; dir: string; load: () => Config } {
  const file = path.join(dir, 'config.yaml');
  writeFileSync(
    file,
    `source:
  kind: openldap
  url: ${p.ldapUrl}
  bindDn: "${p.bindDn}"
  bindPasswordFile: ldap.pw
  users: { baseDn: "ou=people,${p.suffix}" }
  groups: { baseDn: "ou=groups,${p.suffix}" }
  pageSize: ${p.pageSize ?? 25}
${p.sourceExtra ?? ''}target:
  url: ${p.scimUrl}
  tokenFile: scim.key
  rateLimit: { requestsPerSecond: 200, concurrency: 4 }
  maxRetries: 2
${p.targetExtra ?? ''}state: { path: state/snapshot.json, checkpointEvery: 20 }
${p.extra ?? ''}`,
  );
  writeFileSync(path.join(dir, 'ldap.pw'), p.bindPassword);
  writeFileSync(path.join(dir, 'scim.key'), p.token);
  return { file, dir, load: () => loadConfig(file) };
}

/** The SCIM side holds exactly what the directory says: every in-scope user with its fields, flat groups. */
export async function expectScimMatchesDirectory(config: Config, scim: ScimUnderTest): Promise<{ users: ViewUser[]; groups: ViewGroup[] }> {
  const { desired } = await readDesiredState(config, config.mapping);
  const users = await listAll<ViewUser>(scim.url, scim.token, 'Users');
  const groups = await listAll<ViewGroup>(scim.url, scim.token, 'Groups');
  const byExternalId = new Map<string, ViewUser>();
  for (const u of users) {
    expect(byExternalId.has(u.externalId ?? ''), `duplicate SCIM user for externalId ${u.externalId}`).to.equal(false);
    if (u.externalId) byExternalId.set(u.externalId, u);
  }
  for (const want of desired.users.values()) {
    const got = byExternalId.get(want.anchor);
    if (!got && !want.attrs.active) continue; // a disabled account that was never provisioned is not created
    expect(got, `SCIM user for ${want.dn}`).to.not.equal(undefined);
    expect(got!.userName.toLowerCase()).to.equal(want.attrs.userName);
    expect(String(got!.active)).to.equal(String(want.attrs.active));
    expect(got!.title).to.equal(want.attrs.title);
    expect(got!.displayName).to.equal(want.attrs.displayName);
    expect(got!.name?.familyName).to.equal(want.attrs.familyName);
    expect(got!.emails?.find((e) => e.primary)?.value.toLowerCase()).to.equal(want.attrs.email);
  }
  for (const u of users) {
    if (!u.externalId || !desired.users.has(u.externalId)) expect(String(u.active), `${u.userName} is out of scope and must be inactive`).to.equal('false');
  }
  const idByAnchor = new Map([...byExternalId].map(([anchor, u]) => [anchor, u.id]));
  const groupsByName = new Map(groups.map((g) => [g.displayName.toLowerCase(), g]));
  expect(groups.length, 'no SCIM group beyond the directory groups').to.equal(desired.groups.size);
  for (const want of desired.groups.values()) {
    const got = groupsByName.get(want.displayName.toLowerCase());
    expect(got, `SCIM group ${want.displayName}`).to.not.equal(undefined);
    expect((got!.members ?? []).map((m) => m.value).sort(), `members of ${want.displayName}`).to.deep.equal(
      // Members without a SCIM account (disabled, never provisioned) cannot be members; every other one must be.
      want.members.flatMap((a) => idByAnchor.get(a) ?? []).sort(),
    );
  }
  return { users, groups };
}
