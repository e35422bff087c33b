import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import cron from 'node-cron';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { DaemonMetrics, schedulePeriodSeconds } from '../../src/daemon/metrics.js';

// The shipped Prometheus rules and Grafana dashboard name metrics by string; nothing else ties them to the code.
// These tests do: a metric renamed in src/daemon/metrics.ts, or a typo in a query, fails here instead of leaving an
// alert that can never fire or a panel that stays empty.

const RULES_FILE = fileURLToPath(new URL('../../deploy/prometheus/ldap-scim-alerts.yml', import.meta.url));
const DASHBOARD_FILE = fileURLToPath(new URL('../../deploy/grafana/ldap-scim-dashboard.json', import.meta.url));

interface Rule {
  alert?: unknown;
  record?: unknown;
  expr?: unknown;
  for?: unknown;
  labels?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}
interface RulesFile {
  groups?: { name?: string; rules?: Rule[] }[];
}
interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: Target[];
}
interface Dashboard {
  __inputs?: { name?: string; type?: string; pluginId?: string }[];
  panels?: Panel[];
  templating?: { list?: { name?: string; type?: string; query?: unknown; datasource?: { uid?: string } }[] };
}

const readRules = (): RulesFile => parse(readFileSync(RULES_FILE, 'utf8')) as RulesFile;
const readDashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
const rulesOf = (file: RulesFile): Rule[] => (file.groups ?? []).flatMap((g) => g.rules ?? []);

// Words PromQL reserves; an identifier not followed by "(" and not one of these is a metric name.
const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan', 'atan2']);

/** The metric names a PromQL expression selects; also takes Grafana queries ($variables, label_values()). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/label_values\(\s*([^,()]+?)\s*,\s*\w+\s*\)/g, ' $1 ')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  // The look-behind keeps the unit of "1h" or the exponent of "1e3" from reading as a name.
  for (const m of bare.matchAll(/(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    const word = m[1]!;
    if (m[2] !== undefined || PROMQL_WORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/** The sample names one metric shows on /metrics, as Prometheus stores them (and so as PromQL must name them). */
function samplesOf(m: { name: string; type: unknown }, openMetrics: boolean): string[] {
  const type = String(m.type);
  if (type === 'histogram') return ['_bucket', '_sum', '_count'].map((s) => m.name + s);
  if (type === 'summary') return ['', '_sum', '_count'].map((s) => m.name + s);
  // prom-client writes a counter's name as given in the text format, and with one _total in OpenMetrics.
  if (type === 'counter' && openMetrics) return [m.name.replace(/_total$/, '') + '_total'];
  return [m.name];
}

async function families(registry: Registry): Promise<Map<string, string[]>> {
  const openMetrics = registry.contentType.startsWith('application/openmetrics-text');
  return new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, samplesOf(m, openMetrics)]));
}

const exported = async (): Promise<Set<string>> => new Set([...(await families(new DaemonMetrics().registry)).values()].flat());

function unknownMetrics(exprs: string[], known: Set<string>): string[] {
  return [...new Set(exprs.flatMap(metricNames))].filter((n) => !known.has(n)).sort();
}

const DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;

/** What an on-call admin needs from each rule; `for: 0s` is how a rule says it waits on purpose not at all. */
function ruleProblems(file: RulesFile): string[] {
  const problems: string[] = [];
  const rules = rulesOf(file);
  if (rules.length === 0) problems.push('no rules');
  const seen = new Set<string>();
  rules.forEach((r, i) => {
    const name = typeof r.alert === 'string' && r.alert ? r.alert : `rule #${i + 1}`;
    if (typeof r.alert !== 'string' || !/^[A-Z][A-Za-z0-9]+$/.test(r.alert)) problems.push(`${name}: alert must be a CamelCase name`);
    else if (seen.has(r.alert)) problems.push(`${name}: alert name used twice`);
    else seen.add(r.alert);
    if (typeof r.expr !== 'string' || !r.expr.trim()) problems.push(`${name}: no expr`);
    if (!('for' in r)) problems.push(`${name}: no "for" (write "for: 0s" to alert at once on purpose)`);
    else if (typeof r.for !== 'string' || !DURATION.test(r.for)) problems.push(`${name}: "for" is not a duration: ${String(r.for)}`);
    if (!['warning', 'critical'].includes(String(r.labels?.severity))) problems.push(`${name}: labels.severity must be warning or critical`);
    for (const key of ['summary', 'description']) {
      const text = r.annotations?.[key];
      if (typeof text !== 'string' || !text.trim()) problems.push(`${name}: no annotations.${key}`);
    }
  });
  return problems;
}

