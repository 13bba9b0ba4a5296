import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '@nodekeeper/common';
import { matches, parseSelector } from './selector.ts';

const labels = { role: 'worker', zone: 'zone-a', 'nodekeeper.io/canary': 'true' };

describe('label selectors', () => {
  for (const [sel, want] of [
    ['', true],
    ['role=worker', true],
    ['role==worker', true],
    ['role=master', false],
    ['role!=master', true],
    ['role!=worker', false],
    ['missing!=x', true],
    ['zone', true],
    ['!zone', false],
    ['!gpu', true],
    ['role=worker,zone=zone-a', true],
    ['role=worker, zone=zone-b', false],
    ['nodekeeper.io/canary=true', true],
  ] as const) {
    it(`${JSON.stringify(sel)} -> ${want}`, () => assert.equal(matches(parseSelector(sel), labels), want));
  }

  for (const sel of ['=x', 'role=wor ker', '!role=x', 'a=b=c', 'role=-bad']) {
    it(`rejects ${JSON.stringify(sel)}`, () => {
      assert.throws(() => parseSelector(sel), (err: unknown) => err instanceof AppError && err.code === 'NK_CLI_BAD_SELECTOR' && err.message.includes(sel));
    });
  }
});

it('keeps the message and context nkctl printed before the parser moved to the contract', () => {
  assert.throws(() => parseSelector('ok, =x'), (err: unknown) =>
    err instanceof AppError && err.message === 'invalid label selector "ok, =x": "=x" has an invalid label key' && err.context["input"] === 'ok, =x');
});
