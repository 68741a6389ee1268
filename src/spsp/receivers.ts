/**
 * Naming receivers. A receiver is named by an identifier "name@dfsp" (the SPSP RFC's
 * user@host, with the DFSP's name as host) or by its ILP account address. The sender resolves
 * the DFSP from the name; the receiver's DFSP resolves its own receivers.
 */
import { isValidIlpAddress, longestPrefixMatch } from '../ilp';
import type { DirectoryEntry, ReceiverSettings } from './config';

/** A receiver name, read. */
export type ReceiverName = { kind: 'identifier'; name: string; dfsp: string } | { kind: 'address'; address: string };

/** What a receiver name must be, as a field violation describes it. */
export const receiverNameRule = 'must be an identifier like "bob@dfsp-b" or an ILP address like "private.dfsp-b.bob"';

/** Reads a receiver name, or undefined when it is neither an identifier nor an ILP address. */
export function parseReceiverName(text: string): ReceiverName | undefined {
  const at = text.lastIndexOf('@');
  if (at > 0 && at < text.length - 1) {
    const name = text.slice(0, at);
    const dfsp = text.slice(at + 1);
    if (/^[a-zA-Z0-9._-]{1,86}$/.test(name) && /^[a-zA-Z0-9_-]{1,64}$/.test(dfsp)) {
      return { kind: 'identifier', name, dfsp };
    }
    return undefined;
  }
  if (isValidIlpAddress(text)) return { kind: 'address', address: text };
  return undefined;
}

/** The directory of other DFSPs' SPSP servers, as the sender uses it. */
export class Directory {
  private readonly byName: Map<string, DirectoryEntry>;
  private readonly byPrefix: Map<string, DirectoryEntry>;

  constructor(entries: DirectoryEntry[]) {
    this.byName = new Map(entries.map((entry) => [entry.dfsp, entry]));
    this.byPrefix = new Map(entries.filter((entry) => entry.prefix !== null).map((entry) => [entry.prefix!, entry]));
  }

  /** The entry of the DFSP that `name` belongs to, or undefined. */
  resolve(name: ReceiverName): DirectoryEntry | undefined {
    if (name.kind === 'identifier') return this.byName.get(name.dfsp);
    const prefix = longestPrefixMatch(name.address, this.byPrefix.keys());
    return prefix === undefined ? undefined : this.byPrefix.get(prefix);
  }
}

/** This DFSP's receivers, as its SPSP server looks them up. */
export class ReceiverBook {
  private readonly byName: Map<string, ReceiverSettings>;
  private readonly byAccount: Map<string, ReceiverSettings>;

  constructor(
    readonly dfsp: string,
    readonly ledgerPrefix: string,
    receivers: ReceiverSettings[],
  ) {
    this.byName = new Map(receivers.map((receiver) => [receiver.name, receiver]));
    this.byAccount = new Map(receivers.map((receiver) => [receiver.account, receiver]));
  }

  /**
   * The receiver `name` designates, or undefined when it is not one of this DFSP's: another
   * DFSP's identifier, an address outside this ledger, or an unknown name.
   */
  find(name: ReceiverName): ReceiverSettings | undefined {
    if (name.kind === 'identifier') return name.dfsp === this.dfsp ? this.byName.get(name.name) : undefined;
    if (!name.address.startsWith(this.ledgerPrefix)) return undefined;
    return this.byAccount.get(name.address.slice(this.ledgerPrefix.length));
  }

  /** The receiver whose account is `account`, if any. */
  byLedgerAccount(account: string): ReceiverSettings | undefined {
    return this.byAccount.get(account);
  }

  /** The receiver's identifier, "name@dfsp". */
  identifier(receiver: Pick<ReceiverSettings, 'name'>): string {
    return `${receiver.name}@${this.dfsp}`;
  }

  /** The receiver's ILP address. */
  address(receiver: ReceiverSettings): string {
    return `${this.ledgerPrefix}${receiver.account}`;
  }
}