const panelsOf = (d: Dashboard): Panel[] => (d.panels ?? []).filter((p) => p.type !== 'row');

function dashboardExprs(d: Dashboard): string[] {
  const exprs = panelsOf(d).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
    exprs.push(q ?? '');
  }
  return exprs;
}

function dashboardProblems(d: Dashboard): string[] {
  const problems: string[] = [];
  const input = d.__inputs?.find((i) => i.name === 'DS_PROMETHEUS');
  if (input?.type !== 'datasource' || input.pluginId !== 'prometheus') problems.push('no DS_PROMETHEUS datasource input');
  if (!d.templating?.list?.some((v) => v.name === 'DS_PROMETHEUS' && v.type === 'datasource')) problems.push('no DS_PROMETHEUS variable (needed when provisioned from a file)');
  const ids = new Set<number>();
  for (const p of d.panels ?? []) {
    const name = `panel ${p.id} "${p.title}"`;
    if (typeof p.id !== 'number' || ids.has(p.id)) problems.push(`${name}: missing or repeated id`);
    else ids.add(p.id);
    if (!p.gridPos || p.gridPos.x + p.gridPos.w > 24) problems.push(`${name}: gridPos missing or wider than 24`);
    if (p.type === 'row') continue;
    if (p.datasource?.uid !== '${DS_PROMETHEUS}') problems.push(`${name}: datasource is not \${DS_PROMETHEUS}`);
    if (!p.targets?.length) problems.push(`${name}: no queries`);
    for (const t of p.targets ?? []) {
      if (!t.expr?.trim()) problems.push(`${name}: a query without expr`);
      if (t.datasource?.uid !== '${DS_PROMETHEUS}') problems.push(`${name}: a query whose datasource is not \${DS_PROMETHEUS}`);
    }
  }
  return problems;
}

