/**
 * The supervisor service manager from the command line, so a test can start a unit
 * inside another network namespace (`ip netns exec NS node supervise-cli.ts ...`): the
 * unit's process then lives in that namespace, as it would on its node.
 *
 *   node supervise-cli.ts HOST_ROOT restart|stop UNIT
 */
import { SupervisorServiceManager } from '../../agent/src/services/supervisor.ts';

const [root, verb, unit] = process.argv.slice(2);
if (root === undefined || unit === undefined || (verb !== 'restart' && verb !== 'stop')) {
  process.stderr.write('usage: supervise-cli.ts HOST_ROOT restart|stop UNIT\n');
  process.exit(2);
}
const services = new SupervisorServiceManager(root);
await (verb === 'restart' ? services.restart(unit) : services.stop(unit));
