/**
 * Commands for packages and artifacts: `artifact push|list`, `get packages`,
 * `get clusterpackageversion`, and `apply -f` (which also creates Rollouts).
 */
import { createReadStream, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { AppError } from '@nodekeeper/common';
import type { ApiClient } from './api-client.ts';
import { parseDocuments, type ApplyDocument, type ApplyKind } from './apply-documents.ts';
import { applyDocument, loadApplyDocuments } from './apply-objects.ts';
import { artifactSize, loadSigningKey, progressReporter, sha256File } from './artifact-file.ts';
import { loadManifestFile, signClusterPackageVersion, signedManifest, signInstallStatement } from './sign-statement.ts';
import { CliErrorCode, usageError } from './cli-errors.ts';
import { parseOutput, toJson, toYaml } from './output.ts';
import { formatBytes, renderArtifacts, renderPackages, renderPushed } from './package-views.ts';
import { printObject, type CommandContext } from './command-context.ts';
import type { Artifact as ArtifactObject, ClusterPackageVersion as ClusterPackageVersionObject, Rollout as RolloutObject } from '@nodekeeper/api';
import { renderTable } from './table.ts';

/** Largest manifest nkctl reads: far above any ClusterPackageVersion or Rollout. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** `-o json|yaml` output of any object. */
/** The text of `-f FILE`, or of stdin for `-f -`. */
export async function readManifest(ctx: CommandContext, file: string): Promise<{ text: string; source: string }> {
  if (file === '-') return { text: await ctx.io.readStdin(), source: '<stdin>' };
  const path = resolve(ctx.io.cwd, file);
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (cause) {
    throw usageError(CliErrorCode.fileUnreadable, `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
  if (buf.length > MAX_MANIFEST_BYTES) throw usageError(CliErrorCode.badManifest, `${file} is larger than ${formatBytes(MAX_MANIFEST_BYTES)}`);
  return { text: buf.toString('utf8'), source: file };
}

/** Read and check every document of `-f` before anything is sent. */
export async function loadDocuments(ctx: CommandContext, file: string, kinds?: readonly ApplyKind[]): Promise<ApplyDocument[]> {
  const { text, source } = await readManifest(ctx, file);
  return parseDocuments(text, source, kinds);
}

/**
 * POST a Rollout (`rollout create`); an existing one is said plainly: create makes new
 * rollouts only (apply changes one; its own commands drive it).
 */
export async function createRollout(api: ApiClient, doc: ApplyDocument): Promise<RolloutObject> {
  try {
    return await api.createRollout(doc.object);
  } catch (err) {
    if (err instanceof AppError && err.code === 'NK_ROLLOUT_EXISTS') {
      throw new AppError(err.code, `rollout/${doc.name} already exists and rollout create makes new rollouts only: ` +
        `give the new rollout another name, change it with nkctl apply -f, or act on it with nkctl rollout pause|resume|abort|rollback ${doc.name}`, { context: err.context, cause: err });
    }
    throw err;
  }
}

function printCpv(ctx: CommandContext, cpv: ClusterPackageVersionObject): void {
  if (cpv.spec.packages.length === 0) {
    ctx.io.stderr(`No packages in the ClusterPackageVersion (generation ${cpv.metadata.generation}).\n`);
    return;
  }
  const status = new Map(cpv.status.packages.map((p) => [p.name, p]));
  ctx.io.stdout(renderTable(
    ['PACKAGE', 'VERSION', 'SHA256', 'SIZE', 'SIGNED', 'AT-DESIRED', 'URL'],
    cpv.spec.packages.map((p) => {
      const s = status.get(p.name);
      return [p.name, p.version, p.artifact.sha256.slice(0, 12), formatBytes(p.artifact.size), p.artifact.signature === undefined ? 'no' : 'yes', s === undefined ? '-' : `${s.atDesired}/${s.machines}`, p.artifact.url];
    }),
  ));
}

/** Register the package commands on the program and its `get`. */
export function addPackageCommands(program: Command, get: Command, ctx: CommandContext): void {
  const { io } = ctx;
  get
    .command('packages')
    .aliases(['package', 'pkg'])
    .description('Each package: desired version, machines at it, healthy machines, versions seen.')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const list = await ctx.client(cmd).api.listPackages();
      if (format !== 'table') printObject(ctx, format, list);
      else if (list.items.length === 0) io.stderr('No packages found.\n');
      else io.stdout(renderPackages(list.items));
    });
  get
    .command('clusterpackageversion')
    .aliases(['cpv', 'clusterpackageversions'])
    .description("The cluster's default version, artifact and digest of each package.")
    .option('-o, --output <format>', 'json or yaml (the object to edit and apply)')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const cpv = await ctx.client(cmd).api.getClusterPackageVersion();
      if (format !== 'table') printObject(ctx, format, cpv);
      else printCpv(ctx, cpv);
    });

  program
    .command('apply')
    .description('Apply ClusterPackageVersion, Rollout and RemediationRule objects from YAML or JSON (several documents separated by ---): each is created or updated and said created, configured or unchanged.')
    .requiredOption('-f, --filename <file>', 'file or directory (its .yaml, .yml and .json files) to apply, - for stdin')
    .option('--sign-key <keyfile>', 'PEM ed25519 private key: sign each ClusterPackageVersion entry\'s install statement (nkctl sign)')
    .action(async (opts: { filename: string; signKey?: string }, cmd: Command) => {
      // Parse and check every document first: a bad one means nothing is sent.
      const docs = await loadApplyDocuments(opts.filename, io.cwd, (f) => loadDocuments(ctx, f));
      const key = opts.signKey === undefined ? null : loadSigningKey(resolve(io.cwd, opts.signKey));
      const { api } = ctx.client(cmd);
      for (const doc of docs) {
        // Create-or-update by name, as kubectl apply: created, configured or unchanged (apply-objects.ts).
        const object = doc.kind === 'ClusterPackageVersion' && key !== null ? signClusterPackageVersion(doc.object, key) : doc.object;
        io.stdout(`${(await applyDocument(api, doc, object)).line}\n`);
      }
    });

  program
    .command('sign')
    .description('Sign the install statement (package, version, sha256, size, manifest) of every ClusterPackageVersion entry; print the documents, signed, for review or apply.')
    .requiredOption('-f, --filename <file>', 'file with ClusterPackageVersion (and other) documents, - for stdin')
    .requiredOption('--key <keyfile>', 'PEM ed25519 private key; agents trust its public key with --trusted-key')
    .option('-o, --output <format>', 'yaml or json', 'yaml')
    .action(async (opts: { filename: string; key: string; output: string }) => {
      const format = parseOutput(opts.output, ['json', 'yaml']);
      const docs = await loadDocuments(ctx, opts.filename);
      const key = loadSigningKey(resolve(io.cwd, opts.key));
      const signed = docs.map((d) => (d.kind === 'ClusterPackageVersion' ? signClusterPackageVersion(d.object, key) : d.object));
      if (format === 'json') io.stdout(toJson(signed.length === 1 ? signed[0] : signed));
      else io.stdout(signed.map((o) => toYaml(o)).join('---\n'));
    });

  const artifact = program.command('artifact').description('Store package artifacts in the coordinator, content-addressed.');
  artifact
    .command('push')
    .argument('<file>', 'the artifact: a .tar.gz or a binary, per the package manifest')
    .description('Upload an artifact (streamed), optionally signed, and print the ClusterPackageVersion entry that deploys it.')
    .requiredOption('--package <name>', 'package name, e.g. kubelet, containerd, cni-plugins')
    .requiredOption('--version <version>', 'the version the artifact installs, e.g. 1.31.3')
    .option('--sign <keyfile>', 'PEM ed25519 private key: sign the install statement (package, version, sha256, size, manifest)')
    .option('--manifest <file>', 'with --sign: the package manifest it installs with (YAML or JSON; default the built-in one)')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (file: string, opts: { package: string; version: string; sign?: string; manifest?: string; output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const path = resolve(io.cwd, file);
      // Everything local is checked before the network is touched.
      const key = opts.sign === undefined ? null : loadSigningKey(resolve(io.cwd, opts.sign));
      if (opts.manifest !== undefined && key === null) throw usageError(CliErrorCode.usage, '--manifest is what --sign signs; give --sign too');
      const manifest = key === null ? null : signedManifest(opts.package, opts.manifest === undefined ? undefined : loadManifestFile(resolve(io.cwd, opts.manifest)));
      const size = artifactSize(path);
      const digest = await sha256File(path);
      const headers: Record<string, string> = key === null || manifest === null
        ? {}
        : { 'x-nodekeeper-signature': signInstallStatement({ package: opts.package, version: opts.version, artifact: { sha256: digest.toString('hex'), size }, manifest }, key) };
      const { api } = ctx.client(cmd);
      const progress = progressReporter(io.stderr, io.stderrIsTty, size, io.now);
      let stored: ArtifactObject;
      try {
        stored = await api.pushArtifact(opts.package, opts.version, { open: () => createReadStream(path), size, headers, onProgress: (n) => progress.update(n) });
      } finally {
        progress.done();
      }
      const sha = digest.toString('hex');
      if (stored.sha256 !== sha || stored.size !== size) {
        throw new AppError(CliErrorCode.digestMismatch,
          `the coordinator stored sha256:${stored.sha256} (${stored.size} bytes) but ${file} hashed to sha256:${sha} (${size} bytes); did the file change during the push?`,
          { context: { file, expected: sha, stored: stored.sha256 } });
      }
      if (format !== 'table') printObject(ctx, format, stored);
      else io.stdout(renderPushed(stored, io.now()));
    });
  artifact
    .command('list')
    .alias('ls')
    .description('List stored artifacts.')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutput(opts.output, ['table', 'json', 'yaml']);
      const list = await ctx.client(cmd).api.listArtifacts();
      if (format !== 'table') printObject(ctx, format, list);
      else if (list.items.length === 0) io.stderr('No artifacts found.\n');
      else io.stdout(renderArtifacts(list.items, io.now()));
    });
}
