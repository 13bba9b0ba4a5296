/**
 * Short directories for unix sockets (containerd's, and anything else that listens on
 * a path). A socket path must fit `sun_path`: 108 bytes with the terminating NUL on
 * Linux, 104 on the BSDs and macOS. A socket placed under the checkout, or under a test
 * dir inside it, fails once the checkout sits at a long path (issue 11: a clone at a
 * 75-character path broke `scripts/demo`), so sockets go under a short runtime dir
 * instead, whatever the checkout's location.
 *
 * The base is the first of the OS temp dir ($TMPDIR, else /tmp), $XDG_RUNTIME_DIR and
 * /tmp that is an absolute, writable directory of at most RUNTIME_BASE_MAX bytes (the
 * temp dir first: the demo keeps an etcd and artifacts there too, and /run/user is a
 * small tmpfs); each caller gets a fresh mkdtemp dir of its own below it (mode 0700, a
 * random name: no fixed path in a shared /tmp another user could claim first).
 *
 * Under test/harness/systemd.ts, /tmp and /run inside the booted namespace are private
 * tmpfs: a socket made here is not visible to processes inside it. No booted-systemd
 * test dials one (each booted node has its own).
 */
import { accessSync, constants, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The longest base accepted: room for `/nk-<tag>-XXXXXX/` and socket names like `containerd.sock.ttrpc`. */
export const RUNTIME_BASE_MAX = 48;
/** The most bytes a unix socket path may have on every platform we care about (104 minus the NUL). */
export const SOCKET_PATH_MAX = 103;

function usable(dir: string | undefined): dir is string {
  if (dir === undefined || dir === '' || !path.isAbsolute(dir) || Buffer.byteLength(dir) > RUNTIME_BASE_MAX) return false;
  try {
    if (!statSync(dir).isDirectory()) return false;
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The short base dir runtime dirs go under (see the file comment for the order). */
export function runtimeBase(env: Readonly<Record<string, string | undefined>> = process.env): string {
  for (const candidate of [tmpdir(), env['XDG_RUNTIME_DIR'], '/tmp']) if (usable(candidate)) return candidate;
  throw new Error(`no short writable runtime dir: ${tmpdir()}, $XDG_RUNTIME_DIR and /tmp are all unusable or longer than ${RUNTIME_BASE_MAX} bytes`);
}

/**
 * A fresh private dir for sockets, `<base>/nk-<tag>-XXXXXX`. It is removed when the
 * process exits (a test that SIGKILLs a daemon keeps its stale socket until then);
 * call the returned `remove()` to drop it earlier, or `keep()` to leave it (logs of a failure).
 */
export function makeRuntimeDir(tag: string): { dir: string; remove: () => void; keep: () => void } {
  if (!/^[a-z0-9-]{1,16}$/.test(tag)) throw new RangeError(`runtime dir tag must be 1-16 of [a-z0-9-], got ${JSON.stringify(tag)}`);
  const dir = mkdtempSync(path.join(runtimeBase(), `nk-${tag}-`));
  if (!hooked) process.once('exit', removeAll);
  hooked = true;
  live.add(dir);
  return {
    dir,
    remove: () => {
      live.delete(dir);
      rmSync(dir, { recursive: true, force: true });
    },
    keep: () => void live.delete(dir),
  };
}

/** Runtime dirs not yet removed; one 'exit' listener removes them all (one per dir would trip MaxListeners). */
const live = new Set<string>();
let hooked = false;
function removeAll(): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
  live.clear();
}

/** Throws when `socket` would not fit sun_path; a clear message beats containerd's EINVAL. */
export function assertSocketPath(socket: string): void {
  const bytes = Buffer.byteLength(socket);
  if (bytes > SOCKET_PATH_MAX) throw new Error(`unix socket path ${socket} is ${bytes} bytes, over the ${SOCKET_PATH_MAX} a socket path may have`);
}
