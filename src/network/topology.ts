/**
 * The local network of SPEC.md §2 and §8, as data: the central ledger (EUR) and two DFSPs, A
 * (USD) and B (XOF, scale 0), each with a ledger, a connector and an SPSP service; the accounts
 * and their funding; and the configuration each process is started with. Pure: the launcher
 * (launcher.ts) turns a plan into processes.
 */

/** The kinds of service a network runs. */
export type ServiceKind = 'ledger' | 'connector' | 'spsp';

/** An account a ledger is seeded with. */
export interface PlannedAccount {
  name: string;
  owner: string;
  /** Deposited once (by a deterministic deposit id), in minor units. */
  deposit: bigint;
}

/** One ledger of the network. */
export interface PlannedLedger {
  /** "central", "dfsp-a", "dfsp-b". */
  name: string;
  /** The DFSP running it; null for the hub's central ledger. */
  dfsp: string | null;
  prefix: string;
  currency: string;
  scale: number;
  address: string;
  accounts: PlannedAccount[];
}

/** One process of the network. */
export interface PlannedService {
  /** Unique, e.g. "central-ledger", "dfsp-a-connector". */
  name: string;
  kind: ServiceKind;
  dfsp: string | null;
  address: string;
  /** The database the service keeps its state in. */
  database: string;
  /** Arguments of `interclear` (the database comes from the environment). */
  args: string[];
  /** For connectors and SPSP services: their configuration file, by path relative to the config directory. */
  config?: { file: string; content: Record<string, unknown> };
}

/** A DFSP of the network. */
export interface PlannedDfsp {
  name: string;
  ledger: string;
  /** The principal of its SPSP service, which owns its customers' accounts. */
  spspPrincipal: string;
  /** Its customers: receivers and senders, "name@dfsp". */
  customers: string[];
  /** The SPSP service's secret file, relative to the secrets directory. */
  secretFile: string;
}

/** A whole network. */
export interface NetworkPlan {
  ledgers: PlannedLedger[];
  services: PlannedService[];
  dfsps: PlannedDfsp[];
  /** The principal with administrator rights on every service. */
  adminPrincipal: string;
}

/** Hold times, shortened in tests. */
export interface NetworkTiming {
  /** How long receivers want the last transfer held. */
  destinationHoldMs: number;
  /** Time each connector reserves to pass a fulfillment back. */
  messageWindowMs: number;
  /** The longest a connector holds a transfer. */
  connectorMaxHoldMs: number;
  /** The longest a ledger lets a transfer stay prepared. */
  ledgerMaxHoldMs: number;
}

/** Hold times of `interclear network`: the first transfer is held 7 s (5 s + two 1 s windows). */
export const defaultNetworkTiming: NetworkTiming = {
  destinationHoldMs: 5_000,
  messageWindowMs: 1_000,
  connectorMaxHoldMs: 10_000,
  ledgerMaxHoldMs: 60_000,
};

/** Where each service listens. */
export interface NetworkPorts {
  central: number;
  dfspALedger: number;
  dfspASpsp: number;
  dfspAConnector: number;
  dfspBLedger: number;
  dfspBSpsp: number;
  dfspBConnector: number;
}

/** The ports of the network at `base`: the hub on base, DFSP A on base+1…3, DFSP B on base+101…103. */
export function portsFrom(base: number): NetworkPorts {
  return {
    central: base,
    dfspALedger: base + 1,
    dfspASpsp: base + 2,
    dfspAConnector: base + 3,
    dfspBLedger: base + 101,
    dfspBSpsp: base + 102,
    dfspBConnector: base + 103,
  };
}

/** The network's default first port. */
export const defaultBasePort = 7100;

const ms = (milliseconds: number) => `${milliseconds}ms`;

/**
 * Plans the standard network: `host` and `ports` for the services, `databasePrefix` before every
 * database name (one database per service).
 */
