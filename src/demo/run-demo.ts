import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../config/load.js';
import { renderPlanTable } from '../plan/render.js';
import { startSandbox } from '../sandbox/server.js';
import { runCycle } from '../sync/cycle.js';
import { renderReport } from '../sync/report.js';
import { startThrowawaySlapd } from './throwaway-slapd.js';
import { bundledSampleLdifPath } from './sample-directory.js';

// `npm run demo`: a throwaway slapd loaded with the bundled sample directory, the built-in SCIM sandbox, and a
// real config file in a temp folder; then a first sync and a second, quiet one. Nothing of the user's is touched.

const SUFFIX = 'dc=example,dc=test';
const sampleLdif = readFileSync(bundledSampleLdifPath, 'utf8');

const work = mkdtempSync(path.join(tmpdir(), 'ldap-scim-demo-'));
const say = (text: string) => process.stdout.write(text + '\n');

const slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sampleLdif });
const token = randomBytes(18).toString('base64url');
const sandbox = await startSandbox({ token, dataFile: path.join(work, 'sandbox-data.json') });
let exitCode = 0;
try {
  writeFileSync(path.join(work, 'ldap.pw'), slapd.rootPassword);
  writeFileSync(path.join(work, 'scim.key'), token);
  const configFile = path.join(work, 'config.yaml');
  writeFileSync(
    configFile,
    `# Written by npm run demo. Copy config/openldap.yaml for a real directory.
source:
  kind: openldap
  url: ${slapd.url}
  bindDn: ${slapd.rootDn}
  bindPasswordFile: ldap.pw
  users: { baseDn: "ou=people,${SUFFIX}" }
  groups: { baseDn: "ou=groups,${SUFFIX}" }
target:
  url: ${sandbox.url}
  tokenFile: scim.key
state: { path: state/snapshot.json }
`,
  );
  say(`ldap-scim demo\n  directory: throwaway slapd at ${slapd.url} (bundled sample: demo/sample-directory.ldif)\n  SCIM:      built-in sandbox at ${sandbox.url}\n  config:    ${configFile}\n`);
  const config = loadConfig(configFile);

  say('1) plan: what the first sync will do');
  const planned = await runCycle(config, { dryRun: true });
  if (planned.plan) say(renderPlanTable(planned.plan).split('\n').slice(0, 12).join('\n') + `\n   … ${planned.plan.operations.length} operations in all\n`);

  say('2) first sync');
  const first = await runCycle(config);
  say(renderReport(first.report) + '\n');

  say('3) a second sync with no directory change: it makes no write call');
  const second = await runCycle(config);
  say(renderReport(second.report) + '\n');

  exitCode = first.report.exitCode || second.report.exitCode;
  say(
    `Where to look:\n  the config the demo wrote:       ${configFile}\n  the snapshot of what was pushed: ${config.state.path}\n  what the SCIM side now holds:    ${path.join(work, 'sandbox-data.json')}\n` +
      `Next: copy config/openldap.yaml, point it at your directory and at Atlassian's SCIM URL, and run\n  ldap-scim plan --config your.yaml   then   ldap-scim sync --config your.yaml`,
  );
} finally {
  await sandbox.close();
  await slapd.stop();
}
process.exitCode = exitCode;
