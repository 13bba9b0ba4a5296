import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '@nodekeeper/common';
import { parseSelector } from './selector.ts';

// Parsing and matching are the contract's (packages/api/src/selector.test.ts); this is nkctl's wrapper: its error.
describe('label selectors in nkctl', () => {
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
