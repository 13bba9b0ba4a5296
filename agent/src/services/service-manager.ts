/**
 * The service manager behind one small interface (kured's style: single-purpose calls):
 * restart a unit, stop it, read its state. `systemd` on real nodes; `supervisor` where
 * there is no systemd (tests, the demo, minimal containers). The adapters implement this
 * port; create-service-manager.ts picks one.
 */
import type { ServiceState } from '@nodekeeper/protocol';

export interface ServiceManager {
  readonly kind: 'systemd' | 'supervisor';
  /** Restarts `unit` (starts it when stopped); resolves once the manager has started it. */
  restart(unit: string): Promise<void>;
  /** Stops `unit`; a stopped unit is not an error. */
  stop(unit: string): Promise<void>;
  state(unit: string): Promise<ServiceState>;
}
