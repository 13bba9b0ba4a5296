/**
 * The Node flags the release launchers run each program with (scripts/release.ts), kept
 * here so that the benchmarks run the coordinator as it ships (bench/lib/servers.ts).
 */

/**
 * The agent's (bench/README.md, "Agent footprint", has what each saves): V8 collects well
 * before the unit's MemoryMax, a 1 MB young generation, and --lite-mode: no JIT compilers
 * and no feedback vectors, about 18 MB less resident memory for an agent that spends well
 * under 1 % of a core. It also turns WebAssembly off, which the agent never uses
 * (agent/src/startup-footprint.test.ts keeps undici, the one wasm user in Node, from
 * loading).
 */
export const AGENT_NODE_FLAGS = '--max-old-space-size=160 --max-semi-space-size=1 --lite-mode';

/**
 * The coordinator's: young-generation semi-spaces of at most 8 MB instead of V8's 16 MB.
 * Under a fleet's allocation rate V8 grows them to the maximum, about 48 MB of RSS that no
 * agent needs; at 19,000 agents RSS per connection was 3.8 KB against 11.9 KB, and CPU per
 * frame no worse (bench/README.md, "RSS").
 */
export const COORDINATOR_NODE_FLAGS = '--max-semi-space-size=8';
