/**
 * Label selectors as kubectl's `-l` reads them (equality-based, the subset of
 * https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
 * that matters for machines): `key=value`, `key==value`, `key!=value`, `key`, `!key`,
 * comma-separated and all required. One parser and one matcher for nkctl's `-l`, the
 * API's `labelSelector=` and the fleet page's label filter, so all three agree.
 *
 * Pure and free of TypeBox: the page imports it as `@nodekeeper/api/selector` and its
 * bundle must not carry the schema library.
 */

export type LabelRequirement =
  | { readonly op: 'eq'; readonly key: string; readonly value: string }
  | { readonly op: 'neq'; readonly key: string; readonly value: string }
  | { readonly op: 'exists'; readonly key: string }
  | { readonly op: 'notExists'; readonly key: string };

/**
 * A selector that cannot be parsed. Plain Error, not AppError: each caller names its own
 * code (nkctl NK_CLI_BAD_SELECTOR, the API NK_WATCH_QUERY_INVALID, the page marks its input).
 */
export class LabelSelectorError extends Error {
  override readonly name = 'LabelSelectorError';
  /** The whole selector as given. */
  readonly input: string;
  /** The comma-separated part that is wrong, trimmed. */
  readonly part: string;
  /** Why, as the end of a sentence: `has an invalid label key`. */
  readonly why: string;
  constructor(input: string, part: string, why: string) {
    super(`invalid label selector "${input}": "${part}" ${why}`);
    this.input = input;
    this.part = part;
    this.why = why;
  }
}

// Label keys: optional DNS-subdomain prefix and a name; values may be empty.
const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Parse a selector (empty or blank: no requirement); garbage throws LabelSelectorError naming the bad part. */
export function parseLabelSelector(input: string): readonly LabelRequirement[] {
  if (input.trim() === '') return [];
  return input.split(',').map((raw): LabelRequirement => {
    const part = raw.trim();
    const bad = (why: string) => new LabelSelectorError(input, part, why);
    const m = /^(!?)([^=!]*)(?:(==|=|!=)(.*))?$/.exec(part);
    if (m === null) throw bad('is not key=value, key!=value, key or !key');
    const [, not = '', key = '', op, value = ''] = m;
    if (!KEY.test(key)) throw bad('has an invalid label key');
    if (not === '!') {
      if (op !== undefined) throw bad('cannot combine ! with an operator');
      return { op: 'notExists', key };
    }
    if (op === undefined) return { op: 'exists', key };
    if (!VALUE.test(value)) throw bad('has an invalid label value');
    return op === '!=' ? { op: 'neq', key, value } : { op: 'eq', key, value };
  });
}

/** True when the labels satisfy every requirement (no requirement: always). */
export function labelsMatch(requirements: readonly LabelRequirement[], labels: Readonly<Record<string, string>>): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    switch (r.op) {
      case 'eq':
        return has && labels[r.key] === r.value;
      case 'neq':
        return !has || labels[r.key] !== r.value;
      case 'exists':
        return has;
      case 'notExists':
        return !has;
    }
  });
}
