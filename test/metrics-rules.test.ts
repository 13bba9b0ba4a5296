/**
 * The alerting rules' files agree with each other and with their docs (no promtool
 * needed; test/metrics-promtool.test.ts runs promtool on them):
 * - deploy/prometheus/nodekeeper-rules.yaml is exactly what generate.sh makes of rules.yml;
 * - every alert has a severity, a summary, a description and a runbook_url whose anchor
 *   is a section of docs/alerts.md, and every section there is an alert;
 * - every alert has a unit test in rules.test.yml where it fires and one where it does not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO } from './harness/processes.ts';

const dir = path.join(REPO, 'deploy/prometheus');
interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const plain = parse(readFileSync(path.join(dir, 'rules.yml'), 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
const alerts = plain.groups.flatMap((g) => g.rules);

test('nodekeeper-rules.yaml is the PrometheusRule generate.sh makes of rules.yml', () => {
  const generated = execFileSync(path.join(dir, 'generate.sh'), { encoding: 'utf8' });
  const committed = readFileSync(path.join(dir, 'nodekeeper-rules.yaml'), 'utf8');
  assert.equal(committed, generated, 'run deploy/prometheus/generate.sh > deploy/prometheus/nodekeeper-rules.yaml');
  const obj = parse(committed) as { apiVersion: string; kind: string; metadata: { name: string }; spec: { groups: unknown } };
  assert.equal(obj.apiVersion, 'monitoring.coreos.com/v1');
  assert.equal(obj.kind, 'PrometheusRule');
  assert.equal(obj.metadata.name, 'nodekeeper');
  assert.deepEqual(obj.spec.groups, plain.groups);
});

test('every alert has a severity, a summary, a description and a runbook in docs/alerts.md', () => {
  const doc = readFileSync(path.join(REPO, 'docs/alerts.md'), 'utf8');
  const sections = [...doc.matchAll(/^## (\S+)$/gm)].map((m) => m[1]!);
  assert.ok(alerts.length >= 10);
  assert.equal(new Set(alerts.map((a) => a.alert)).size, alerts.length, 'alert names are unique');
  for (const a of alerts) {
    assert.match(a.labels?.['severity'] ?? '', /^(critical|warning)$/, `${a.alert}: severity`);
    for (const k of ['summary', 'description', 'runbook_url']) assert.ok((a.annotations?.[k] ?? '').length > 10, `${a.alert}: ${k}`);
    const anchor = /docs\/alerts\.md#([a-z0-9-]+)$/.exec(a.annotations!['runbook_url']!)?.[1];
    assert.equal(anchor, a.alert.toLowerCase(), `${a.alert}: runbook_url points at its own section`);
    assert.ok(sections.includes(a.alert), `docs/alerts.md has no "## ${a.alert}" section`);
    const body = doc.slice(doc.indexOf(`## ${a.alert}\n`));
    for (const part of ['**What it means.**', '**How to look.**', '**What to do.**']) assert.ok(body.split(/^## /m)[1]!.includes(part), `${a.alert}: runbook lacks ${part}`);
  }
  for (const s of sections) assert.ok(alerts.some((a) => a.alert === s), `docs/alerts.md has a section for ${s}, which is no alert`);
});

test('every alert has a unit test where it fires and one where it does not', () => {
  const unit = parse(readFileSync(path.join(dir, 'rules.test.yml'), 'utf8')) as {
    rule_files: string[];
    tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
  };
  assert.deepEqual(unit.rule_files, ['rules.yml']);
  const cases = unit.tests.flatMap((t) => t.alert_rule_test ?? []);
  for (const a of alerts) {
    const mine = cases.filter((c) => c.alertname === a.alert);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${a.alert}: no case where it fires`);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${a.alert}: no case where it does not fire`);
  }
  for (const c of cases) assert.ok(alerts.some((a) => a.alert === c.alertname), `rules.test.yml tests ${c.alertname}, which is no alert`);
});
