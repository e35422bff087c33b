import cron from 'node-cron';
import { z } from 'zod';
import { OPTIONAL_USER_FIELDS } from '../model.js';
import { filterProblem } from './filter-syntax.js';
import { DIRECTORY_LIMITS } from '../scim/atlassian-rules.js';

// The YAML contract (see README "Configuration"). Objects are strict so that a typo such as `bindDN` is reported
// with its line instead of being silently ignored; defaults here are the documented ones.

// A missing key and a wrong value are different mistakes; say which one it is.
const need = (message: string) => (issue: { input?: unknown }) => (issue.input === undefined ? 'is required but missing' : message);

const positive = (what = 'a positive number') => z.number({ error: `must be ${what}` }).positive({ error: `must be ${what}` });
const positiveInt = () =>
  z.number({ error: 'must be a positive whole number' }).int({ error: 'must be a positive whole number' }).positive({ error: 'must be a positive whole number' });
const nonNegativeInt = () =>
  z.number({ error: 'must be a whole number, 0 or more' }).int({ error: 'must be a whole number, 0 or more' }).min(0, { error: 'must be a whole number, 0 or more' });
const text = () => z.string({ error: need('must be a text value') }).min(1, { error: 'must not be empty' });

const searchScope = z.enum(['sub', 'one', 'base'], { error: 'must be one of sub, one, base' });

