/**
 * The host CRDs of the kinds the coordinator itself validates (Rollout,
 * RemediationRule, ClusterPackageVersion), generated from the coordinator's own TypeBox
 * schemas, so the host and the member can never disagree on a field. Pure; the file is
 * written by scripts/gen-crds.ts and `crd-schemas.test.ts` fails when it is stale.
 *
 * TypeBox speaks JSON Schema; a CRD wants a structural schema
 * (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
 * every node typed, no `additionalProperties: false` (the API server prunes unknown
 * fields instead), unions only as enums, nullable or int-or-string. What a schema cannot
 * say (exactly one of two fields, a window that opens) is stated again as CEL rules
 * (`x-kubernetes-validations`), next to the same rule in the coordinator's validation.
 */
import type { TSchema } from '@sinclair/typebox';
import { stringify } from 'yaml';
import { CpvObject } from '../packages/cluster-package-version.ts';
import { RemediationRuleSchema } from '../remediation/rules.ts';
import { RolloutSpecInputSchema } from '../rollout/spec.ts';
import { GROUP, VERSION } from './names.ts';

type Json = { [k: string]: unknown };

/** JSON Schema keywords a structural schema keeps as they are. */
const KEEP = ['type', 'minItems', 'maxItems', 'minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'maxProperties', 'minProperties', 'description', 'format'] as const;

/**
 * One TypeBox (JSON Schema) node as a structural schema node. Throws a TypeError on a
 * construct it does not know: a new kind of schema must be taught here, not skipped.
 */
export function toStructural(schema: TSchema | Json, at = ''): Json {
  const s = schema as Json;
  const out: Json = {};
  for (const k of KEEP) if (s[k] !== undefined) out[k] = s[k];
  if (s['const'] !== undefined) {
    out['type'] = typeof s['const'] === 'number' ? (Number.isInteger(s['const']) ? 'integer' : 'number') : typeof s['const'];
    out['enum'] = [s['const']];
  }
  if (Array.isArray(s['anyOf'])) Object.assign(out, union(s['anyOf'] as Json[], at));
  if (s['type'] === 'object') {
    const props = (s['properties'] ?? {}) as Record<string, Json>;
    if (Object.keys(props).length > 0) out['properties'] = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, toStructural(v, `${at}.${k}`)]));
    if (Array.isArray(s['required']) && s['required'].length > 0) out['required'] = s['required'];
    const pattern = s['patternProperties'] as Record<string, Json> | undefined;
    if (pattern !== undefined) {
      const values = Object.values(pattern);
      if (values.length !== 1) throw new TypeError(`${at}: only one patternProperties entry (a Record) is supported`);
      out['additionalProperties'] = toStructural(values[0]!, `${at}[*]`);
    } else if (s['additionalProperties'] !== undefined && s['additionalProperties'] !== false) {
      if (s['additionalProperties'] === true) out['x-kubernetes-preserve-unknown-fields'] = true;
      else out['additionalProperties'] = toStructural(s['additionalProperties'] as Json, `${at}[*]`);
    }
  }
  if (s['type'] === 'array') out['items'] = toStructural(s['items'] as Json, `${at}[]`);
  if (s['enum'] !== undefined) out['enum'] = s['enum'];
  // Type.Unknown(): anything, kept as written.
  if (out['type'] === undefined && out['x-kubernetes-int-or-string'] === undefined) {
    if (Object.keys(s).filter((k) => !k.startsWith('$') && k !== 'description').length !== 0 && s['anyOf'] === undefined) throw new TypeError(`${at}: schema without a type: ${JSON.stringify(s).slice(0, 200)}`);
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  return out;
}

/** anyOf as a structural schema can say it: an enum, a nullable value, or int-or-string. */
function union(branches: readonly Json[], at: string): Json {
  const nonNull = branches.filter((b) => b['type'] !== 'null');
  const nullable = nonNull.length !== branches.length;
  if (nonNull.length > 0 && nonNull.every((b) => b['const'] !== undefined && b['type'] === nonNull[0]!['type'])) {
    return { type: nonNull[0]!['type'], enum: nonNull.map((b) => b['const']), ...(nullable ? { nullable: true } : {}) };
  }
  if (nonNull.length === 1) return { ...toStructural(nonNull[0]!, at), ...(nullable ? { nullable: true } : {}) };
  const int = nonNull.find((b) => b['type'] === 'integer');
  const str = nonNull.find((b) => b['type'] === 'string');
  if (nonNull.length === 2 && int !== undefined && str !== undefined) {
    // int-or-string: the branches' own limits become one CEL rule (types may not sit inside anyOf).
    const intRule = [int['minimum'] === undefined ? null : `self >= ${int['minimum']}`, int['maximum'] === undefined ? null : `self <= ${int['maximum']}`].filter((x) => x !== null).join(' && ') || 'true';
    const strRule = str['pattern'] === undefined ? 'true' : `self.matches(${JSON.stringify(str['pattern'])})`;
    const out: Json = { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] };
    if (intRule !== 'true' || strRule !== 'true') {
      if (str['maxLength'] === undefined && str['pattern'] !== undefined) out['maxLength'] = 16; // bounds the CEL cost of matches()
      out['x-kubernetes-validations'] = [{ rule: `type(self) == int ? ${intRule} : ${strRule}`, message: `an integer${int['minimum'] === undefined ? '' : ` >= ${int['minimum']}`} or a string matching ${str['pattern'] ?? 'anything'}` }];
    }
    return out;
  }
  throw new TypeError(`${at}: a union a structural schema cannot say: ${JSON.stringify(branches).slice(0, 200)}`);
}

