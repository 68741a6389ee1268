/**
 * Routing: which ledger a payment leaves on, by longest-prefix match of its destination address
 * over the connected ledgers' own prefixes (local routes, the connector is the last hop) and the
 * configured routes (through a next connector).
 */
import { longestPrefixMatch } from '../ilp';
import type { LedgerEndpoint, Route } from './model';

const accountNamePattern = /^[a-zA-Z0-9_-]{1,86}$/;

/** A routing table, immutable once built. */
export interface RoutingTable {
  /** The route for `destination`, or undefined when none matches (ILP error F02). */
  find(destination: string): Route | undefined;
  /** Every route, longest target prefix first. */
  list(): Route[];
}

/** Builds the table from the connected ledgers (local routes) and the configured routes. */
export function createRoutingTable(ledgers: LedgerEndpoint[], routes: Route[]): RoutingTable {
  const byPrefix = new Map<string, Route>();
  for (const ledger of ledgers) {
    byPrefix.set(ledger.prefix, { targetPrefix: ledger.prefix, ledgerPrefix: ledger.prefix, local: true });
  }
  for (const route of routes) {
    // Configuration validation refuses a route shadowing a ledger prefix; this is a programmer error.
    if (byPrefix.has(route.targetPrefix)) throw new Error(`duplicate route for ${route.targetPrefix}`);
    byPrefix.set(route.targetPrefix, route);
  }
  const sorted = [...byPrefix.values()].sort(
    (left, right) =>
      right.targetPrefix.length - left.targetPrefix.length || left.targetPrefix.localeCompare(right.targetPrefix),
  );
  return {
    find(destination) {
      const prefix = longestPrefixMatch(destination, byPrefix.keys());
      return prefix === undefined ? undefined : byPrefix.get(prefix);
    },
    list: () => sorted.map((route) => ({ ...route })),
  };
}

/**
 * The account a payment to `destination` credits on the ledger of `ledgerPrefix`: the first
 * address segment after the prefix (`private.dfsp-b.bob.invoice-7` → `bob`), or undefined when
 * that segment is not a valid account name.
 */
export function destinationAccount(destination: string, ledgerPrefix: string): string | undefined {
  if (!destination.startsWith(ledgerPrefix)) return undefined;
  const segment = destination.slice(ledgerPrefix.length).split('.')[0];
  return accountNamePattern.test(segment) ? segment : undefined;
}
