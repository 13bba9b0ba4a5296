/**
 * The reproducible parts of scripts/release: normalising a staged tree, packing it into a
 * tarball that is byte-identical for the same inputs, the SHA256SUMS file and its
 * ed25519 signature. Same commit, same tarballs: every entry has the same mtime (the
 * commit's time, or SOURCE_DATE_EPOCH), uid/gid 0 with numeric owners, modes 0755/0644
 * only, entries sorted by name, and gzip (default level: -9 is three times slower for 0.6 % less) without a file name or time stamp.
 */
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, open, readdir, readFile, utimes } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** A release-script failure the operator can act on: printed without a stack. */
export class ReleaseError extends Error {
  override readonly name = 'ReleaseError';
}

/**
 * Makes modes and mtimes of everything under `dir` canonical: directories and files with
 * any execute bit 0755, other files 0644, every mtime `epoch`. Symlinks are refused: the
 * layout has none, and a link's own mode and time are not portable.
 */
export async function normaliseTree(dir: string, epoch: number): Promise<void> {
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    if (st.isSymbolicLink()) throw new ReleaseError(`unexpected symlink in the release tree: ${p}`);
    if (st.isDirectory()) {
      for (const name of await readdir(p)) await walk(path.join(p, name));
      await chmod(p, 0o755);
    } else if (st.isFile()) {
      await chmod(p, st.mode & 0o111 ? 0o755 : 0o644);
    } else {
      throw new ReleaseError(`unexpected file type in the release tree: ${p}`);
    }
    await utimes(p, epoch, epoch);
  };
  await walk(dir);
}

/**
 * Packs the entries of `dir` (no top-level directory: the archive root is `dir`'s
 * content) into `out` with GNU tar and gzip -n. GNU tar's --sort=name orders each
 * directory's entries; the top-level names are passed sorted too.
 */
export async function packTarball(dir: string, out: string, epoch: number): Promise<void> {
  const entries = (await readdir(dir)).sort();
  await execFileP('tar', [
    '--create', '--file', out, '--directory', dir,
    '--format=gnu', '--sort=name', `--mtime=@${epoch}`, '--owner=0', '--group=0', '--numeric-owner',
    '--use-compress-program=gzip -n',
    '--', ...entries,
  ], { env: { ...process.env, GZIP: '', LC_ALL: 'C' } });
}

/** The sha256 of a file, hex. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** SHA256SUMS in sha256sum(1)'s format (`<hex>  <name>`), sorted by name. */
export function sha256sums(entries: ReadonlyArray<{ name: string; sha256: string }>): string {
  return [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((e) => `${e.sha256}  ${e.name}\n`).join('');
}

/** Loads an ed25519 private key (PKCS#8 PEM), refusing anything else with a clear message. */
export async function loadSigningKey(file: string): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new ReleaseError(`cannot read --signing-key ${file}: ${(err as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new ReleaseError(`--signing-key ${file} is not a PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new ReleaseError(`--signing-key ${file} holds a ${key.asymmetricKeyType ?? 'symmetric'} key; releases are signed with ed25519 (openssl genpkey -algorithm ed25519)`);
  return key;
}

/** The signature of `data` (SHA256SUMS), base64 on one line, and the public key as SPKI PEM. */
export function signSums(data: Buffer, key: KeyObject): { signature: string; publicKeyPem: string } {
  return {
    signature: `${sign(null, data, key).toString('base64')}\n`,
    publicKeyPem: createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** ELF e_machine values of the two targets, to catch a binary of the wrong architecture. */
const ELF_MACHINE: Readonly<Record<string, number>> = { x64: 0x3e, arm64: 0xb7 };

/** Throws unless `file` is an ELF binary for `arch`. */
export async function checkElfArch(file: string, arch: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(20);
    await fh.read(head, 0, 20, 0);
    const magic = head.subarray(0, 4).toString('latin1') === '\x7fELF';
    const machine = head.readUInt16LE(18);
    if (!magic || machine !== ELF_MACHINE[arch]) {
      throw new ReleaseError(`${file} is not a linux-${arch} ELF binary (e_machine 0x${machine.toString(16)})`);
    }
  } finally {
    await fh.close();
  }
}
