/**
 * What the coordinator tells the world it is reachable at (--advertise-url), and the
 * names its generated serving certificate must carry for that to verify. Pure: the
 * caller passes the configuration; nothing here reads the host.
 *
 * A coordinator bound to a wildcard address (0.0.0.0, ::) with no --advertise-url is
 * refused: any address we guessed (the host name, the first interface) is baked into
 * artifact URLs, the join command and the certificate, and a wrong guess (a multi-homed
 * host, NAT, a container bridge) fails far away, on every node, at its first download.
 * The operator knows the name nodes reach; asking once at install is cheaper.
 */
import { AppError } from '@nodekeeper/common';

/** The listen addresses that mean "every interface". */
export const WILDCARD_HOSTS: ReadonlySet<string> = new Set(['0.0.0.0', '::', '[::]']);

export interface AdvertiseInput {
  readonly host: string;
  readonly advertiseUrl: string | null;
  readonly insecure: boolean;
}

/**
 * Throws NK_ADVERTISE_URL_REQUIRED for a wildcard listen address without an advertise
 * URL; call before anything is created or bound.
 */
export function checkAdvertisable(c: AdvertiseInput): void {
  if (c.advertiseUrl === null && WILDCARD_HOSTS.has(c.host)) {
    throw new AppError(
      'NK_ADVERTISE_URL_REQUIRED',
      `listening on ${c.host} (every interface) needs --advertise-url ${c.insecure ? 'http' : 'https'}://NAME:PORT, the address nodes and nkctl reach this coordinator at ` +
        '(it goes into artifact URLs, the join command and the serving certificate); or give --host a specific address',
      { context: { host: c.host } },
    );
  }
}

/** The URL agents and nkctl are told to use, once the port is known. */
export function advertisedUrl(c: AdvertiseInput, port: number): string {
  if (c.advertiseUrl !== null) return c.advertiseUrl.replace(/\/+$/, '');
  checkAdvertisable(c);
  const host = c.host.includes(':') ? `[${c.host}]` : c.host;
  return `${c.insecure ? 'http' : 'https'}://${host}:${port}`;
}

/** The host of the advertise URL, as a certificate name (IPv6 without brackets), or null. */
export function advertisedHost(advertiseUrl: string | null): string | null {
  if (advertiseUrl === null) return null;
  const host = new URL(advertiseUrl).hostname;
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return bare === '' ? null : bare.toLowerCase();
}

/** The generated serving certificate's names: the defaults plus the advertised host. */
export function servingNames(defaults: readonly string[], advertiseUrl: string | null): string[] {
  const names = new Set(defaults);
  const host = advertisedHost(advertiseUrl);
  if (host !== null) names.add(host);
  return [...names];
}
