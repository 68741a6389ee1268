/** The ILP address of an account: the ledger's prefix followed by the account's name. */
export function ledgerAddress(ilpPrefix: string, accountName: string): string {
  return `${ilpPrefix}${accountName}`;
}
