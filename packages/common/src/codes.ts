/**
 * Every NK_ code @nodekeeper/common raises, with its meaning in one line. Owner of the codes of
 * the config layers both programs share.
 * docs/errors.md says what happens with each; test/error-catalog.test.ts reads this
 * catalogue and holds it, the docs and the sources together (a code is in one
 * catalogue only, the one of the package that owns it; codes are never reused).
 */
export const COMMON_CODES = {
  // Coordinator internals
  NK_CONFIG_INVALID: 'a flag, `NODEKEEPER_AGENT_*` / `NODEKEEPER_COORDINATOR_*` variable or config file value is invalid; the message names it (agent and coordinator; exit 2)',
  NK_CONFIG_ENV_RETIRED: 'a retired shared variable is set: `NODEKEEPER_CONFIG`, or `NODEKEEPER_<FLAG>` for one of the program\'s flags',
} as const satisfies Readonly<Record<`NK_${string}`, string>>;
export type CommonCode = keyof typeof COMMON_CODES;