describe('monitoring assets (deploy/prometheus, deploy/grafana)', () => {
  describe('metric name extraction', () => {
    it('finds every metric in an expression and nothing else (labels, functions, durations, Grafana variables)', () => {
      expect(
        metricNames(
          'sum by (kind) (rate(ldap_scim_operations_total{kind="create", instance=~"$instance"}[$__rate_interval] offset 1h)) / on (job) group_left ldap_scim_users_in_scope > 1e3 and ldap_scim_ready == bool 0',
        ).sort(),
      ).to.deep.equal(['ldap_scim_operations_total', 'ldap_scim_ready', 'ldap_scim_users_in_scope']);
      expect(metricNames('label_values(ldap_scim_ready, instance)')).to.deep.equal(['ldap_scim_ready']);
      expect(metricNames('time() - process_start_time_seconds')).to.deep.equal(['process_start_time_seconds']);
    });

    it('flags a made-up name, a bare histogram name and an unprefixed default metric', async () => {
      const known = await exported();
      expect(
        unknownMetrics(
          ['rate(ldap_scim_cycles_totl[5m])', 'histogram_quantile(0.9, rate(ldap_scim_cycle_duration_seconds[5m]))', 'process_resident_memory_bytes', 'ldap_scim_cycles_total'],
          known,
        ),
      ).to.deep.equal(['ldap_scim_cycle_duration_seconds', 'ldap_scim_cycles_totl', 'process_resident_memory_bytes']);
    });

    it('knows histogram series by their suffixes and counters by the name the daemon serves', async () => {
      const known = await exported();
      for (const n of ['ldap_scim_cycle_duration_seconds_bucket', 'ldap_scim_cycle_duration_seconds_sum', 'ldap_scim_cycle_duration_seconds_count', 'ldap_scim_cycles_total'])
        expect(known.has(n), n).to.equal(true);
      expect(known.has('ldap_scim_cycles_total_total')).to.equal(false);
    });
  });

  describe('alerting rules', () => {
    it('name only metrics the daemon exports', async () => {
      expect(unknownMetrics(rulesOf(readRules()).map((r) => String(r.expr)), await exported())).to.deep.equal([]);
    });

    it('a renamed metric in the rules file is caught by the same check', async () => {
      const text = readFileSync(RULES_FILE, 'utf8').replaceAll('ldap_scim_ready', 'ldap_scim_readiness');
      const exprs = rulesOf(parse(text) as RulesFile).map((r) => String(r.expr));
      expect(unknownMetrics(exprs, await exported())).to.deep.equal(['ldap_scim_readiness']);
    });

    it('name only cycle results the daemon counts', async () => {
      const metric = (await new DaemonMetrics().registry.getMetricsAsJSON()).find((m) => m.name === 'ldap_scim_cycles_total');
      const results = new Set(metric?.values.map((v) => String(v.labels.result)));
      const used = [...readFileSync(RULES_FILE, 'utf8').matchAll(/result="([^"]+)"/g)].map((m) => m[1]!);
      expect(used).to.include.members(['guard-stopped', 'key-rejected']);
      expect(used.filter((r) => !results.has(r))).to.deep.equal([]);
    });

    it('each has alert, expr, for, severity, summary and description', () => {
      expect(ruleProblems(readRules())).to.deep.equal([]);
    });

    it('a rule without summary, without for, or with a bad for is caught', () => {
      const file = readRules();
      const [first, second, third] = rulesOf(file);
      delete first!.annotations!.summary;
      delete second!.for;
      third!.for = 'soon';
      expect(ruleProblems(file)).to.deep.equal([
        `${String(first!.alert)}: no annotations.summary`,
        `${String(second!.alert)}: no "for" (write "for: 0s" to alert at once on purpose)`,
        `${String(third!.alert)}: "for" is not a duration: soon`,
      ]);
    });

    it('cover the four asked-for conditions', () => {
      const exprs = rulesOf(readRules()).map((r) => String(r.expr));
      const some = (re: RegExp) => exprs.some((e) => re.test(e));
      expect(some(/ldap_scim_key_days_left < 14/), 'key expiry within 14 days').to.equal(true);
      expect(some(/3 \* \(ldap_scim_schedule_period_seconds/), 'no success for 3 schedule periods').to.equal(true);
      expect(some(/result="guard-stopped"/), 'safety guard holding').to.equal(true);
      expect(some(/ldap_scim_scim_rate_limited_total/), '429 rate').to.equal(true);
    });
  });

  describe('Grafana dashboard', () => {
    it('is importable: a DS_PROMETHEUS input, every panel and query on it, unique ids', () => {
      expect(dashboardProblems(readDashboard())).to.deep.equal([]);
    });

    it('a panel on a fixed data source is caught', () => {
      const d = readDashboard();
      panelsOf(d)[0]!.datasource = { type: 'prometheus', uid: 'my-prometheus' };
      expect(dashboardProblems(d)).to.have.length(1);
    });

    it('names only metrics the daemon exports', async () => {
      expect(unknownMetrics(dashboardExprs(readDashboard()), await exported())).to.deep.equal([]);
    });

    it('a renamed metric in a panel is caught by the same check', async () => {
      const d = readDashboard();
      const target = panelsOf(d)[0]!.targets![0]!;
      target.expr = target.expr!.replace(/ldap_scim_\w+/, 'ldap_scim_made_up');
      expect(unknownMetrics(dashboardExprs(d), await exported())).to.deep.equal(['ldap_scim_made_up']);
    });

    it("shows every metric the daemon defines itself, and the process's memory and CPU", async () => {
      const defaults = new Registry();
      collectDefaultMetrics({ register: defaults, prefix: 'ldap_scim_' });
      const shown = new Set(dashboardExprs(readDashboard()).flatMap(metricNames));
      const own = [...(await families(new DaemonMetrics().registry))].filter(([name]) => !defaults.getSingleMetric(name));
      expect(own.length).to.be.greaterThan(10);
      expect(own.filter(([, samples]) => !samples.some((s) => shown.has(s))).map(([name]) => name)).to.deep.equal([]);
      expect(shown).to.include('ldap_scim_process_resident_memory_bytes');
      expect([...shown].some((n) => n.startsWith('ldap_scim_process_cpu_'))).to.equal(true);
    });
  });

  describe('ldap_scim_schedule_period_seconds', () => {
    it('is the longest gap between the given runs, 0 with fewer than two', () => {
      const at = (...minutes: number[]) => minutes.map((m) => new Date(Date.UTC(2030, 0, 1) + m * 60_000));
      expect(schedulePeriodSeconds(at(0, 15, 30, 45))).to.equal(900);
      expect(schedulePeriodSeconds(at(0, 15, 60, 75))).to.equal(2700);
      expect(schedulePeriodSeconds(at(0))).to.equal(0);
    });

    it("spans a weekday schedule's weekend, so the staleness alert stays quiet over it", async () => {
      const task = cron.createTask('0 9 * * 1-5', () => undefined, { timezone: 'Etc/UTC' });
      try {
        const metrics = new DaemonMetrics();
        metrics.schedulePeriod(task);
        expect(await gaugeValue(metrics, 'ldap_scim_schedule_period_seconds')).to.equal(3 * 86_400);
      } finally {
        await task.destroy();
      }
    });

    it('is set when the daemon schedules and set again when SIGHUP changes the schedule', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-period-'));
      const file = path.join(dir, 'config.yaml');
      writeFileSync(path.join(dir, 'ldap-password'), 'x\n', { mode: 0o600 });
      writeFileSync(path.join(dir, 'token'), 'scim-secret-for-period-test\n', { mode: 0o600 });
      const config = (schedule: string) =>
        writeFileSync(
          file,
          [
            'source:',
            '  kind: openldap',
            '  url: ldap://127.0.0.1:1',
            '  bindDn: cn=admin,dc=example,dc=test',
            `  bindPasswordFile: ${path.join(dir, 'ldap-password')}`,
            '  users: { baseDn: "ou=people,dc=example,dc=test" }',
            '  groups: { baseDn: "ou=groups,dc=example,dc=test" }',
            'target:',
            '  url: http://127.0.0.1:1/scim/directory/x',
            `  tokenFile: ${path.join(dir, 'token')}`,
            `state: { path: ${path.join(dir, 'state.json')} }`,
            `schedule: "${schedule}"`,
            '',
          ].join('\n'),
          { mode: 0o600 },
        );
      config('*/15 * * * *');
      const daemon = new Daemon(file, loadConfig(file));
      try {
        expect(await gaugeValue(daemon.metrics, 'ldap_scim_schedule_period_seconds')).to.equal(0);
        // start() would also bind the health port, take the state lock and run a cycle; schedule() is the step it
        // shares with reload(), and the one that sets the gauge.
        (daemon as unknown as { schedule(): void }).schedule();
        expect(await gaugeValue(daemon.metrics, 'ldap_scim_schedule_period_seconds')).to.equal(900);
        config('*/30 * * * * *');
        daemon.reload();
        expect(await gaugeValue(daemon.metrics, 'ldap_scim_schedule_period_seconds')).to.equal(30);
      } finally {
        await daemon.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('counts every cycle result from 0, so the first guard stop after a restart is an increase', async () => {
      const text = await new DaemonMetrics().registry.metrics();
      expect(text).to.match(/^ldap_scim_cycles_total\{result="guard-stopped"\} 0$/m);
      expect(text).to.match(/^ldap_scim_cycles_total\{result="key-rejected"\} 0$/m);
    });
  });

  describe('promtool (Debian package prometheus)', () => {
    const version = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    let dir = '';
    // Required like slapd is: scripts/setup.sh installs it, and without it these checks would prove nothing.
    before(() => {
      if (version.status !== 0) {
        expect.fail(`promtool is not on the PATH (${version.error?.message ?? version.stderr}); ./scripts/setup.sh installs Debian's prometheus package for it`);
      }
      dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-promtool-'));
    });
    after(() => dir && rmSync(dir, { recursive: true, force: true }));
    const promtool = (...args: string[]) => spawnSync('promtool', args, { encoding: 'utf8', cwd: dir });

    it('check rules accepts the alerting rules', function () {
      const r = promtool('check', 'rules', RULES_FILE);
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.match(/SUCCESS: \d+ rules found/);
    });

    it('check rules rejects a broken expression (the check can fail)', function () {
      const broken = path.join(dir, 'broken.yml');
      writeFileSync(broken, readFileSync(RULES_FILE, 'utf8').replace('expr: ldap_scim_ready == 0', 'expr: ldap_scim_ready == (0'));
      expect(promtool('check', 'rules', broken).status).to.not.equal(0);
    });

    it("the dashboard's queries parse as PromQL", function () {
      // Grafana fills these in before Prometheus sees a query; any valid stand-in does for a syntax check.
      const promql = (q: string) => q.replaceAll('$__rate_interval', '5m').replaceAll('$__interval', '1m').replaceAll('$__range', '1d').replaceAll('$instance', '.*');
      const panelQueries = panelsOf(readDashboard()).flatMap((p) => (p.targets ?? []).map((t, i) => ({ record: `dashboard:panel_${p.id}:${i}`, expr: promql(t.expr ?? '') })));
      const file = path.join(dir, 'dashboard-queries.yml');
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: panelQueries }] }));
      const r = promtool('check', 'rules', file);
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.include(`SUCCESS: ${panelQueries.length} rules found`);
    });

    it('the rules fire, and stay quiet, as intended on recorded scenarios', function () {
      const r = runScenarios(dir, SCENARIOS);
      expect(r.status, r.stdout + r.stderr).to.equal(0);
    });

    it('every alert has a scenario in which it fires', () => {
      const firing = new Set(SCENARIOS.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
      expect(rulesOf(readRules()).map((r) => String(r.alert)).filter((a) => !firing.has(a))).to.deep.equal([]);
    });

    it('a scenario that expects the wrong thing fails (the scenarios can fail)', function () {
      const wrong = structuredClone(SCENARIOS);
      const notReady = wrong.flatMap((t) => t.alert_rule_test).find((a) => a.alertname === 'LdapScimNotReady' && a.exp_alerts.length > 0)!;
      notReady.eval_time = '20m'; // before its "for: 30m" has passed
      const r = runScenarios(dir, wrong);
      expect(r.status).to.not.equal(0);
      expect(r.stdout + r.stderr).to.include('LdapScimNotReady');
    });
  });
});

