import winston from 'winston';

// Secrets are registered once they are read (bind password, API key) and scrubbed from every log line, whatever
// field they hide in, so a careless `log.error(err)` can never leak one.
const secrets = new Set<string>();

export function registerSecret(value: string | undefined): void {
  // Very short values would blank out ordinary words; real passwords and keys are longer than this.
  if (value && value.length >= 4) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('[REDACTED]');
  return out;
}

function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redact(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return redact(value.stack ?? value.message);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, depth + 1);
  return out;
}

const scrub = winston.format((info) => {
  for (const key of Object.keys(info)) (info as Record<string, unknown>)[key] = redactDeep(info[key]);
  return info;
});

function humanLine(info: winston.Logform.TransformableInfo): string {
  const { level, message, timestamp, ...rest } = info;
  const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
  return `${String(timestamp)} ${level} ${String(message)}${extra}`;
}

/** Logs go to stderr so that `plan --format json` and reports on stdout stay machine-readable. */
export const log = winston.createLogger({
  level: process.env.LDAP_SCIM_LOG_LEVEL ?? 'info',
  format: winston.format.combine(
    scrub(),
    winston.format.timestamp(),
    process.stderr.isTTY
      ? winston.format.combine(winston.format.colorize(), winston.format.printf(humanLine))
      : winston.format.json(),
  ),
  transports: [
    new winston.transports.Console({
      stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'],
    }),
  ],
});
