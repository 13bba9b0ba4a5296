/**
 * The server's routes against the contract's path table (@nodekeeper/api): the same
 * names, methods and access, each table path accepted by its route's pattern, and no
 * route or row without the other. createApi refuses to start on any difference, so
 * `/openapi/v3` (built from the table) always says what the server serves.
 */
import { PATHS, samplePath, type Access, type PathEntry } from '@nodekeeper/api';
import type { Route, RouteAccess } from './http-util.ts';

const accessOf = (a: RouteAccess): Access => a ?? 'none';

/** Every difference between the routes and the table, in words; empty when they agree. */
export function contractProblems(routes: readonly Pick<Route, 'method' | 'pattern' | 'name' | 'access'>[], table: readonly PathEntry[] = PATHS): string[] {
  const problems: string[] = [];
  for (const r of routes) {
    const rows = table.filter((e) => e.name === r.name);
    if (rows.length === 0) {
      problems.push(`route ${r.name} (${r.method} ${r.pattern.source}) has no row in the contract's path table (packages/api/src/paths.ts)`);
      continue;
    }
    for (const e of rows) {
      if (e.method !== r.method) problems.push(`route ${r.name}: method ${r.method}, the contract says ${e.method}`);
      if (e.access !== accessOf(r.access)) problems.push(`route ${r.name}: access ${accessOf(r.access)}, the contract says ${e.access}`);
      if (!r.pattern.test(samplePath(e))) problems.push(`route ${r.name}: its pattern ${r.pattern.source} does not accept the contract's path ${e.path} (as ${samplePath(e)})`);
    }
  }
  for (const e of table) {
    if (!routes.some((r) => r.name === e.name)) problems.push(`the contract's ${e.method} ${e.path} (${e.name}) has no route on the server`);
  }
  return problems;
}
