/** Kubernetes-style object metadata every stored kind carries (kept by store/object-meta.ts). */
export interface ObjectMeta {
  /** A UUID fixed when the row was created (or when migration 10 backfilled it). */
  readonly uid: string;
  /** Decimal string of the store-wide counter at this object's last stored change; compare for equality only. */
  readonly resourceVersion: string;
  /** Moves by one on every spec change, and only then. */
  readonly generation: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
}
