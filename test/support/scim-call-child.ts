// One SCIM GET through ScimTransport in a process of its own, for what only a process's start can set (the CA
// certificates Node trusts: NODE_EXTRA_CA_CERTS). Prints {"status":200} or {"detail":"..."} on stdout.
import { ScimError } from '../../src/scim/errors.js';
import { ScimTransport } from '../../src/scim/transport.js';

const [url] = process.argv.slice(2);
const transport = new ScimTransport({
  baseUrl: url!,
  token: () => 'child-token',
  requestsPerSecond: 100,
  concurrency: 1,
  timeoutSeconds: 5,
  maxRetries: 0,
  maxRetryWaitSeconds: 1,
});
try {
  const { status } = await transport.request('GET', '/Users', 'child call');
  process.stdout.write(JSON.stringify({ status }) + '\n');
} catch (e) {
  process.stdout.write(JSON.stringify({ detail: e instanceof ScimError ? e.detail : String(e) }) + '\n');
} finally {
  transport.close();
}
