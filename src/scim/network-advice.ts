/** What a SCIM call that got no answer needs to know of the target to explain itself. */
export interface AdviceTarget {
  url: string;
  timeoutSeconds: number;
}

/** The parts of a failed request (got's RequestError, or Node's own error) that tell what went wrong. */
export interface NoAnswer {
  code?: string;
  message?: string;
  /** Whether a connection was made before the failure (got's timings.connect). */
  connected?: boolean;
  /** Whether the server has answered an earlier call: then target.url is right, and its scheme too. */
  answeredBefore?: boolean;
}

// OpenSSL's words for a first answer that is not TLS at all: the server spoke plain HTTP to our handshake.
const PLAIN_HTTP_ANSWER = /wrong version number|packet length too long|http request/i;

const UNTRUSTED_CA = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']);

// There is no target.tls setting: Atlassian's endpoint has a public certificate, so a certificate Node does not
// trust is nearly always a TLS-inspecting proxy or firewall, whose CA Node takes from NODE_EXTRA_CA_CERTS.
const TRUST_HINT = 'in PEM in the NODE_EXTRA_CA_CERTS environment variable of the service';

/**
 * A call that got no HTTP answer, as a sentence an admin can act on: what happened, at which host and port, and
 * what to check (the same shape as the directory side's messages). Codes it does not know keep Node's own words.
 */
export function describeNoAnswer(error: NoAnswer, target: AdviceTarget): string {
  const { host, hostPort, https } = where(target.url);
  const code = error.code ?? 'network error';
  const message = (error.message ?? '').trim();
  switch (code) {
    case 'ECONNREFUSED':
      return `nothing listens at ${hostPort} (connection refused): check target.url and that the server is up`;
    case 'ENOTFOUND':
      return `the host name ${host} was not found (ENOTFOUND): check target.url, and that this host's DNS knows the name`;
    case 'EAI_AGAIN':
      return `the host name ${host} could not be looked up (EAI_AGAIN: DNS did not answer): check this host's DNS servers and network, and target.url`;
    case 'ETIMEDOUT':
      return error.connected
        ? `${hostPort} took the connection but sent no answer within target.timeoutSeconds (${target.timeoutSeconds} s, ETIMEDOUT): check that target.url points at the SCIM service; if the server is only slow, raise target.timeoutSeconds`
        : `no connection to ${hostPort} within target.timeoutSeconds (${target.timeoutSeconds} s, ETIMEDOUT): check target.url, that the server is up, and that no firewall drops the traffic`;
    case 'ECONNRESET':
    case 'EPIPE': {
      // A TLS server sent a plain HTTP request closes the connection without a word: the likeliest wrong URL, unless
      // the same URL got answers before (then it is a restart, or a proxy or firewall cutting connections).
      const check = error.answeredBefore
        ? 'check that the server is up'
        : https
          ? 'check target.url, that the server is up'
          : 'if that is a TLS port, target.url must use https://; otherwise check that the server is up';
      return `the server at ${hostPort} closed the connection without answering (${code}): ${check}, and any proxy or firewall on the way`;
    }
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      return `no network route to ${hostPort} (${code}): check this host's network and firewall, and target.url`;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return `the server at ${hostPort} presented a self-signed TLS certificate, which is not trusted (${code}): check that target.url names the SCIM service and that no proxy answers in its place; to trust that certificate, give it to Node ${TRUST_HINT}`;
    case 'CERT_HAS_EXPIRED':
      return `the TLS certificate of ${hostPort} has expired (${code}): check this host's clock, then the certificate of the server (or of a proxy presenting it)`;
    case 'CERT_NOT_YET_VALID':
      return `the TLS certificate of ${hostPort} is not valid yet (${code}): check this host's clock`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `the TLS certificate of ${hostPort} is not made out to ${host} (${code}: ${message.replace(/^Hostname\/IP does not match certificate's altnames:\s*/i, '').replace(/:\s*$/, '')}): put the host name the certificate names in target.url, or check for a proxy answering in the server's place`;
  }
  if (UNTRUSTED_CA.has(code)) {
    const chain = code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ? ', or the server does not send its intermediate certificates' : '';
    return `the TLS certificate of ${hostPort} is signed by a CA this host does not trust (${code}): a TLS-inspecting proxy or firewall in between is the usual cause${chain}; check target.url, and to trust that CA, give its certificate to Node ${TRUST_HINT}`;
  }
  if (https && (code === 'EPROTO' || code.startsWith('ERR_SSL_')) && PLAIN_HTTP_ANSWER.test(`${code} ${message}`)) {
    return `target.url uses https:// but the server at ${hostPort} answered in plain HTTP: use http:// or the server's TLS port`;
  }
  if (code === 'EPROTO' || code.startsWith('ERR_SSL_')) {
    return `the TLS handshake with ${hostPort} failed (${code}: ${opensslReason(message)}): check that target.url names the server's TLS port`;
  }
  if (code.startsWith('HPE_')) {
    return `the server at ${hostPort} did not answer in HTTP (${code}): check target.url${https ? '' : ' (if that is a TLS port, use https://)'}`;
  }
  return message ? `${code}: ${message}` : code;
}

/** "…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../ssl/record.c:350:" → "wrong version number". */
function opensslReason(message: string): string {
  const parts = message.split(':');
  const at = parts.findIndex((p) => p.trim() === 'SSL routines');
  return (at >= 0 ? parts[at + 2] : undefined)?.trim() || message;
}

function where(url: string): { host: string; hostPort: string; https: boolean } {
  try {
    const u = new URL(url);
    const https = u.protocol === 'https:';
    return { host: u.hostname, hostPort: u.port ? u.host : `${u.host}:${https ? 443 : 80}`, https };
  } catch {
    return { host: url, hostPort: url, https: /^https:/i.test(url) };
  }
}
