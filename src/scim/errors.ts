/** A SCIM call that failed for good: names the resource, the status and what the server said (never the key). */
export class ScimError extends Error {
  constructor(
    readonly resource: string,
    readonly method: string,
    readonly status: number | undefined,
    readonly detail: string,
  ) {
    super(`${resource}: ${method} ${status === undefined ? 'failed' : `answered ${status}`}: ${detail}`);
    this.name = 'ScimError';
  }
}

/**
 * 401/403: the API key was refused (expired, revoked, or regenerated in Atlassian Administration). The cycle stops
 * writing at once; retrying with the same key cannot succeed.
 */
export class KeyRejectedError extends ScimError {
  constructor(resource: string, method: string, status: number, detail: string, readonly keyFingerprint: string) {
    super(resource, method, status, detail);
    this.name = 'KeyRejectedError';
    this.message =
      `the SCIM API key (fingerprint ${keyFingerprint}) was rejected with ${status} on ${method} for ${resource}: ${(detail || 'no detail').replace(/[.\s]+$/, '')}. ` +
      'It has expired, was revoked, or was regenerated: create a new key in Atlassian Administration → Security → Identity providers → your directory, ' +
      'and put it in target.token / target.tokenFile.';
  }
}

/** The server's own words from a SCIM error body, or the start of whatever it sent. */
export function detailOf(body: string): string {
  if (!body) return '';
  try {
    const parsed = JSON.parse(body) as { detail?: unknown; message?: unknown; scimType?: unknown };
    const detail = typeof parsed.detail === 'string' ? parsed.detail : typeof parsed.message === 'string' ? parsed.message : undefined;
    if (detail) return typeof parsed.scimType === 'string' ? `${detail} (scimType ${parsed.scimType})` : detail;
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.replace(/\s+/g, ' ').slice(0, 300);
}

/** A call dropped from the queue before it was sent (the key was rejected, or the process is stopping). */
export class CancelledError extends Error {
  constructor(
    readonly resource: string,
    readonly method: string,
  ) {
    super(`${resource}: ${method} not sent: the cycle is stopping`);
    this.name = 'CancelledError';
  }
}
