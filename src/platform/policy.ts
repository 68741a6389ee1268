/**
 * The authorization policy of every RPC, in one table. The gateway interceptor enforces the
 * method-level rule before any handler runs; rules about particular accounts ("the caller owns
 * the debit account") need the ledger's data and are enforced by the services, which receive
 * the authenticated principal.
 */

/** Who may call a method. */
export type Requirement =
  /** Any authenticated principal (the service may narrow it to the accounts it owns). */
  | 'authenticated'
  /** Only the service's administrators. */
  | 'admin';

/** Method-level requirements by full method path. A method missing here is refused. */
export const methodPolicy: Record<string, Requirement> = {
  // Ledger: account management and movements of funds in and out are the operator's.
  '/interclear.ledger.v1.LedgerService/GetLedgerInfo': 'authenticated',
  '/interclear.ledger.v1.LedgerService/CreateAccount': 'admin',
  '/interclear.ledger.v1.LedgerService/UpdateAccount': 'admin',
  '/interclear.ledger.v1.LedgerService/Deposit': 'admin',
  '/interclear.ledger.v1.LedgerService/Withdraw': 'admin',
  // Owners only, checked by the ledger against each account's owner.
  '/interclear.ledger.v1.LedgerService/GetAccount': 'authenticated',
  '/interclear.ledger.v1.LedgerService/ListAccounts': 'authenticated',
  '/interclear.ledger.v1.LedgerService/PrepareTransfer': 'authenticated',
  '/interclear.ledger.v1.LedgerService/FulfillTransfer': 'authenticated',
  '/interclear.ledger.v1.LedgerService/RejectTransfer': 'authenticated',
  '/interclear.ledger.v1.LedgerService/PrepareTransfers': 'authenticated',
  '/interclear.ledger.v1.LedgerService/FulfillTransfers': 'authenticated',
  '/interclear.ledger.v1.LedgerService/RejectTransfers': 'authenticated',
  '/interclear.ledger.v1.LedgerService/GetTransfer': 'authenticated',
  '/interclear.ledger.v1.LedgerService/GetFulfillment': 'authenticated',
  '/interclear.ledger.v1.LedgerService/ListTransfers': 'authenticated',
  '/interclear.ledger.v1.LedgerService/SendMessage': 'authenticated',
  '/interclear.ledger.v1.LedgerService/Subscribe': 'authenticated',
  // Connectors quote for SPSP services and for each other.
  '/interclear.quoting.v1.QuotingService/QuoteBySourceAmount': 'authenticated',
  '/interclear.quoting.v1.QuotingService/QuoteByDestinationAmount': 'authenticated',
  // A connector's status shows its balances: its operator's.
  '/interclear.connector.v1.ConnectorService/GetStatus': 'admin',
  '/interclear.connector.v1.ConnectorService/ListRoutes': 'authenticated',
  '/interclear.connector.v1.ConnectorService/ListRates': 'authenticated',
  // Other DFSPs query receivers and set up payments.
  '/interclear.spsp.v1.SpspService/Query': 'authenticated',
  '/interclear.spsp.v1.SpspService/SetupPayment': 'authenticated',
  // The sending side is called by the DFSP's own systems only.
  '/interclear.spsp.v1.PaymentService/Quote': 'admin',
  '/interclear.spsp.v1.PaymentService/Pay': 'admin',
  '/interclear.spsp.v1.PaymentService/GetPayment': 'admin',
  '/interclear.spsp.v1.PaymentService/WatchPayment': 'admin',
  '/interclear.spsp.v1.PaymentService/GetIncomingPayment': 'admin',
  '/interclear.spsp.v1.PaymentService/ListIncomingPayments': 'admin',
  // Operations: health and reflection for any authenticated caller.
  '/grpc.health.v1.Health/Check': 'authenticated',
  '/grpc.health.v1.Health/List': 'authenticated',
  '/grpc.health.v1.Health/Watch': 'authenticated',
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': 'authenticated',
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': 'authenticated',
};
