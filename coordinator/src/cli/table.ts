/**
 * Tables in the style of `kubectl get`: upper-case headers, left-aligned columns each
 * as wide as its widest cell, two spaces between columns, no trailing spaces, so
 * `awk '{print $1}'` and eyes both work.
 */

export interface TableOptions {
  /** `kubectl describe` style: headers as given, underlined with dashes. Default: upper-case, no rule. */
  readonly describe?: boolean;
  /** Spaces before every line (describe nests tables under a section). */
  readonly indent?: number;
}

/** Render rows under headers, each column as wide as its widest cell, two spaces apart. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[], opts: TableOptions = {}): string {
  for (const row of rows) {
    if (row.length !== headers.length) throw new RangeError(`row has ${row.length} cells, headers have ${headers.length}`);
  }
  const head = opts.describe === true ? [...headers] : headers.map((h) => h.toUpperCase());
  const rule = opts.describe === true ? [headers.map((h) => '-'.repeat(h.length))] : [];
  const all = [head, ...rule, ...rows.map((r) => r.map(clean))];
  const widths = headers.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const pad = ' '.repeat(opts.indent ?? 0);
  return all
    .map((r) => pad + r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join('  ').trimEnd())
    .join('\n') + '\n';
}

/** A cell never breaks the table: newlines and tabs become spaces; empty becomes `<none>`. */
function clean(cell: string): string {
  const s = cell.replace(/[\r\n\t]+/g, ' ');
  return s === '' ? '<none>' : s;
}