/** Adds keys at a dotted path of a structural schema (`strategy.canary`, `packages[]`). */
function at(schema: Json, path: string, extra: Json): void {
  let node = schema;
  for (const part of path.split('.').filter((p) => p !== '')) {
    const items = part.endsWith('[]');
    const name = items ? part.slice(0, -2) : part;
    node = ((node['properties'] as Record<string, Json> | undefined)?.[name]) as Json;
    if (node === undefined) throw new TypeError(`no field ${path} in the schema`);
    if (items) node = node['items'] as Json;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (k === 'x-kubernetes-validations') node[k] = [...((node[k] as unknown[] | undefined) ?? []), ...(v as unknown[])];
    else node[k] = v;
  }
}

const rule = (r: string, message: string, extra: Json = {}) => ({ 'x-kubernetes-validations': [{ rule: r, message, ...extra }] });

const CONDITIONS: Json = {
  type: 'array', maxItems: 8, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'],
  items: {
    type: 'object', required: ['type', 'status', 'reason', 'lastTransitionTime'],
    properties: {
      type: { type: 'string', maxLength: 63 },
      status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
      reason: { type: 'string', maxLength: 128 },
      message: { type: 'string', maxLength: 4096 },
      lastTransitionTime: { type: 'string', format: 'date-time' },
      observedGeneration: { type: 'integer', minimum: 0 },
    },
  },
};

const count = { type: 'integer', minimum: 0 };

