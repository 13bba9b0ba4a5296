import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderTable } from './table.ts';

describe('renderTable', () => {
  it('aligns columns two spaces apart under upper-case headers, without trailing spaces', () => {
    const out = renderTable(['name', 'Status', 'age'], [['node-1', 'Ready', '4d'], ['a-much-longer-name', '', '3m']]);
    assert.equal(
      out,
      'NAME                STATUS  AGE\n' +
        'node-1              Ready   4d\n' +
        'a-much-longer-name  <none>  3m\n',
    );
  });

  it('keeps one line per row whatever the cells hold', () => {
    const out = renderTable(['a', 'b'], [['x\ny', 'tab\there']]);
    assert.equal(out.split('\n').length, 3);
  });

  it('describe style: headers as given, dashed rule, indented', () => {
    assert.equal(renderTable(['Type', 'Reason'], [['Normal', 'Enrolled']], { describe: true, indent: 2 }), '  Type    Reason\n  ----    ------\n  Normal  Enrolled\n');
  });

  it('refuses a row of the wrong width (misuse)', () => {
    assert.throws(() => renderTable(['a', 'b'], [['only one']]), RangeError);
  });
});