const usersSearch = z.strictObject({
  baseDn: text(),
  filter: text()
    .superRefine((value, ctx) => {
      // zod runs this even after min(1) failed; "must not be empty" has said it already.
      const problem = value ? filterProblem(value) : undefined;
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  scope: searchScope.default('sub'),
});

const tls = z
  .strictObject({
    caFile: text().optional(),
    startTls: z.boolean({ error: 'must be true or false' }).default(false),
    rejectUnauthorized: z.boolean({ error: 'must be true or false' }).default(true),
    servername: text().optional(),
  })
  .default({ startTls: false, rejectUnauthorized: true });

export const sourceKinds = ['openldap', 'activedirectory'] as const;

const source = z
  .strictObject({
    kind: z.enum(sourceKinds, { error: need(`must be ${sourceKinds.join(' or ')}`) }),
    url: text().regex(/^ldaps?:\/\/[^/]+\/?$/i, { error: 'must look like ldap://host:389 or ldaps://host:636' }),
    bindDn: text(),
    bindPassword: text().optional(),
    bindPasswordFile: text().optional(),
    tls,
    users: usersSearch,
    groups: usersSearch.optional(),
    pageSize: positiveInt().max(10000, { error: 'must be at most 10000' }).default(500),
    timeLimitSeconds: nonNegativeInt().default(600),
    connectTimeoutSeconds: positive().default(10),
    /** Active Directory: an account whose accountExpires has passed counts as disabled. */
    treatExpiredAccountsAsDisabled: z.boolean({ error: 'must be true or false' }).default(false),
    /**
     * Read only the users changed since the last cycle (AD uSNChanged, OpenLDAP modifyTimestamp), and the whole
     * scope every fullReadEvery cycles: only a full read notices people who left the scope.
     */
    delta: z
      .strictObject({
        enabled: z.boolean({ error: 'must be true or false' }).default(false),
        fullReadEvery: positiveInt().default(24),
        /**
         * The daemon (`run`) asks for what changed every pollSeconds between its scheduled cycles, which then read
         * the whole scope as a safety net; 0 turns polling off. Two seconds keeps a change's way to the SCIM side
         * under five at a cost of three small searches per poll.
         */
        pollSeconds: nonNegativeInt().default(2),
        /** Every anchor in scope (and nothing else) is read this often: the way a poll sees who left the scope. */
        censusSeconds: positiveInt().default(60),
      })
      .default({ enabled: false, fullReadEvery: 24, pollSeconds: 2, censusSeconds: 60 }),
  })
  .refine((s) => (s.bindPassword === undefined) !== (s.bindPasswordFile === undefined), {
    error: 'give exactly one of bindPassword or bindPasswordFile',
  });

const target = z
  .strictObject({
    url: text().regex(/^https?:\/\/\S+$/i, { error: 'must be an http(s) URL' }),
    token: text().optional(),
    tokenFile: text().optional(),
    tokenExpiresAt: z
      .union([z.string(), z.date()], { error: 'must be a date (2027-06-30) or an ISO time' })
      .optional()
      .refine((v) => v === undefined || !Number.isNaN(new Date(v).getTime()), {
        error: 'must be a date (2027-06-30) or an ISO time',
      }),
    rateLimit: z
      .strictObject({
        requestsPerSecond: positive().default(10),
        concurrency: positiveInt().default(4),
      })
      .default({ requestsPerSecond: 10, concurrency: 4 }),
    timeoutSeconds: positive().default(30),
    maxRetries: nonNegativeInt().default(5),
    maxRetryWaitSeconds: positive().default(120),
    membersPerPatch: positiveInt().max(1000, { error: 'must be at most 1000' }).default(100),
    /**
     * Left out (the default): a directory group whose name a SCIM group made outside ldap-scim holds is held for
     * review (plan --approve-group). true adopts them all without one, as before reviews existed.
     */
    adoptExistingGroups: z.boolean({ error: 'must be true or false' }).optional(),
    deprovision: z.enum(['deactivate', 'delete'], { error: 'must be deactivate or delete' }).default('deactivate'),
    /**
     * Group names this Atlassian site keeps for itself beyond the ones ldap-scim knows (built-in, jira-*,
     * confluence-*): a directory group matching one is never pushed. `*` stands for any characters; no case.
     */
    refusedGroupNames: z
      .array(text().regex(/[^*]/, { error: 'must name something besides "*", which would refuse every group' }), {
        error: 'must be a list of group names or patterns, e.g. [statuspage-*, opsgenie-users]',
      })
      .optional(),
    /** The organization's verified domains, exactly as after the @ (see src/plan/verified-domains.ts). */
    verifiedDomains: z
      .array(
        text().regex(/^(?!-)[a-z0-9-]+(\.[a-z0-9-]+)+$/i, { error: 'must be a domain such as example.com (no @, no scheme)' }),
        { error: 'must be a list of domains, e.g. [example.com, example.co.uk]' },
      )
      .optional(),
  })
  .refine((t) => (t.token === undefined) !== (t.tokenFile === undefined), {
    error: 'give exactly one of token or tokenFile',
  });

const mappingValue = z.union([text(), z.array(text()).min(1, { error: 'must list at least one alternative' }), z.null()], {
  error: 'must be an attribute name, a template like "{givenName} {sn}", a list of those, or null',
});

export const userMappingFields = ['userName', 'email', ...OPTIONAL_USER_FIELDS] as const;

const userMapping = z.strictObject(Object.fromEntries(userMappingFields.map((f) => [f, mappingValue.optional()])) as Record<
  (typeof userMappingFields)[number],
  z.ZodOptional<typeof mappingValue>
>);

const groupMapping = z.strictObject({ displayName: mappingValue.optional() });

export const configSchema = z.strictObject({
  source,
  target,
  state: z.strictObject({
    path: text(),
    checkpointEvery: positiveInt().default(200),
    keepReports: nonNegativeInt().default(30),
    /** The audit trail beside the state (see src/audit/audit-log.ts): rotated by size or age, kept keepDays. */
    audit: z
      .strictObject({
        rotateMb: positive().default(50),
        rotateDays: positiveInt().default(30),
        keepDays: positiveInt().default(400),
      })
      .default({ rotateMb: 50, rotateDays: 30, keepDays: 400 }),
  }),
  // Default: DEFAULT_SCHEDULE (load.ts), which depends on whether the daemon polls.
  schedule: text()
    .refine((v) => cron.validate(v), { error: 'must be a cron expression such as "*/15 * * * *" (six fields allow seconds)' })
    .optional(),
  // `alerts:` with every key commented out is null in YAML: the same as no alerts.
  alerts: z.preprocess(
    (v) => v ?? {},
    z.strictObject({ webhookUrl: text().regex(/^https?:\/\/\S+$/i, { error: 'must be an http(s) URL' }).optional() }),
  ),
  safety: z
    .strictObject({
      maxDeactivations: nonNegativeInt().default(500),
      // A share as well as a count: 500 people is a fifth of a 2,500-person organization but a tenth of 5,000.
      maxDeactivationPercent: z.number({ error: 'must be a percentage' }).min(0, { error: 'must be a percentage' }).max(100, { error: 'must be at most 100' }).default(10),
      maxGroupDeletions: nonNegativeInt().default(50),
      maxShrinkPercent: z.number({ error: 'must be a percentage' }).min(0).max(100, { error: 'must be at most 100' }).default(20),
      // Removals count over this many minutes, not per cycle: cycles seconds apart would let 2,000 go 100 at a time (0: per cycle).
      windowMinutes: nonNegativeInt().default(60),
    })
    .default({ maxDeactivations: 500, maxDeactivationPercent: 10, maxGroupDeletions: 50, maxShrinkPercent: 20, windowMinutes: 60 }),
  limits: z
    .strictObject({
      maxUsers: positiveInt().default(DIRECTORY_LIMITS.maxUsers),
      maxGroupMembers: positiveInt().default(DIRECTORY_LIMITS.maxGroupMembers),
    })
    .default({ maxUsers: DIRECTORY_LIMITS.maxUsers, maxGroupMembers: DIRECTORY_LIMITS.maxGroupMembers }),
  server: z
    .strictObject({ host: text().default('127.0.0.1'), port: nonNegativeInt().max(65535).default(9464) })
    .default({ host: '127.0.0.1', port: 9464 }),
  mapping: z
    .strictObject({ user: userMapping.optional(), group: groupMapping.optional() })
    .default({}),
});

export type RawConfig = z.infer<typeof configSchema>;
export type MappingValue = z.infer<typeof mappingValue>;
export type UserMappingField = (typeof userMappingFields)[number];