function crd(kind: string, plural: string, shortNames: string[], columns: Json[], spec: Json, status: Json): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'nodekeeper' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List`, shortNames, categories: ['nodekeeper'] },
      versions: [{
        name: VERSION, served: true, storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: columns,
        schema: { openAPIV3Schema: { type: 'object', required: ['spec'], properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, spec, status } } },
      }],
    },
  };
}

/** The Rollout CRD: the member's Rollout spec, plus the rules its validation checks by hand. */
export function rolloutCrd(): Json {
  const spec = toStructural(RolloutSpecInputSchema, 'spec');
  at(spec, '', rule('has(self.packages) != has(self.reboot)', 'give packages (an install rollout) or reboot (a reboot rollout), exactly one'));
  // Immutable after creation, as the member's apply says (NK_ROLLOUT_FIELD_IMMUTABLE).
  at(spec, '', rule('has(self.packages) == has(oldSelf.packages) && has(self.reboot) == has(oldSelf.reboot)', 'packages and reboot are immutable: create another Rollout'));
  at(spec, 'packages', rule('self == oldSelf', 'packages are immutable: create another Rollout'));
  at(spec, 'packages', { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['package'] }); // a package listed twice is refused
  at(spec, 'strategy.canary', rule('!(has(self.count) && has(self.percent))', 'give count or percent, not both'));
  at(spec, 'strategy', rule('!(has(self.batches) && has(self.batchSize))', 'give batches or batchSize, not both'));
  at(spec, 'strategy', rule('!has(self.batches) || self.batches[size(self.batches) - 1] == 100', 'the last batch must be 100 (every selected machine)'));
  at(spec, 'strategy.window', rule('self.start != self.end', 'start and end are equal: the window would never be open'));
  const status: Json = {
    type: 'object',
    properties: {
      observedGeneration: count,
      phase: { type: 'string', maxLength: 32 },
      reason: { type: 'string', maxLength: 128 },
      message: { type: 'string', maxLength: 4096 },
      progress: { type: 'string', maxLength: 32, description: 'machines done / selected, as on the member' },
      counts: { type: 'object', properties: Object.fromEntries(['total', 'waiting', 'inProgress', 'succeeded', 'failed', 'rollingBack', 'rolledBack', 'skipped'].map((k) => [k, count])) },
      conditions: CONDITIONS,
      startedTime: { type: 'string', format: 'date-time', nullable: true },
      completedTime: { type: 'string', format: 'date-time', nullable: true },
    },
  };
  return crd('Rollout', 'rollouts', ['nkro'], [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Packages', type: 'string', jsonPath: '.spec.packages[*].package' },
    { name: 'Progress', type: 'string', jsonPath: '.status.progress' },
    { name: 'Accepted', type: 'string', jsonPath: '.status.conditions[?(@.type=="Accepted")].status', priority: 1 },
    { name: 'Reason', type: 'string', jsonPath: '.status.reason', priority: 1 },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ], spec, status);
}

/** The RemediationRule CRD. */
export function remediationRuleCrd(): Json {
  const spec = toStructural((RemediationRuleSchema.properties as Record<string, TSchema>)['spec']!, 'spec');
  at(spec, '', rule("self.ladder.all(s, s.action != 'CordonAndNotify') || (self.ladder[size(self.ladder) - 1].action == 'CordonAndNotify' && self.ladder.filter(s, s.action == 'CordonAndNotify').size() == 1)", 'CordonAndNotify ends the ladder: it must be the last step'));
  at(spec, '', rule("self.fault != 'AgentSilent' || self.ladder.all(s, s.action == 'CordonAndNotify')", 'an AgentSilent machine cannot receive commands: only CordonAndNotify applies'));
  at(spec, 'ladder[]', rule("!(self.action in ['Reboot', 'CordonAndNotify']) || !has(self.target)", 'Reboot and CordonAndNotify take no target'));
  const status: Json = {
    type: 'object',
    properties: {
      observedGeneration: count,
      enabled: { type: 'boolean', description: 'the rule is in force on the member' },
      conditions: CONDITIONS,
    },
  };
  return crd('RemediationRule', 'remediationrules', ['nkrr'], [
    { name: 'Fault', type: 'string', jsonPath: '.spec.fault' },
    { name: 'Enabled', type: 'boolean', jsonPath: '.status.enabled' },
    { name: 'Dry-Run', type: 'boolean', jsonPath: '.spec.dryRun', priority: 1 },
    { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Accepted")].reason', priority: 1 },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ], spec, status);
}

/** The ClusterPackageVersion CRD (host objects are named freely; the member's own is "cluster"). */
export function clusterPackageVersionCrd(): Json {
  const spec = toStructural((CpvObject.properties as Record<string, TSchema>)['spec']!, 'spec');
  at(spec, 'packages', { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] });
  for (const base of ['updateStrategy', 'packages[].updateStrategy']) {
    at(spec, `${base}.canary`, rule('!(has(self.count) && has(self.percent))', 'give count or percent, not both'));
    at(spec, base, rule('!(has(self.batches) && has(self.batchSize))', 'give batches or batchSize, not both'));
    at(spec, `${base}.window`, rule('self.start != self.end', 'start and end are equal: the window would never be open'));
  }
  const status: Json = {
    type: 'object',
    properties: {
      observedGeneration: count,
      conditions: CONDITIONS,
      memberGeneration: { type: 'integer', minimum: 0, description: "Generation of the member's own ClusterPackageVersion that this object produced." },
    },
  };
  return crd('ClusterPackageVersion', 'clusterpackageversions', ['cpv'], [
    { name: 'Accepted', type: 'string', jsonPath: '.status.conditions[?(@.type=="Accepted")].status' },
    { name: 'Applied', type: 'string', jsonPath: '.status.conditions[?(@.type=="Applied")].status' },
    { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Accepted")].reason' },
    { name: 'Generation', type: 'integer', jsonPath: '.metadata.generation' },
    { name: 'Observed', type: 'integer', jsonPath: '.status.observedGeneration' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ], spec, status);
}

/** Every generated CRD, in the order the file lists them. */
export function generatedCrds(): Json[] {
  return [clusterPackageVersionCrd(), rolloutCrd(), remediationRuleCrd()];
}

const HEADER = `# nodekeeper's objects on the host cluster (group nodekeeper.io, version v1alpha1).
# Install with \`nkctl host install --kubeconfig HOST\` or \`kubectl apply -f\` this file.
#   Cluster                 cluster-scoped, one per member cluster, written by that member
#   Machine                 one per node, in the member's namespace (nodekeeper-<cluster>)
#   ClusterPackageVersion   desired package versions for a member, authored on the host
#                           in the member's namespace and pulled by it
#   Rollout                 a rollout authored on the host for a member, pulled by it
#   RemediationRule         a remediation rule authored on the host for a member, pulled by it
# Cluster and Machine are written by hand below; the last three are GENERATED from the
# coordinator's own schemas by scripts/gen-crds.ts (edit those, then run it).
`;
const GENERATED_MARK = '# --- generated by scripts/gen-crds.ts: do not edit below this line ---';

/**
 * The whole crds.yaml: the header, the hand-written CRDs of `current` (Cluster, Machine:
 * every document before the generated mark whose name is not a generated CRD's), then
 * the generated ones.
 */
export function renderCrdsFile(current: string): string {
  const generated = generatedCrds();
  const names = new Set(generated.map((c) => (c['metadata'] as { name: string }).name));
  const handWritten = current.split(GENERATED_MARK)[0]!
    .split(/^---\s*$/m)
    .map((doc) => doc.split('\n').filter((l) => !/^#/.test(l)).join('\n').trim())
    .filter((doc) => doc !== '' && ![...names].some((n) => new RegExp(`^\\s+name: ${n.replace(/\./g, '\\.')}\\s*$`, 'm').test(doc)));
  const yaml = generated.map((c) => stringify(c, { lineWidth: 0, aliasDuplicateObjects: false }).trimEnd());
  return `${HEADER}${handWritten.join('\n---\n')}\n---\n${GENERATED_MARK}\n${yaml.join('\n---\n')}\n`;
}
