/**
 * nkctl's `-l`: the contract's label selector (@nodekeeper/api/selector, the one the API's
 * `labelSelector=` and the fleet page read too), its parse errors as the usage error
 * NK_CLI_BAD_SELECTOR. Filtering is client-side.
 */
import { LabelSelectorError, labelsMatch, parseLabelSelector, type LabelRequirement } from '@nodekeeper/api/selector';
import { CliErrorCode, usageError } from './cli-errors.ts';

export type Requirement = LabelRequirement;

/** Parse a selector; garbage throws NK_CLI_BAD_SELECTOR naming the bad part. */
export function parseSelector(input: string): readonly Requirement[] {
  try {
    return parseLabelSelector(input);
  } catch (err) {
    if (err instanceof LabelSelectorError) throw usageError(CliErrorCode.badSelector, err.message, { context: { input } });
    throw err;
  }
}

/** True when the labels satisfy every requirement. */
export const matches = labelsMatch;
