import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AppError } from '@nodekeeper/common';
import { humanDuration, parseDuration } from './duration.ts';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('parseDuration (Go time.ParseDuration)', () => {
  for (const [input, ms] of [
    ['30m', 30 * M],
    ['1h', H],
    ['24h', 24 * H],
    ['1h30m', 90 * M],
    ['1.5h', 90 * M],
    ['500ms', 500],
    ['2h45m30s', 2 * H + 45 * M + 30 * S],
    ['0', 0],
    ['+5s', 5 * S],
    ['-1m', -M],
    ['.5s', 500],
    ['1000us', 1],
  ] as const) {
    it(`reads ${input}`, () => assert.equal(parseDuration(input), ms));
  }

  for (const [input, why] of [
    ['', /empty duration/],
    ['abc', /expected a number at "abc"/],
    ['10', /missing unit after "10"/],
    ['1h30', /missing unit after "30"/],
    ['3d', /unknown unit "d" .*use 24h for a day/],
    ['2w', /use 168h for a week/],
    ['5 m', /unknown unit " m"/],
    ['h', /expected a number/],
    ['-', /a sign without a number/],
    ['1.2.3s', /missing unit after "1.2"/],
  ] as const) {
    it(`rejects ${JSON.stringify(input)} with a specific message`, () => {
      assert.throws(() => parseDuration(input, '--ttl'), (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.code, 'NK_CLI_BAD_DURATION');
        assert.match(err.message, /^invalid --ttl "/);
        assert.match(err.message, why);
        return true;
      });
    });
  }

  it('reads back any h/m/s combination it is given', () => {
    fc.assert(
      fc.property(fc.nat(1000), fc.nat(59), fc.nat(59), (h, m, s) => {
        assert.equal(parseDuration(`${h}h${m}m${s}s`), h * H + m * M + s * S);
      }),
    );
  });
});

describe('humanDuration (kubectl ages)', () => {
  for (const [ms, text] of [
    [-5 * S, '<invalid>'],
    [-1 * S, '0s'],
    [0, '0s'],
    [5 * S, '5s'],
    [119 * S, '119s'],
    [3 * M, '3m'],
    [3 * M + 12 * S, '3m12s'],
    [42 * M, '42m'],
    [179 * M, '179m'],
    [5 * H + 30 * M, '5h30m'],
    [2 * H, '120m'], // kubectl keeps minutes up to 3h
    [3 * H, '3h'],
    [20 * H, '20h'],
    [4 * D, '4d'],
    [3 * D + 4 * H, '3d4h'],
    [40 * D, '40d'],
    [730 * D + 30 * D, '2y30d'],
    [365 * 9 * D, '9y'],
  ] as const) {
    it(`prints ${ms} ms as ${text}`, () => assert.equal(humanDuration(ms), text));
  }

  it('never returns an empty string and is monotone in its unit ladder', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 * 365 * D }), (ms) => {
        assert.match(humanDuration(ms), /^\d+[smhdy](\d+[smhd])?$/);
      }),
    );
  });
});
