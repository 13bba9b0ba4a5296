import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { LabelSelectorError, labelsMatch, parseLabelSelector, type LabelRequirement } from './selector.ts';

const labels = { role: 'worker', zone: 'zone-a', 'nodekeeper.io/canary': 'true', empty: '' };

test('each form of requirement, alone and together', () => {
  for (const [sel, want] of [
    ['', true],
    ['  ', true],
    ['role=worker', true],
    ['role==worker', true],
    ['role=master', false],
    ['role!=master', true],
    ['role!=worker', false],
    ['missing!=x', true],
    ['zone', true],
    ['!zone', false],
    ['!gpu', true],
    ['empty=', true],
    ['empty', true],
    ['role=worker, zone=zone-a , !gpu', true],
    ['role=worker,zone=zone-b', false],
    ['nodekeeper.io/canary=true', true],
  ] as const) {
    assert.equal(labelsMatch(parseLabelSelector(sel), labels), want, sel);
  }
});

test('a bad selector throws LabelSelectorError naming the input, the bad part and why', () => {
  for (const [sel, part, why] of [
    ['=x', '=x', 'has an invalid label key'],
    ['role=wor ker', 'role=wor ker', 'has an invalid label value'],
    ['!role=x', '!role=x', 'cannot combine ! with an operator'],
    ['a=b=c', 'a=b=c', 'has an invalid label value'],
    ['role=-bad', 'role=-bad', 'has an invalid label value'],
    ['ok=1, Bad/x', 'Bad/x', 'has an invalid label key'],
    ['a,,b', '', 'has an invalid label key'],
    ['a!b', 'a!b', 'is not key=value, key!=value, key or !key'],
  ] as const) {
    assert.throws(() => parseLabelSelector(sel), (err: unknown) => {
      assert.ok(err instanceof LabelSelectorError, sel);
      assert.deepEqual([err.input, err.part, err.why], [sel, part, why]);
      assert.equal(err.message, `invalid label selector "${sel}": "${part}" ${why}`);
      return true;
    });
  }
});

// Valid keys (with and without a prefix) and values, small alphabets so they collide.
const name = fc.stringMatching(/^[a-c]([-a-c_.]{0,3}[a-c0-9])?$/);
const key = fc.oneof(name, fc.tuple(fc.stringMatching(/^[a-c]([a-c.]{0,3}[a-c])?$/), name).map(([p, n]) => `${p}/${n}`));
const value = fc.oneof(fc.constant(''), name);
const requirement: fc.Arbitrary<LabelRequirement> = fc.oneof(
  fc.record({ op: fc.constantFrom('eq' as const, 'neq' as const), key, value }),
  fc.record({ op: fc.constantFrom('exists' as const, 'notExists' as const), key }),
);
const render = (r: LabelRequirement, doubleEq: boolean): string =>
  r.op === 'eq' ? `${r.key}${doubleEq ? '==' : '='}${r.value}` : r.op === 'neq' ? `${r.key}!=${r.value}` : r.op === 'exists' ? r.key : `!${r.key}`;

test('what is written is what is read: any list of requirements, however spaced', () => {
  fc.assert(fc.property(fc.array(fc.tuple(requirement, fc.boolean(), fc.constantFrom('', ' ', '  ')), { minLength: 1, maxLength: 6 }), (reqs) => {
    const text = reqs.map(([r, d, pad]) => `${pad}${render(r, d)}${pad}`).join(',');
    // fc.record builds null-prototype objects; compare plain copies.
    assert.deepEqual(parseLabelSelector(text), reqs.map(([r]) => ({ ...r })));
  }));
});

test('matching is the conjunction of its requirements; != and ! negate = and exists', () => {
  const labelSet = fc.dictionary(key, value, { maxKeys: 5 });
  fc.assert(fc.property(fc.array(requirement, { maxLength: 5 }), labelSet, (reqs, ls) => {
    assert.equal(labelsMatch(reqs, ls), reqs.every((r) => labelsMatch([r], ls)));
    for (const r of reqs) {
      const flipped: LabelRequirement = r.op === 'eq' ? { ...r, op: 'neq' } : r.op === 'neq' ? { ...r, op: 'eq' } : r.op === 'exists' ? { op: 'notExists', key: r.key } : { op: 'exists', key: r.key };
      assert.notEqual(labelsMatch([r], ls), labelsMatch([flipped], ls));
    }
  }));
});

test('any string either parses to one requirement per part or throws LabelSelectorError about one of its parts', () => {
  fc.assert(fc.property(fc.string({ unit: fc.constantFrom('a', 'b', '=', '!', ',', ' ', '/', '.', '-', 'Z', '9', 'é') , maxLength: 24 }), (s) => {
    try {
      const reqs = parseLabelSelector(s);
      assert.equal(reqs.length, s.trim() === '' ? 0 : s.split(',').length);
    } catch (err) {
      assert.ok(err instanceof LabelSelectorError, String(err));
      assert.ok(s.split(',').map((p) => p.trim()).includes(err.part));
    }
  }));
});

test('the selector module imports nothing (the fleet page bundles it: no TypeBox there)', () => {
  const src = readFileSync(new URL('./selector.ts', import.meta.url), 'utf8');
  assert.doesNotMatch(src, /^\s*(import|export)\b[^;]*\bfrom\s*['"]/m);
  assert.doesNotMatch(src, /\bimport\s*\(/);
});
