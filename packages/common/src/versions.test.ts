/**
 * Version strings as nodes really report them: a table of messy ones, and properties
 * that no string, however odd, makes the parser throw or return a non-semver.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import semver from 'semver';
import fc from 'fast-check';
import { toSemver, versionInfo } from './versions.ts';

const table: Array<[raw: string, expected: string | null]> = [
  ['Kubernetes v1.31.2', '1.31.2'],
  ['1.6.20~ds1', '1.6.20'],
  ['v1.34.1-eks-abc', '1.34.1-eks-abc'],
  ['1.1.1+ds1-3+b5', '1.1.1'],
  ['version unknown', null],
  ['v1.2', '1.2.0'],
  ['containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3', '1.6.20'],
  ['containerd containerd.io 1.7.24 88bf19b2105c8b17560993bee28a01ddc2f97182', '1.7.24'],
  ['CNI portmap plugin v1.4.0', '1.4.0'],
  ['v1.31.2+k3s1', '1.31.2'],
  ['v1.32.0-rc.1', '1.32.0-rc.1'],
  ['v1.32.0-rc.1+build.5', '1.32.0-rc.1'],
  ['1.2.3-', '1.2.3'],
  ['1.2.3-01', '1.2.3'],
  ['01.002.0003', '1.2.3'],
  ['  v1.30.0\n', '1.30.0'],
  ['1', null],
  ['v', null],
  ['', null],
  ['99999999999999999999.1.1', null],
];

for (const [raw, expected] of table) {
  test(`toSemver(${JSON.stringify(raw)}) is ${JSON.stringify(expected)}`, () => {
    assert.equal(toSemver(raw), expected);
    const info = versionInfo(raw, 'binary');
    assert.deepEqual(info, { raw: raw.trim(), semver: expected, source: 'binary' });
  });
}

test('300 random unicode characters never throw and give null or a valid semver', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', minLength: 300, maxLength: 300 }), (raw) => {
      const v = toSemver(raw);
      assert.ok(v === null || semver.valid(v) === v, `not semver: ${v}`);
      const info = versionInfo(raw, 'cri');
      assert.ok(info.raw.length <= 256);
      assert.equal(info.semver === null || semver.valid(info.semver) === info.semver, true);
    }),
    { numRuns: 300 },
  );
});

test('any string mixing digits, dots and separators parses to null or a valid semver', () => {
  const messy = fc.string({ unit: fc.constantFrom(...'0123456789.v-+~_ abcdsx'.split('')), maxLength: 60, size: 'max' });
  fc.assert(
    fc.property(messy, (raw) => {
      const v = toSemver(raw);
      assert.ok(v === null || semver.valid(v) === v, `${JSON.stringify(raw)} -> ${v}`);
    }),
    { numRuns: 2000 },
  );
});

test('a clean version, with or without a prefix and packaging suffix, reads back exactly', () => {
  const n = fc.integer({ min: 0, max: 100_000 });
  const prefix = fc.constantFrom('', 'v', 'Kubernetes v', 'containerd github.com/containerd/containerd ');
  const suffix = fc.constantFrom('', '~ds1', '+deb12u3', '~ds1-1+deb12u3', ' 88bf19b2');
  fc.assert(
    fc.property(n, n, n, prefix, suffix, (a, b, c, pre, post) => {
      assert.equal(toSemver(`${pre}${a}.${b}.${c}${post}`), `${a}.${b}.${c}`);
    }),
  );
});

test('versionInfo keeps the raw string trimmed and bounded', () => {
  const long = `v1.2.3 ${'x'.repeat(1000)}`;
  const info = versionInfo(long, 'package-db');
  assert.equal(info.raw.length, 256);
  assert.equal(info.semver, '1.2.3');
  assert.equal(info.source, 'package-db');
});

test('a reading asked again is the same, past the memo\'s bound and for strings too long to keep', () => {
  fc.assert(fc.property(fc.string({ maxLength: 300 }), (raw) => toSemver(raw) === toSemver(raw)));
  // More distinct strings than the memo keeps: it starts again, and the answers stay right.
  for (let i = 0; i < 5000; i += 1) assert.equal(toSemver(`v1.${i}.0`), `1.${i}.0`);
  for (const [raw, expected] of table) assert.equal(toSemver(raw), expected);
  const long = `${'x'.repeat(300)} v1.2.3`;
  assert.equal(toSemver(long), '1.2.3');
  assert.equal(toSemver(long), '1.2.3');
});
