/**
 * Choosing and validating the CNI network config the way containerd's go-cni and
 * libcni read it: files ending .conf, .conflist or .json in the conf dir, in lexical
 * order; a .conf/.json holds one plugin and is wrapped into a list.
 *
 * go-cni (containerd 1.6/1.7 loadFromConfDir) stops at the first file that fails to
 * load, while the rule (and libcni-based runtimes such as CRI-O's ocicni, and
 * the old kubelet dockershim) take the first *valid* file. We follow the issue and name
 * every file passed over, so an operator sees why containerd may still disagree.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

export const CONFIG_EXTENSIONS = ['.conf', '.conflist', '.json'] as const;
const MAX_CONFIG_BYTES = 1024 * 1024;

/** A plugin entry of the chosen config, with the IPAM delegate it names, if any. */
export interface CniPluginRef {
  readonly type: string;
  /** ipam.type: a delegate binary that must exist too (host-local, dhcp, static). */
  readonly ipamType: string | null;
}

export interface CniConfig {
  readonly file: string;
  readonly name: string;
  readonly cniVersion: string;
  readonly plugins: readonly CniPluginRef[];
}

export interface InvalidConfig {
  readonly file: string;
  readonly problem: string;
}

export type ConfigSelection =
  | { readonly kind: 'no-dir'; readonly dir: string }
  | { readonly kind: 'unreadable'; readonly dir: string; readonly detail: string }
  | { readonly kind: 'empty'; readonly dir: string }
  | { readonly kind: 'all-invalid'; readonly dir: string; readonly invalid: readonly InvalidConfig[] }
  | { readonly kind: 'chosen'; readonly config: CniConfig; readonly passedOver: readonly InvalidConfig[] };

/** Candidate files of `dir` (absolute paths), lexically ordered; directories skipped. */
export async function listConfigFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  const files: string[] = [];
  for (const name of names) {
    if (!CONFIG_EXTENSIONS.some((ext) => path.extname(name) === ext)) continue;
    const full = path.join(dir, name);
    try {
      if ((await stat(full)).isDirectory()) continue;
    } catch {
      // A dangling symlink is still a candidate: loading it reports the problem by name.
    }
    files.push(full);
  }
  // Go's sort.Strings orders by bytes; for the ASCII names used here that is code-unit order.
  return files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Validates one config file's text. Returns the config or the problem in words. */
export function parseConfig(file: string, text: string): CniConfig | InvalidConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { file, problem: `not valid JSON: ${(err as Error).message}` };
  }
  if (!isObject(doc)) return { file, problem: 'not a JSON object' };
  const cniVersion = doc['cniVersion'];
  if (typeof cniVersion !== 'string' || cniVersion === '') return { file, problem: 'missing "cniVersion"' };
  const name = doc['name'];
  if (typeof name !== 'string' || name === '') return { file, problem: 'missing "name"' };

  let entries: unknown[];
  if (file.endsWith('.conflist')) {
    const plugins = doc['plugins'];
    if (!Array.isArray(plugins)) return { file, problem: 'missing "plugins" list' };
    if (plugins.length === 0) return { file, problem: '"plugins" is empty' };
    entries = plugins;
  } else {
    // A single-plugin file; go-cni insists on a type, which also catches a list saved as .conf.
    if (typeof doc['type'] !== 'string' || doc['type'] === '') {
      return { file, problem: Array.isArray(doc['plugins']) ? 'missing "type" (a plugin list in a file not named .conflist?)' : 'missing "type"' };
    }
    entries = [doc];
  }
  const refs: CniPluginRef[] = [];
  for (const [i, entry] of entries.entries()) {
    if (!isObject(entry)) return { file, problem: `plugins[${i}] is not an object` };
    const type = entry['type'];
    if (typeof type !== 'string' || type === '') return { file, problem: `plugins[${i}] has no "type"` };
    if (!/^[A-Za-z0-9._-]+$/.test(type)) return { file, problem: `plugins[${i}] type ${JSON.stringify(type)} is not a plugin name` };
    const ipam = entry['ipam'];
    let ipamType: string | null = null;
    if (isObject(ipam) && typeof ipam['type'] === 'string' && ipam['type'] !== '') {
      if (!/^[A-Za-z0-9._-]+$/.test(ipam['type'])) return { file, problem: `plugins[${i}].ipam type ${JSON.stringify(ipam['type'])} is not a plugin name` };
      ipamType = ipam['type'];
    }
    refs.push({ type, ipamType });
  }
  return { file, name, cniVersion, plugins: refs };
}

/** Picks the config the runtime uses: the first valid candidate of `dir` in lexical order. */
export async function selectConfig(dir: string): Promise<ConfigSelection> {
  let files: string[];
  try {
    files = await listConfigFiles(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'no-dir', dir };
    return { kind: 'unreadable', dir, detail: (err as Error).message };
  }
  if (files.length === 0) return { kind: 'empty', dir };
  const invalid: InvalidConfig[] = [];
  for (const file of files) {
    const parsed = await loadConfig(file);
    if ('problem' in parsed) invalid.push(parsed);
    else return { kind: 'chosen', config: parsed, passedOver: invalid };
  }
  return { kind: 'all-invalid', dir, invalid };
}

async function loadConfig(file: string): Promise<CniConfig | InvalidConfig> {
  try {
    const st = await stat(file);
    if (st.size > MAX_CONFIG_BYTES) return { file, problem: `larger than ${MAX_CONFIG_BYTES} bytes` };
    return parseConfig(file, await readFile(file, 'utf8'));
  } catch (err) {
    return { file, problem: `cannot read: ${(err as Error).message}` };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
