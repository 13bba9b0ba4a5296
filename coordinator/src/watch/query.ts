/**
 * The query of a list or watch request (`?watch=1&resourceVersion=N&labelSelector=...`),
 * read once at the edge: anything malformed is 400 NK_WATCH_QUERY_INVALID naming the
 * parameter, before anything is listed or streamed. Pure.
 */
import { AppError } from '@nodekeeper/common';
import { LabelSelectorError, labelsMatch, parseLabelSelector, type LabelRequirement } from '@nodekeeper/api/selector';

export interface WatchFilter {
  /** Machines only: every requirement must hold. */
  readonly selector: readonly LabelRequirement[];
  /** Rollouts only: just this one. */
  readonly name: string | null;
}

export interface ListQuery {
  readonly watch: boolean;
  /** Resume after this version (null: start with the current objects). */
  readonly resourceVersion: number | null;
  readonly filter: WatchFilter;
  /** End the watch after this many seconds (null: never). */
  readonly timeoutSeconds: number | null;
}

/** Which filters a list path takes. */
export type Filters = 'labelSelector' | 'name' | 'none';

const invalid = (message: string, param: string) => new AppError('NK_WATCH_QUERY_INVALID', message, { context: { path: param } });

/** One value of a parameter, or null; a repeated parameter is refused (which one would count?). */
function single(url: URL, name: string): string | null {
  const all = url.searchParams.getAll(name);
  if (all.length > 1) throw invalid(`query parameter ${name} is given ${all.length} times; give it once`, name);
  return all[0] ?? null;
}

function flag(url: URL, name: string): boolean {
  const v = single(url, name);
  if (v === null || v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true' || v === '') return true;
  throw invalid(`query parameter ${name} must be 1, true, 0 or false, got ${JSON.stringify(v.slice(0, 32))}`, name);
}

/** Reads a list path's query; throws NK_WATCH_QUERY_INVALID. */
export function parseListQuery(url: URL, filters: Filters): ListQuery {
  const watch = flag(url, 'watch');
  flag(url, 'allowWatchBookmarks'); // accepted; bookmarks are always sent
  const rvRaw = single(url, 'resourceVersion');
  // 0 and "" mean "any" in Kubernetes: start from the current objects.
  let resourceVersion: number | null = null;
  if (rvRaw !== null && rvRaw !== '' && rvRaw !== '0') {
    if (!/^[1-9]\d{0,14}$/.test(rvRaw)) throw invalid(`resourceVersion must be a decimal version from a list or a watch, got ${JSON.stringify(rvRaw.slice(0, 32))}`, 'resourceVersion');
    resourceVersion = Number(rvRaw);
  }
  const toRaw = single(url, 'timeoutSeconds');
  let timeoutSeconds: number | null = null;
  if (toRaw !== null) {
    if (!/^\d{1,5}$/.test(toRaw) || Number(toRaw) < 1 || Number(toRaw) > 86_400) throw invalid(`timeoutSeconds must be an integer from 1 to 86400, got ${JSON.stringify(toRaw.slice(0, 32))}`, 'timeoutSeconds');
    timeoutSeconds = Number(toRaw);
  }
  const selRaw = single(url, 'labelSelector');
  let selector: readonly LabelRequirement[] = [];
  if (selRaw !== null) {
    if (filters !== 'labelSelector') throw invalid('labelSelector is only supported on /v1/machines', 'labelSelector');
    if (selRaw.length > 1024) throw invalid('labelSelector is longer than 1024 characters', 'labelSelector');
    try {
      selector = parseLabelSelector(selRaw);
    } catch (err) {
      if (err instanceof LabelSelectorError) throw invalid(err.message, 'labelSelector');
      throw err;
    }
  }
  const name = single(url, 'name');
  if (name !== null) {
    if (filters !== 'name') throw invalid('name is only supported on /v1/rollouts', 'name');
    if (!/^[a-z0-9A-Z][a-zA-Z0-9._-]{0,252}$/.test(name)) throw invalid(`name ${JSON.stringify(name.slice(0, 64))} is not a valid object name`, 'name');
  }
  if (!watch && (resourceVersion !== null || timeoutSeconds !== null)) {
    // A list is always of the current objects; a version or timeout only means something to a watch.
    throw invalid('resourceVersion and timeoutSeconds need watch=1 (a list always answers with the current objects)', resourceVersion !== null ? 'resourceVersion' : 'timeoutSeconds');
  }
  return { watch, resourceVersion, filter: { selector, name }, timeoutSeconds };
}

/** Whether an object with this name and labels passes the filter (labels null: not a labelled kind). */
export function matchesFilter(f: WatchFilter, name: string, labels: Readonly<Record<string, string>> | null): boolean {
  if (f.name !== null && f.name !== name) return false;
  if (f.selector.length > 0 && (labels === null || !labelsMatch(f.selector, labels))) return false;
  return true;
}
