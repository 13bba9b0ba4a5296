/**
 * Hard limits of the wire protocol. Both sides enforce them; a peer that exceeds one
 * gets a specific error (see errors.ts) and, for frames, a close code (wire.ts).
 */

/** Largest frame either side accepts, in bytes (ws maxPayload). A full report is ~4 KiB. */
export const MAX_FRAME_BYTES = 256 * 1024;

/** Bounds on strings and lists inside messages, so a hostile peer cannot make us hold much. */
export const MAX_NAME = 253; // DNS subdomain, as Kubernetes object names
export const MAX_TEXT = 4096;
export const MAX_SHORT = 256;
export const MAX_LIST = 256;
export const MAX_LABELS = 64;