export function planNetwork(options: {
  host?: string;
  ports: NetworkPorts;
  databasePrefix?: string;
  timing?: Partial<NetworkTiming>;
}): NetworkPlan {
  const host = options.host ?? '127.0.0.1';
  const at = (port: number) => `${host}:${port}`;
  const prefix = options.databasePrefix ?? 'interclear_';
  const timing = { ...defaultNetworkTiming, ...options.timing };
  const { ports } = options;
  const admin = 'admin';

  const central: PlannedLedger = {
    name: 'central',
    dfsp: null,
    prefix: 'private.central.',
    currency: 'EUR',
    scale: 2,
    address: at(ports.central),
    accounts: [
      { name: 'connector-a', owner: 'connector-a', deposit: 100_000_000n },
      { name: 'connector-b', owner: 'connector-b', deposit: 100_000_000n },
    ],
  };
  const dfspA: PlannedLedger = {
    name: 'dfsp-a',
    dfsp: 'dfsp-a',
    prefix: 'private.dfsp-a.',
    currency: 'USD',
    scale: 2,
    address: at(ports.dfspALedger),
    accounts: [
      { name: 'alice', owner: 'spsp-a', deposit: 1_000_000n },
      { name: 'connector-a', owner: 'connector-a', deposit: 100_000_000n },
    ],
  };
  const dfspB: PlannedLedger = {
    name: 'dfsp-b',
    dfsp: 'dfsp-b',
    prefix: 'private.dfsp-b.',
    currency: 'XOF',
    scale: 0,
    address: at(ports.dfspBLedger),
    accounts: [
      { name: 'bob', owner: 'spsp-b', deposit: 500_000n },
      { name: 'connector-b', owner: 'connector-b', deposit: 600_000_000n },
    ],
  };

  const ledgerService = (ledger: PlannedLedger, connector: string[]): PlannedService => ({
    name: `${ledger.name}-ledger`,
    kind: 'ledger',
    dfsp: ledger.dfsp,
    address: ledger.address,
    database: `${prefix}${ledger.name.replace(/-/g, '_')}_ledger`,
    args: [
      'ledger',
      '--listen',
      ledger.address,
      '--ilp-prefix',
      ledger.prefix,
      '--currency',
      ledger.currency,
      '--scale',
      String(ledger.scale),
      '--max-hold-time',
      ms(timing.ledgerMaxHoldMs),
      ...connector.flatMap((account) => ['--connector', account]),
      '--admin',
      admin,
      '--insecure',
    ],
  });

  const connectorLedger = (ledger: PlannedLedger, account: string) => ({
    prefix: ledger.prefix,
    address: ledger.address,
    account,
    currency: ledger.currency,
    scale: ledger.scale,
  });
  const connectorService = (
    dfsp: string,
    name: string,
    home: PlannedLedger,
    address: string,
    route: { targetPrefix: string; nextHop: string; quoting: string },
    rate: { source: string; destination: string; rate: string },
  ): PlannedService => {
    const file = `${name}.json`;
    return {
      name: `${dfsp}-connector`,
      kind: 'connector',
      dfsp,
      address,
      database: `${prefix}${dfsp.replace(/-/g, '_')}_connector`,
      args: ['connector', '--config', file, '--insecure'],
      config: {
        file,
        content: {
          name,
          listen: address,
          principal: name,
          ilpAddress: `${central.prefix}${name}`,
          ledgers: [connectorLedger(home, name), connectorLedger(central, name)],
          routes: [
            {
              targetPrefix: route.targetPrefix,
              ledger: central.prefix,
              nextHop: { account: route.nextHop, quoting: route.quoting },
            },
          ],
          rates: [rate],
          spread: '0.002',
          messageWindow: ms(timing.messageWindowMs),
          maxHoldTime: ms(timing.connectorMaxHoldMs),
          destinationHoldTime: ms(timing.destinationHoldMs),
        },
      },
    };
  };

  const spspService = (
    dfsp: string,
    ledger: PlannedLedger,
    address: string,
    connector: string,
    receivers: Array<{ name: string; displayName: string }>,
    peer: { dfsp: string; address: string; prefix: string },
  ): PlannedService => {
    const name = `spsp-${dfsp.replace(/^dfsp-/, '')}`;
    const file = `${name}.json`;
    return {
      name: `${dfsp}-spsp`,
      kind: 'spsp',
      dfsp,
      address,
      database: `${prefix}${dfsp.replace(/-/g, '_')}_spsp`,
      args: ['spsp', '--config', file, '--admin', admin, '--insecure'],
      config: {
        file,
        content: {
          name,
          dfsp,
          listen: address,
          principal: name,
          ledger: ledger.address,
          connector,
          secretFile: `../secrets/${name}.secret`,
          receivers: receivers.map((receiver) => ({
            name: receiver.name,
            account: receiver.name,
            displayName: receiver.displayName,
          })),
          directory: { [peer.dfsp]: { spsp: peer.address, prefix: peer.prefix } },
          destinationHoldTime: ms(timing.destinationHoldMs),
        },
      },
    };
  };

  const connectorA = at(ports.dfspAConnector);
  const connectorB = at(ports.dfspBConnector);
  const spspA = at(ports.dfspASpsp);
  const spspB = at(ports.dfspBSpsp);
  const services: PlannedService[] = [
    ledgerService(central, ['connector-a', 'connector-b']),
    ledgerService(dfspA, ['connector-a']),
    ledgerService(dfspB, ['connector-b']),
    connectorService(
      'dfsp-a',
      'connector-a',
      dfspA,
      connectorA,
      { targetPrefix: dfspB.prefix, nextHop: 'connector-b', quoting: connectorB },
      // Dollars to euros.
      { source: 'USD', destination: 'EUR', rate: '0.92' },
    ),
    connectorService(
      'dfsp-b',
      'connector-b',
      dfspB,
      connectorB,
      { targetPrefix: dfspA.prefix, nextHop: 'connector-a', quoting: connectorA },
      // The CFA franc's fixed parity with the euro.
      { source: 'EUR', destination: 'XOF', rate: '655.957' },
    ),
    spspService('dfsp-a', dfspA, spspA, connectorA, [{ name: 'alice', displayName: 'Alice Ama' }], {
      dfsp: 'dfsp-b',
      address: spspB,
      prefix: dfspB.prefix,
    }),
    spspService('dfsp-b', dfspB, spspB, connectorB, [{ name: 'bob', displayName: 'Bob Babacar' }], {
      dfsp: 'dfsp-a',
      address: spspA,
      prefix: dfspA.prefix,
    }),
  ];

  return {
    ledgers: [central, dfspA, dfspB],
    services,
    dfsps: [
      {
        name: 'dfsp-a',
        ledger: 'dfsp-a',
        spspPrincipal: 'spsp-a',
        customers: ['alice@dfsp-a'],
        secretFile: 'spsp-a.secret',
      },
      {
        name: 'dfsp-b',
        ledger: 'dfsp-b',
        spspPrincipal: 'spsp-b',
        customers: ['bob@dfsp-b'],
        secretFile: 'spsp-b.secret',
      },
    ],
    adminPrincipal: admin,
  };
}