async function gaugeValue(metrics: DaemonMetrics, name: string): Promise<number | undefined> {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  return m?.values[0]?.value;
}

// Scenarios for `promtool test rules`, at 1-minute steps from time 0. Annotations are compared verbatim by promtool
// and are prose, so the scenarios run on a copy without them; `check rules` above parses the real templates.
interface Scenario {
  interval: string;
  input_series: { series: string; values: string }[];
  alert_rule_test: { eval_time: string; alertname: string; exp_alerts: { exp_labels: Record<string, string> }[] }[];
}
const JOB = 'ldap-scim';
const series = (name: string, instance: string, labels: Record<string, string> = {}) =>
  `${name}{${Object.entries({ job: JOB, instance, ...labels })
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;
const firing = (severity: string, instance: string, labels: Record<string, string> = {}) => ({ exp_labels: { severity, job: JOB, instance, ...labels } });

const SCENARIOS: Scenario[] = [
  {
    interval: '1m',
    input_series: [
      { series: series('ldap_scim_key_days_left', 'estimated', { fingerprint: 'sha256:aaaaaaaaaaaa', estimated: 'true' }), values: '10x120' },
      { series: series('ldap_scim_key_days_left', 'configured', { fingerprint: 'sha256:bbbbbbbbbbbb', estimated: 'false' }), values: '2x120' },
      { series: series('ldap_scim_key_days_left', 'fresh', { fingerprint: 'sha256:cccccccccccc', estimated: 'false' }), values: '200x120' },
    ],
    alert_rule_test: [
      { eval_time: '30m', alertname: 'LdapScimApiKeyExpiresSoon', exp_alerts: [] },
      { eval_time: '90m', alertname: 'LdapScimApiKeyExpiresSoon', exp_alerts: [firing('warning', 'estimated', { fingerprint: 'sha256:aaaaaaaaaaaa', estimated: 'true' })] },
      { eval_time: '90m', alertname: 'LdapScimApiKeyExpiresVerySoon', exp_alerts: [firing('critical', 'configured', { fingerprint: 'sha256:bbbbbbbbbbbb', estimated: 'false' })] },
    ],
  },
  {
    interval: '1m',
    input_series: [
      // Succeeds every minute / once at 1 min / never / never, with no schedule exported yet.
      ...(
        [
          ['healthy', '60+60x120', '900x120'],
          ['stale', '60x120', '900x120'],
          ['never', '0x120', '900x120'],
          ['unscheduled', '0x120', '0x120'],
        ] as const
      ).flatMap(([instance, lastSuccess, period]) => [
        { series: series('ldap_scim_last_success_timestamp_seconds', instance), values: lastSuccess },
        { series: series('ldap_scim_schedule_period_seconds', instance), values: period },
        { series: series('ldap_scim_process_start_time_seconds', instance), values: '0x120' },
      ]),
    ],
    alert_rule_test: [
      // 3 × 15 min after the last success (or the start), plus "for: 5m".
      { eval_time: '45m', alertname: 'LdapScimNoRecentSuccess', exp_alerts: [] },
      { eval_time: '45m', alertname: 'LdapScimNeverSucceeded', exp_alerts: [] },
      { eval_time: '60m', alertname: 'LdapScimNoRecentSuccess', exp_alerts: [firing('warning', 'stale')] },
      { eval_time: '60m', alertname: 'LdapScimNeverSucceeded', exp_alerts: [firing('warning', 'never')] },
    ],
  },
  {
    interval: '1m',
    input_series: [
      // A guard holds from 5 min (counter from its exported 0) until an approved cycle succeeds at 25 min.
      { series: series('ldap_scim_cycles_total', 'guarded', { result: 'guard-stopped' }), values: '0x4 1x9 2x9 3x20' },
      { series: series('ldap_scim_ready', 'guarded'), values: '1x4 0x19 1x20' },
      { series: series('ldap_scim_cycles_total', 'refused', { result: 'key-rejected' }), values: '0x2 1x10 2x30' },
      { series: series('ldap_scim_ready', 'refused'), values: '0x44' },
    ],
    alert_rule_test: [
      { eval_time: '3m', alertname: 'LdapScimSafetyGuardHolding', exp_alerts: [] },
      { eval_time: '6m', alertname: 'LdapScimSafetyGuardHolding', exp_alerts: [firing('warning', 'guarded', { result: 'guard-stopped' })] },
      { eval_time: '30m', alertname: 'LdapScimSafetyGuardHolding', exp_alerts: [] },
      { eval_time: '5m', alertname: 'LdapScimApiKeyRejected', exp_alerts: [firing('critical', 'refused', { result: 'key-rejected' })] },
      { eval_time: '40m', alertname: 'LdapScimNotReady', exp_alerts: [firing('warning', 'refused')] },
      { eval_time: '20m', alertname: 'LdapScimMetricsAbsent', exp_alerts: [] },
    ],
  },
  {
    interval: '1m',
    input_series: [
      // 10 of every 100 requests answered 429, against 1 in 100.
      { series: series('ldap_scim_scim_requests_total', 'throttled', { method: 'GET', status: '200' }), values: '0+90x60' },
      { series: series('ldap_scim_scim_requests_total', 'throttled', { method: 'PATCH', status: '429' }), values: '0+10x60' },
      { series: series('ldap_scim_scim_rate_limited_total', 'throttled'), values: '0+10x60' },
      { series: series('ldap_scim_scim_requests_total', 'calm', { method: 'GET', status: '200' }), values: '0+99x60' },
      { series: series('ldap_scim_scim_requests_total', 'calm', { method: 'GET', status: '429' }), values: '0+1x60' },
      { series: series('ldap_scim_scim_rate_limited_total', 'calm'), values: '0+1x60' },
    ],
    alert_rule_test: [{ eval_time: '40m', alertname: 'LdapScimRateLimited', exp_alerts: [firing('warning', 'throttled')] }],
  },
  {
    // Scraped every 5 minutes for a day and more: one conflict left waiting, one approved after two hours.
    interval: '5m',
    input_series: [
      { series: series('ldap_scim_group_conflicts', 'waiting'), values: '1x360' },
      { series: series('ldap_scim_group_conflicts', 'reviewed'), values: '1x24 0x336' },
    ],
    alert_rule_test: [
      { eval_time: '23h', alertname: 'LdapScimGroupConflictsWaiting', exp_alerts: [] },
      { eval_time: '25h', alertname: 'LdapScimGroupConflictsWaiting', exp_alerts: [firing('warning', 'waiting')] },
    ],
  },
  {
    interval: '1m',
    input_series: [{ series: series('ldap_scim_users_in_scope', 'gone'), values: '5x5' }],
    alert_rule_test: [
      { eval_time: '10m', alertname: 'LdapScimMetricsAbsent', exp_alerts: [] },
      { eval_time: '20m', alertname: 'LdapScimMetricsAbsent', exp_alerts: [{ exp_labels: { severity: 'critical' } }] },
    ],
  },
];

function runScenarios(dir: string, scenarios: Scenario[]): SpawnSyncReturns<string> {
  const rules = readRules();
  for (const r of rulesOf(rules)) delete r.annotations;
  writeFileSync(path.join(dir, 'rules.yml'), stringify(rules));
  writeFileSync(path.join(dir, 'scenarios.yml'), stringify({ rule_files: ['rules.yml'], evaluation_interval: '1m', tests: scenarios }));
  return spawnSync('promtool', ['test', 'rules', 'scenarios.yml'], { encoding: 'utf8', cwd: dir });
}
