/**
 * The ledger's hot path: commands that move money (prepare, fulfil, reject, deposit, withdraw)
 * and messages, executed with group commit.
 *
 * Concurrent commands are gathered into batches; a batch is one transaction and one fsync.
 * Inside it, rows are locked in one global order — transfers by id, then accounts by name, then
 * the ledger head (the event counter) last — so batches, the expiry sweeper and other replicas
 * never deadlock. The commands of a batch are decided one after another in memory against the
 * locked rows, each getting its own result, so one failing command never fails its batch-mates;
 * then every change is written with a handful of set-based statements.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import { invalidArgument, ServiceError } from '../platform/errors';
import { isDatabaseUnavailableError, isRetryableTransactionError, PostgresErrorCode } from '../platform/database';
import { ledgerError } from './errors';
import type { Account, EventType, IlpError, LedgerEvent, Message, Movement, Principal, Transfer } from './model';
import { canCredit, canDebit, canHold, canReturnHold } from './model';
import {
  accountColumns,
  accountFromRow,
  ilpErrorToStored,
  messageFromRow,
  movementFromRow,
  sameBytes,
  sameInstant,
  transferColumns,
  transferFromRow,
  type AccountRow,
  type MessageRow,
  type MovementRow,
  type TransferRow,
} from './rows';

/** The LISTEN/NOTIFY channel on which a ledger announces its new head sequence. */
export const eventChannel = 'interclear_ledger_events';

/** Prepare a transfer (validated by the service beforehand). */
export interface PrepareCommand {
  kind: 'prepare';
  principal: Principal;
  transfer: {
    id: string;
    debitAccount: string;
    creditAccount: string;
    amount: bigint;
    executionCondition: Buffer | null;
    expiresAt: Date | null;
    ilpPacket: Buffer;
    memo: Buffer;
    traceParent: string | null;
  };
  /**
   * The expiry had passed by the service's clock when the request arrived. Refused as invalid —
   * unless the id is a transfer already made: a retry whose answer was lost gets the stored
   * result, however late it comes.
   */
  arrivedExpired?: boolean;
}

/** Execute a prepared transfer with its fulfillment. */
export interface FulfillCommand {
  kind: 'fulfill';
  principal: Principal;
  transferId: string;
  fulfillment: Buffer;
}

/** Reject a prepared transfer with an ILP error. */
export interface RejectCommand {
  kind: 'reject';
  principal: Principal;
  transferId: string;
  ilpError: IlpError;
}

/** Move funds into (deposit) or out of (withdrawal) an account. */
export interface MovementCommand {
  kind: 'deposit' | 'withdrawal';
  principal: Principal;
  movement: { id: string; account: string; amount: bigint; externalReference: string };
}

/** Relay a message between account owners. */
export interface MessageCommand {
  kind: 'message';
  principal: Principal;
  message: { id: string; fromAccount: string; toAccount: string; data: Buffer };
}

export type LedgerCommand = PrepareCommand | FulfillCommand | RejectCommand | MovementCommand | MessageCommand;

/** What each kind of command returns. */
export interface CommandOutcome {
  prepare: Transfer;
  fulfill: Transfer;
  reject: Transfer;
  deposit: Movement;
  withdrawal: Movement;
  message: Message;
}

/** Options of {@link CommandProcessor}. */
export interface CommandProcessorOptions {
  /** Most commands in one transaction. */
  maxBatchSize?: number;
  /** Most batches in flight at once (each holds a connection); beyond the first, one starts only with a full batch waiting. */
  maxConcurrentBatches?: number;
  /** Most commands waiting; beyond it, callers get LEDGER_BUSY (UNAVAILABLE) at once. */
  maxQueueLength?: number;
  /** Attempts of a batch that lost a serialization or deadlock race. */
  maxAttempts?: number;
  /** Milliseconds added to the database clock: an injected clock for tests of expiry. */
  clockOffsetMs?: () => number;
  /** Called for failures that are not the caller's fault (logged, never sent). */
  onInternalError?: (error: unknown) => void;
  /** Called with a batch's events once it has committed (the local replica's fast path). */
  onCommitted?: (events: LedgerEvent[]) => void;
}

interface PendingCommand {
  command: LedgerCommand;
  key: string;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Runs ledger commands in batches, one transaction per batch. */
export class CommandProcessor {
  private queue: PendingCommand[] = [];
  private readonly keysInFlight = new Set<string>();
  private batchesInFlight = 0;
  private readonly maxBatchSize: number;
  private readonly maxConcurrentBatches: number;
  private readonly maxQueueLength: number;
  private readonly maxAttempts: number;
  private readonly clockOffsetMs: () => number;
  private readonly onInternalError: (error: unknown) => void;
  private readonly onCommitted: (events: LedgerEvent[]) => void;
  /** Counts for metrics and benchmarks. */
  readonly statistics = { batches: 0, commands: 0, retries: 0 };

  constructor(
    private readonly pool: pg.Pool,
    options: CommandProcessorOptions = {},
  ) {
    this.maxBatchSize = options.maxBatchSize ?? 200;
    this.maxConcurrentBatches = options.maxConcurrentBatches ?? 3;
    this.maxQueueLength = options.maxQueueLength ?? 20_000;
    this.maxAttempts = options.maxAttempts ?? 10;
    this.clockOffsetMs = options.clockOffsetMs ?? (() => 0);
    this.onInternalError = options.onInternalError ?? (() => undefined);
    this.onCommitted = options.onCommitted ?? (() => undefined);
  }

  /** Queues `command` and resolves with its outcome once its batch has committed. */
  submit<Kind extends LedgerCommand['kind']>(command: LedgerCommand & { kind: Kind }): Promise<CommandOutcome[Kind]> {
    if (this.queue.length >= this.maxQueueLength) return Promise.reject(busyError());
    const outcome = this.enqueue(command) as Promise<CommandOutcome[Kind]>;
    this.startBatches();
    return outcome;
  }

  /**
   * Queues several commands at once (a batch call) and resolves with each one's outcome or
   * refusal, in order. The queue admits all of them or none (LEDGER_BUSY).
   */
  submitAll(commands: LedgerCommand[]): Promise<Array<PromiseSettledResult<CommandOutcome[LedgerCommand['kind']]>>> {
    if (this.queue.length + commands.length > this.maxQueueLength) return Promise.reject(busyError());
    const outcomes = commands.map((command) => this.enqueue(command));
    this.startBatches();
    return Promise.allSettled(outcomes);
  }

  private enqueue(command: LedgerCommand): Promise<CommandOutcome[LedgerCommand['kind']]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ command, key: commandKey(command), resolve: resolve as (value: unknown) => void, reject });
    });
  }

  /** Commands waiting for a batch. */
  get queueLength(): number {
    return this.queue.length;
  }

  /** Batches running (each reports its events through onCommitted before it ends). */
  get batchesRunning(): number {
    return this.batchesInFlight;
  }

  private startBatches(): void {
    // A batch beyond the first starts only with a full batch's worth waiting. Batches that share
    // accounts run one after another on the row locks anyway — and on a clearing ledger nearly
    // all do (every payment touches the DFSP's connector account) — so a batch started early
    // only splits the queue into more, smaller batches: more statements, same commit order.
    while (
      this.queue.length > 0 &&
      (this.batchesInFlight === 0 ||
        (this.batchesInFlight < this.maxConcurrentBatches && this.queue.length >= this.maxBatchSize))
    ) {
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.batchesInFlight += 1;
      void this.runBatch(batch).finally(() => {
        for (const pending of batch) this.keysInFlight.delete(pending.key);
        this.batchesInFlight -= 1;
        this.startBatches();
      });
    }
  }

  /**
   * Takes up to maxBatchSize commands in arrival order, leaving behind any whose transfer,
   * movement or message is already being changed by a batch in flight (or earlier in this one),
   * so each batch sees the committed result of the previous command on the same object.
   */
  private takeBatch(): PendingCommand[] {
    const batch: PendingCommand[] = [];
    const waiting: PendingCommand[] = [];
    for (const pending of this.queue) {
      if (batch.length < this.maxBatchSize && !this.keysInFlight.has(pending.key)) {
        this.keysInFlight.add(pending.key);
        batch.push(pending);
      } else {
        waiting.push(pending);
      }
    }
    this.queue = waiting;
    return batch;
  }

  private async runBatch(batch: PendingCommand[]): Promise<void> {
    this.statistics.batches += 1;
    this.statistics.commands += batch.length;
    for (let attempt = 1; ; attempt += 1) {
      let client: pg.PoolClient | undefined;
      try {
        client = await this.pool.connect();
        // Each statement awaits the one before: four round trips a batch (queueing them on the
        // client saved none, as pg 8 sends a queued statement only once the one before is
        // answered; docs/PERFORMANCE.md, "pg's pipeline mode").
        await client.query('begin');
        const { outcomes, events } = await executeBatch(
          client,
          batch.map((pending) => pending.command),
          this.clockOffsetMs(),
        );
        client.release();
        // Released: whatever fails from here must not roll back or release it again.
        client = undefined;
        if (events.length > 0) this.onCommitted(events);
        batch.forEach((pending, index) => {
          const outcome = outcomes[index];
          if (outcome instanceof Error) pending.reject(outcome);
          else pending.resolve(outcome);
        });
        return;
      } catch (error) {
        if (client) {
          await client.query('rollback').catch(() => undefined);
          client.release(isDatabaseUnavailableError(error) ? (error as Error) : undefined);
        }
        // A lost race (serialization failure, deadlock, or another replica inserting the same
        // id first) is not the caller's problem: run the batch again against the new state.
        const lostRace =
          isRetryableTransactionError(error) || (error as { code?: string }).code === PostgresErrorCode.uniqueViolation;
        if (lostRace && attempt < this.maxAttempts) {
          this.statistics.retries += 1;
          await delay(Math.min(2 ** attempt, 50) * Math.random());
          continue;
        }
        if (isDatabaseUnavailableError(error)) {
          const unavailable = ledgerError('DATABASE_UNAVAILABLE', 'the ledger database is unavailable; retry later');
          for (const pending of batch) pending.reject(unavailable);
          return;
        }
        // Something unexpected: isolate the command that causes it by running each alone.
        if (batch.length > 1) {
          await Promise.all(batch.map((pending) => this.runBatch([pending])));
          return;
        }
        this.onInternalError(error);
        batch[0].reject(error);
        return;
      }
    }
  }
}

function busyError(): ServiceError {
  return new ServiceError(14, 'LEDGER_BUSY', 'the ledger has too many commands waiting; retry shortly');
}

function commandKey(command: LedgerCommand): string {
  switch (command.kind) {
    case 'prepare':
      return `transfer:${command.transfer.id}`;
    case 'fulfill':
    case 'reject':
      return `transfer:${command.transferId}`;
    case 'deposit':
    case 'withdrawal':
      return `movement:${command.movement.id}`;
    case 'message':
      return `message:${command.message.id}`;
  }
}

function delay(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

interface PendingEvent {
  type: EventType;
  accounts: [string, string | null];
  transferId: string | null;
  messageId: string | null;
  /** What subscribers see: the transfer right after the change, or the message. */
  transfer?: Transfer;
  message?: Message;
}

/** The rows a batch read and the changes it decided, before they are written. */
class BatchState {
  readonly accounts = new Map<string, Account>();
  readonly changedAccounts = new Set<string>();
  readonly transfers = new Map<string, Transfer>();
  readonly newTransfers: Transfer[] = [];
  readonly changedTransfers = new Set<string>();
  readonly movements = new Map<string, Movement>();
  readonly newMovements: Movement[] = [];
  readonly messages = new Map<string, Message>();
  readonly newMessages: Message[] = [];
  readonly events: PendingEvent[] = [];

  constructor(readonly now: Date) {}

  account(name: string): Account | undefined {
    return this.accounts.get(name);
  }

  changeAccount(account: Account, change: { balance?: bigint; heldAmount?: bigint }): void {
    if (change.balance !== undefined) account.balance += change.balance;
    if (change.heldAmount !== undefined) account.heldAmount += change.heldAmount;
    this.changedAccounts.add(account.name);
  }

  transferEvent(type: EventType, transfer: Transfer): void {
    this.events.push({
      type,
      accounts: [transfer.debitAccount, transfer.creditAccount],
      transferId: transfer.id,
      messageId: null,
      transfer: { ...transfer },
    });
  }
}

/**
 * Decides and writes one batch inside an open transaction. Returns, per command, its outcome or
 * the ServiceError that explains its refusal.
 */
export async function executeBatch(
  client: pg.PoolClient,
  commands: LedgerCommand[],
  clockOffsetMs: number,
): Promise<{ outcomes: Array<CommandOutcome[LedgerCommand['kind']] | ServiceError>; events: LedgerEvent[] }> {
  const transferIds = new Set<string>();
  const movementIds: string[] = [];
  const messageIds: string[] = [];
  const accountNames = new Set<string>();
  for (const command of commands) {
    if (command.kind === 'prepare') {
      transferIds.add(command.transfer.id);
      accountNames.add(command.transfer.debitAccount);
      accountNames.add(command.transfer.creditAccount);
    } else if (command.kind === 'fulfill' || command.kind === 'reject') {
      transferIds.add(command.transferId);
    } else if (command.kind === 'message') {
      messageIds.push(command.message.id);
      accountNames.add(command.message.fromAccount);
      accountNames.add(command.message.toAccount);
    } else {
      movementIds.push(command.movement.id);
      accountNames.add(command.movement.account);
    }
  }
  // Rare commands (admin movements, messages) look up their earlier use separately.
  const movementRows =
    movementIds.length === 0
      ? []
      : (
          await client.query<MovementRow>({
            name: 'ledger-find-movements',
            text: 'select * from movements where id = any($1::uuid[])',
            values: [movementIds],
          })
        ).rows;
  const messageRows =
    messageIds.length === 0
      ? []
      : (
          await client.query<MessageRow>({
            name: 'ledger-find-messages',
            text: 'select * from messages where id = any($1::uuid[])',
            values: [messageIds],
          })
        ).rows;

  // 1. One statement locks the transfers in id order, then the accounts they and the commands
  // touch in name order (the accounts' list depends on the transfers, so PostgreSQL must lock
  // those first), then reads the clock — after the locks, so an expiry judged here cannot
  // disagree with the sweeper, which needs the same transfer lock.
  const rows = (
    await client.query<LockedRow>({
      name: 'ledger-lock-batch',
      text: lockBatchStatement,
      values: [[...transferIds], [...accountNames], clockOffsetMs],
    })
  ).rows;
  let nowMs = 0;
  const accounts: Account[] = [];
  const transfers: Transfer[] = [];
  for (const row of rows) {
    if (row.kind === 'transfer') transfers.push(transferFromRow(row as unknown as TransferRow));
    else if (row.kind === 'account') accounts.push(accountFromRow(row));
    else nowMs = Number(row.now_ms);
  }
  const state = new BatchState(new Date(nowMs));
  for (const account of accounts) state.accounts.set(account.name, account);
  for (const transfer of transfers) state.transfers.set(transfer.id, transfer);
  for (const row of movementRows) state.movements.set(row.id, movementFromRow(row));
  for (const row of messageRows) state.messages.set(row.id, messageFromRow(row));

  // 2. Decide each command in order.
  const outcomes = commands.map((command) => {
    try {
      return decide(state, command);
    } catch (error) {
      if (error instanceof ServiceError) return error;
      throw error;
    }
  });

  // A refused command whose id this batch did not find may be a repeat of one another replica
  // committed meanwhile: the batch's statements read snapshots taken before they waited for its
  // locks, so its rows were invisible while its effects (an account's hold) were not — a repeated
  // prepare would be refused INSUFFICIENT_FUNDS for a transfer that exists. A fresh look (rare:
  // only when such a refusal happens); if the id exists now, the batch runs again.
  const refused = commands.filter((_command, index) => outcomes[index] instanceof ServiceError);
  const found = (key: string) =>
    transfers.some((transfer) => key === `transfer:${transfer.id}`) ||
    movementRows.some((row) => key === `movement:${row.id}`) ||
    messageRows.some((row) => key === `message:${row.id}`);
  const unseen = refused.map(commandKey).filter((key) => !found(key));
  if (unseen.length > 0 && (await anyExists(client, unseen))) {
    throw Object.assign(new Error('a command of the batch was committed by another process meanwhile'), {
      code: PostgresErrorCode.serializationFailure,
    });
  }

  // 3. Write every change in one statement and commit (a failed write throws before the commit;
  // the caller rolls back).
  const head = await writeChanges(client, state);
  await client.query('commit');
  return { outcomes, events: committedEvents(state.events, head, state.now) };
}

/** Whether any of `keys` (commandKey form) names a row that exists now. */
async function anyExists(client: pg.PoolClient, keys: string[]): Promise<boolean> {
  const ids = (kind: string) =>
    keys.filter((key) => key.startsWith(`${kind}:`)).map((key) => key.slice(kind.length + 1));
  const result = await client.query({
    name: 'ledger-any-exists',
    text:
      'select exists (select 1 from transfers where id = any($1::uuid[])) or ' +
      'exists (select 1 from movements where id = any($2::uuid[])) or ' +
      'exists (select 1 from messages where id = any($3::uuid[])) as found',
    values: [ids('transfer'), ids('movement'), ids('message')],
  });
  return result.rows[0]?.found === true;
}

interface LockedRow extends AccountRow {
  kind: 'transfer' | 'account' | 'clock';
  now_ms: bigint;
}

const nullTransferColumns = transferColumns
  .split(', ')
  .map((column) => `null as ${column}`)
  .join(', ');
const nullAccountColumns =
  'null::text as name, null::text as owner, null::int8 as balance, null::int8 as held_amount, ' +
  'null::int8 as minimum_balance, null::boolean as disabled, null::timestamptz as created_at, ' +
  'null::timestamptz as updated_at';

const lockBatchStatement =
  `with locked_transfers as (select ${transferColumns} from transfers where id = any($1::uuid[]) order by id for update), ` +
  `locked_accounts as (select ${accountColumns} ` +
  'from accounts where name = any($2::text[] || array(select debit_account from locked_transfers) ' +
  '|| array(select credit_account from locked_transfers)) order by name for update) ' +
  `select 'transfer' as kind, t.*, ${nullAccountColumns}, null::int8 as now_ms from locked_transfers t ` +
  `union all select 'account', ${nullTransferColumns}, a.*, null from locked_accounts a ` +
  `union all select 'clock', ${nullTransferColumns}, ${nullAccountColumns}, ` +
  "ceil(extract(epoch from clock_timestamp() + $3::int8 * interval '1 millisecond') * 1000)::int8";

function decide(state: BatchState, command: LedgerCommand): CommandOutcome[LedgerCommand['kind']] {
  switch (command.kind) {
    case 'prepare':
      return decidePrepare(state, command);
    case 'fulfill':
      return decideFulfill(state, command);
    case 'reject':
      return decideReject(state, command);
    case 'deposit':
    case 'withdrawal':
      return decideMovement(state, command);
    case 'message':
      return decideMessage(state, command);
  }
}

function requireAccount(state: BatchState, name: string): Account {
  const account = state.account(name);
  if (!account) throw ledgerError('ACCOUNT_NOT_FOUND', `account "${name}" does not exist`, { account: name });
  return account;
}

function requireOwner(principal: Principal, account: Account, action: string): void {
  if (!principal.isAdmin && account.owner !== principal.name) {
    throw ledgerError(
      'PERMISSION_DENIED',
      `principal "${principal.name}" may not ${action} account "${account.name}"`,
      { account: account.name },
    );
  }
}

function requireEnabled(account: Account): void {
  if (account.disabled) {
    throw ledgerError('ACCOUNT_DISABLED', `account "${account.name}" is disabled`, { account: account.name });
  }
}

/*
 * The limits of the int8 columns are checked here, on the rows the batch already read, before
 * anything changes: a command past them gets its own refusal instead of failing the batch's
 * write (and the whole batch with it).
 */

/** Refuses a debit of `amount` that would take `account` below its minimum (or the int8 floor). */
function requireFunds(account: Account, amount: bigint, what: string): void {
  if (!canDebit(account, amount)) {
    throw ledgerError(
      'INSUFFICIENT_FUNDS',
      `account "${account.name}" cannot cover ${what} of ${amount} (balance ${account.balance}, minimum ${account.minimumBalance ?? 'none'})`,
      { account: account.name },
    );
  }
}

/** Refuses a hold of `amount` that would take the held amount of `account` past 2^63-1. */
function requireHoldRoom(account: Account, amount: bigint): void {
  if (!canHold(account, amount)) {
    throw ledgerError('BALANCE_OVERFLOW', `the held amount of account "${account.name}" would exceed 2^63-1`, {
      account: account.name,
    });
  }
}

/**
 * Refuses a credit of `amount` that would take balance + held amount of `account` past 2^63-1,
 * so that every hold can always return to its balance (see canCredit).
 */
function requireCreditRoom(account: Account, amount: bigint): void {
  if (!canCredit(account, amount)) {
    throw ledgerError(
      'BALANCE_OVERFLOW',
      `the balance of account "${account.name}" with its held amount would exceed 2^63-1`,
      { account: account.name },
    );
  }
}

/** Refuses to return a hold that does not fit the balance (only on an account credited before canCredit). */
function requireReturnRoom(account: Account, amount: bigint): void {
  if (!canReturnHold(account, amount)) {
    throw ledgerError(
      'BALANCE_OVERFLOW',
      `the balance of account "${account.name}" would exceed 2^63-1 with the returned hold`,
      { account: account.name },
    );
  }
}

/**
 * Prepare, in this order of precedence: the debit account exists and the caller owns it (before
 * anything about an earlier use of the id is revealed), the id's earlier use (stored result or
 * ALREADY_EXISTS), an expiry already past when the request arrived (INVALID_ARGUMENT), the credit
 * account exists, both are enabled, the expiry is still in the
 * future by the database clock, the debit account can cover the amount (and hold it), the credit
 * account can take it.
 */
function decidePrepare(state: BatchState, command: PrepareCommand): Transfer {
  const input = command.transfer;
  const debit = requireAccount(state, input.debitAccount);
  requireOwner(command.principal, debit, 'debit');
  const existing = state.transfers.get(input.id);
  if (existing) {
    const same =
      existing.debitAccount === input.debitAccount &&
      existing.creditAccount === input.creditAccount &&
      existing.amount === input.amount &&
      sameBytes(existing.executionCondition, input.executionCondition) &&
      sameInstant(existing.expiresAt, input.expiresAt) &&
      existing.ilpPacket.equals(input.ilpPacket) &&
      existing.memo.equals(input.memo);
    if (!same) {
      throw ledgerError('ALREADY_EXISTS', `transfer ${input.id} exists with different content`, {
        transfer_id: input.id,
      });
    }
    if (existing.state === 'prepared' && existing.expiresAt && existing.expiresAt.getTime() <= state.now.getTime()) {
      // Repeated after its expiry and not yet swept: it expires now, as a late fulfil finds it.
      expireTransfer(state, existing);
    }
    return { ...existing };
  }
  if (command.arrivedExpired) {
    throw invalidArgument([{ field: 'expiry_time', description: 'must be in the future' }]);
  }
  const credit = requireAccount(state, input.creditAccount);
  requireEnabled(debit);
  requireEnabled(credit);
  if (input.expiresAt && input.expiresAt.getTime() <= state.now.getTime()) {
    throw ledgerError('TRANSFER_EXPIRED', `transfer ${input.id} expires before it could be prepared`, {
      transfer_id: input.id,
    });
  }
  requireFunds(debit, input.amount, 'a transfer');
  const conditional = input.executionCondition !== null;
  if (conditional) requireHoldRoom(debit, input.amount);
  else requireCreditRoom(credit, input.amount);
  const transfer: Transfer = {
    id: input.id,
    debitAccount: input.debitAccount,
    creditAccount: input.creditAccount,
    amount: input.amount,
    executionCondition: input.executionCondition,
    expiresAt: input.expiresAt,
    state: conditional ? 'prepared' : 'executed',
    rejectionReason: null,
    ilpError: null,
    fulfillment: null,
    ilpPacket: input.ilpPacket,
    memo: input.memo,
    preparedAt: state.now,
    executedAt: conditional ? null : state.now,
    rejectedAt: null,
    traceParent: input.traceParent,
  };
  if (conditional) {
    state.changeAccount(debit, { balance: -input.amount, heldAmount: input.amount });
  } else {
    state.changeAccount(debit, { balance: -input.amount });
    state.changeAccount(credit, { balance: input.amount });
  }
  state.transfers.set(transfer.id, transfer);
  state.newTransfers.push(transfer);
  state.transferEvent(conditional ? 'transfer_prepared' : 'transfer_executed', transfer);
  return { ...transfer };
}

/** Rejects `transfer` as expired within this batch and returns the hold. */
function expireTransfer(state: BatchState, transfer: Transfer): void {
  const debit = requireAccount(state, transfer.debitAccount);
  requireReturnRoom(debit, transfer.amount);
  transfer.state = 'rejected';
  transfer.rejectionReason = 'expired';
  transfer.rejectedAt = state.now;
  state.changeAccount(debit, { balance: transfer.amount, heldAmount: -transfer.amount });
  state.changedTransfers.add(transfer.id);
  state.transferEvent('transfer_rejected', transfer);
}

function requireTransfer(state: BatchState, id: string): Transfer {
  const transfer = state.transfers.get(id);
  if (!transfer) throw ledgerError('TRANSFER_NOT_FOUND', `transfer ${id} does not exist`, { transfer_id: id });
  return transfer;
}

function finalStateError(transfer: Transfer) {
  if (transfer.rejectionReason === 'expired') {
    return ledgerError('TRANSFER_EXPIRED', `transfer ${transfer.id} expired at ${transfer.expiresAt?.toISOString()}`, {
      transfer_id: transfer.id,
    });
  }
  return ledgerError('TRANSFER_ALREADY_FINAL', `transfer ${transfer.id} is already ${transfer.state}`, {
    transfer_id: transfer.id,
    state: transfer.state,
  });
}

/**
 * Fulfil, in this order of precedence: the transfer exists, the caller owns the credit account,
 * it has a condition, a repeat with the same fulfillment returns the executed transfer, it is
 * still prepared, it has not expired (an expired one is expired now), the fulfillment matches.
 */
function decideFulfill(state: BatchState, command: FulfillCommand): Transfer {
  const transfer = requireTransfer(state, command.transferId);
  requireOwner(command.principal, requireAccount(state, transfer.creditAccount), 'fulfil transfers to');
  if (transfer.executionCondition === null) {
    throw ledgerError('TRANSFER_NOT_CONDITIONAL', `transfer ${transfer.id} has no condition`, {
      transfer_id: transfer.id,
    });
  }
  if (transfer.state === 'executed' && transfer.fulfillment && transfer.fulfillment.equals(command.fulfillment)) {
    return { ...transfer };
  }
  if (transfer.state !== 'prepared') throw finalStateError(transfer);
  if (transfer.expiresAt && transfer.expiresAt.getTime() <= state.now.getTime()) {
    expireTransfer(state, transfer);
    throw finalStateError(transfer);
  }
  const digest = createHash('sha256').update(command.fulfillment).digest();
  if (!timingSafeEqual(digest, transfer.executionCondition)) {
    throw ledgerError('UNMET_CONDITION', `the fulfillment does not match the condition of transfer ${transfer.id}`, {
      transfer_id: transfer.id,
    });
  }
  const debit = requireAccount(state, transfer.debitAccount);
  const credit = requireAccount(state, transfer.creditAccount);
  requireCreditRoom(credit, transfer.amount);
  state.changeAccount(debit, { heldAmount: -transfer.amount });
  state.changeAccount(credit, { balance: transfer.amount });
  transfer.state = 'executed';
  transfer.fulfillment = command.fulfillment;
  transfer.executedAt = state.now;
  state.changedTransfers.add(transfer.id);
  state.transferEvent('transfer_executed', transfer);
  return { ...transfer };
}

/**
 * Whether a repeated rejection carries the ILP error the transfer was rejected with: the same
 * code, name, message, triggered_by, forwarded_by and data. The trigger time is not compared: the
 * ledger stamps its own when none is given, and a party repeating its rejection (after a crash,
 * say) stamps a new one; it says when, not what.
 */
function sameRejection(stored: IlpError, repeated: IlpError): boolean {
  return (
    stored.code === repeated.code &&
    stored.name === repeated.name &&
    stored.message === repeated.message &&
    stored.triggeredBy === repeated.triggeredBy &&
    stored.forwardedBy.length === repeated.forwardedBy.length &&
    stored.forwardedBy.every((address, index) => address === repeated.forwardedBy[index]) &&
    stored.data.equals(repeated.data)
  );
}

/**
 * Reject, in this order of precedence: the transfer exists, the caller owns the credit account,
 * it has a condition, a repeat returns the rejected transfer when it carries the same ILP error
 * and is ALREADY_EXISTS when it carries another, it is still prepared, it has not expired (an
 * expired one is expired now), the hold can return.
 */
function decideReject(state: BatchState, command: RejectCommand): Transfer {
  const transfer = requireTransfer(state, command.transferId);
  requireOwner(command.principal, requireAccount(state, transfer.creditAccount), 'reject transfers to');
  if (transfer.executionCondition === null) {
    throw ledgerError('TRANSFER_NOT_CONDITIONAL', `transfer ${transfer.id} has no condition`, {
      transfer_id: transfer.id,
    });
  }
  if (transfer.state === 'rejected' && transfer.rejectionReason === 'cancelled' && transfer.ilpError) {
    if (sameRejection(transfer.ilpError, command.ilpError)) return { ...transfer };
    throw ledgerError('ALREADY_EXISTS', `transfer ${transfer.id} was rejected with a different ILP error`, {
      transfer_id: transfer.id,
    });
  }
  if (transfer.state !== 'prepared') throw finalStateError(transfer);
  if (transfer.expiresAt && transfer.expiresAt.getTime() <= state.now.getTime()) {
    expireTransfer(state, transfer);
    throw finalStateError(transfer);
  }
  const debit = requireAccount(state, transfer.debitAccount);
  requireReturnRoom(debit, transfer.amount);
  state.changeAccount(debit, { balance: transfer.amount, heldAmount: -transfer.amount });
  transfer.state = 'rejected';
  transfer.rejectionReason = 'cancelled';
  transfer.ilpError = { ...command.ilpError, triggeredAt: command.ilpError.triggeredAt ?? state.now };
  transfer.rejectedAt = state.now;
  state.changedTransfers.add(transfer.id);
  state.transferEvent('transfer_rejected', transfer);
  return { ...transfer };
}

/**
 * Deposit or withdraw, in this order of precedence: the caller is an admin (before anything
 * about an earlier use of the id is revealed), the id's earlier use (stored result or
 * ALREADY_EXISTS), the account exists, a withdrawal is covered, a deposit fits.
 * Disabled accounts still accept both, so an operator can settle and close them.
 */
function decideMovement(state: BatchState, command: MovementCommand): Movement {
  const input = command.movement;
  if (!command.principal.isAdmin) {
    throw ledgerError('PERMISSION_DENIED', `only an admin may make a ${command.kind}`);
  }
  const existing = state.movements.get(input.id);
  if (existing) {
    if (
      existing.kind !== command.kind ||
      existing.account !== input.account ||
      existing.amount !== input.amount ||
      existing.externalReference !== input.externalReference
    ) {
      throw ledgerError('ALREADY_EXISTS', `${command.kind} ${input.id} exists with different content`, {
        movement_id: input.id,
      });
    }
    return existing;
  }
  const account = requireAccount(state, input.account);
  if (command.kind === 'withdrawal') {
    requireFunds(account, input.amount, 'a withdrawal');
    state.changeAccount(account, { balance: -input.amount });
  } else {
    requireCreditRoom(account, input.amount);
    state.changeAccount(account, { balance: input.amount });
  }
  const movement: Movement = {
    id: input.id,
    kind: command.kind,
    account: input.account,
    amount: input.amount,
    externalReference: input.externalReference,
    createdAt: state.now,
    balanceAfter: account.balance,
  };
  state.movements.set(movement.id, movement);
  state.newMovements.push(movement);
  return movement;
}

/**
 * Send a message, in this order of precedence: the sending account exists and the caller owns it
 * (before anything about an earlier use of the id is revealed), the id's earlier use, the
 * receiving account exists.
 */
function decideMessage(state: BatchState, command: MessageCommand): Message {
  const input = command.message;
  requireOwner(command.principal, requireAccount(state, input.fromAccount), 'send messages from');
  const existing = state.messages.get(input.id);
  if (existing) {
    if (
      existing.fromAccount !== input.fromAccount ||
      existing.toAccount !== input.toAccount ||
      !existing.data.equals(input.data)
    ) {
      throw ledgerError('ALREADY_EXISTS', `message ${input.id} exists with different content`, {
        message_id: input.id,
      });
    }
    return existing;
  }
  requireAccount(state, input.toAccount);
  const message: Message = { ...input, sentAt: state.now };
  state.messages.set(message.id, message);
  state.newMessages.push(message);
  state.events.push({
    type: 'message_sent',
    accounts: [input.toAccount, null],
    transferId: null,
    messageId: input.id,
    message,
  });
  return message;
}

const toText = (value: bigint) => value.toString();
const toIso = (value: Date | null) => (value ? value.toISOString() : null);

/**
 * Writes a batch's changes with one statement: new transfers, changed transfers, account
 * balances, movements, messages, and the events with their sequence numbers. Every row it
 * changes was locked by the batch's first statement, so the only lock it takes is the ledger
 * head's — last, as everywhere.
 */
async function writeChanges(client: pg.PoolClient, state: BatchState): Promise<bigint | null> {
  const inserted = state.newTransfers;
  const newIds = new Set(inserted.map((transfer) => transfer.id));
  const changed = [...state.changedTransfers]
    .filter((id) => !newIds.has(id))
    .map((id) => state.transfers.get(id) as Transfer);
  const accounts = [...state.changedAccounts].map((name) => state.accounts.get(name) as Account);
  const movements = state.newMovements;
  const messages = state.newMessages;
  const events = state.events;
  const result = await client.query<{ sequence: bigint }>({
    name: 'ledger-write-batch',
    text: writeBatchStatement,
    values: [
      inserted.map((transfer) => transfer.id),
      inserted.map((transfer) => transfer.debitAccount),
      inserted.map((transfer) => transfer.creditAccount),
      inserted.map((transfer) => toText(transfer.amount)),
      inserted.map((transfer) => transfer.executionCondition),
      inserted.map((transfer) => toIso(transfer.expiresAt)),
      inserted.map((transfer) => transfer.state),
      inserted.map((transfer) => transfer.ilpPacket),
      inserted.map((transfer) => transfer.memo),
      inserted.map((transfer) => toIso(transfer.preparedAt)),
      inserted.map((transfer) => toIso(transfer.executedAt)),
      inserted.map((transfer) => transfer.traceParent),
      changed.map((transfer) => transfer.id),
      changed.map((transfer) => transfer.state),
      changed.map((transfer) => transfer.rejectionReason),
      changed.map((transfer) => (transfer.ilpError ? JSON.stringify(ilpErrorToStored(transfer.ilpError)) : null)),
      changed.map((transfer) => transfer.fulfillment),
      changed.map((transfer) => toIso(transfer.executedAt)),
      changed.map((transfer) => toIso(transfer.rejectedAt)),
      accounts.map((account) => account.name),
      accounts.map((account) => toText(account.balance)),
      accounts.map((account) => toText(account.heldAmount)),
      movements.map((movement) => movement.id),
      movements.map((movement) => movement.kind),
      movements.map((movement) => movement.account),
      movements.map((movement) => toText(movement.amount)),
      movements.map((movement) => movement.externalReference),
      movements.map((movement) => toText(movement.balanceAfter)),
      messages.map((message) => message.id),
      messages.map((message) => message.fromAccount),
      messages.map((message) => message.toAccount),
      messages.map((message) => message.data),
      events.length,
      events.map((event) => event.type),
      events.map((event) => event.accounts[0]),
      events.map((event) => event.accounts[1]),
      events.map((event) => event.transferId),
      events.map((event) => event.messageId),
      state.now.toISOString(),
    ],
  });
  return result.rows[0]?.sequence ?? null;
}

/** The events of a committed batch with their sequence numbers (the batch's ones end at `head`). */
function committedEvents(events: PendingEvent[], head: bigint | null, at: Date): LedgerEvent[] {
  if (head === null || events.length === 0) return [];
  const first = head - BigInt(events.length) + 1n;
  return events.map((event, index) => ({
    sequence: first + BigInt(index),
    type: event.type,
    occurredAt: at,
    accounts: event.accounts[1] === null ? [event.accounts[0]] : [event.accounts[0], event.accounts[1]],
    transfer: event.transfer,
    message: event.message,
  }));
}

const writeBatchStatement =
  'with inserted_transfers as (insert into transfers (id, debit_account, credit_account, amount, execution_condition, ' +
  'expires_at, state, ilp_packet, memo, prepared_at, executed_at, trace_parent) ' +
  'select * from unnest($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::bytea[], $6::timestamptz[], $7::text[], ' +
  '$8::bytea[], $9::bytea[], $10::timestamptz[], $11::timestamptz[], $12::text[])), ' +
  'changed_transfers as (update transfers as t set state = u.state, rejection_reason = u.rejection_reason, ' +
  'ilp_error = u.ilp_error, fulfillment = u.fulfillment, executed_at = u.executed_at, rejected_at = u.rejected_at ' +
  'from unnest($13::uuid[], $14::text[], $15::text[], $16::jsonb[], $17::bytea[], $18::timestamptz[], $19::timestamptz[]) ' +
  'as u(id, state, rejection_reason, ilp_error, fulfillment, executed_at, rejected_at) where t.id = u.id), ' +
  'changed_accounts as (update accounts as a set balance = u.balance, held_amount = u.held_amount ' +
  'from unnest($20::text[], $21::int8[], $22::int8[]) as u(name, balance, held_amount) where a.name = u.name), ' +
  'inserted_movements as (insert into movements (id, kind, account, amount, external_reference, balance_after, created_at) ' +
  'select u.*, $39::timestamptz from unnest($23::uuid[], $24::text[], $25::text[], $26::int8[], $27::text[], $28::int8[]) ' +
  'as u), ' +
  'inserted_messages as (insert into messages (id, from_account, to_account, data, sent_at) ' +
  'select u.*, $39::timestamptz from unnest($29::uuid[], $30::text[], $31::text[], $32::bytea[]) as u), ' +
  `${appendEventsClauses(33, 34, 39)}`;

/**
 * The clauses appending events to the outbox and announcing the new head: parameters $count
 * (how many), $count+1..$count+5 (types, first and second account, transfer and message ids)
 * and $time. The ledger_head row is taken last in every transaction, so its lock is held only
 * for the commit, and sequence order is commit order: a reader that sees head N has every
 * event up to N.
 */
function appendEventsClauses(count: number, first: number, time: number): string {
  return (
    `head as (update ledger_head set sequence = sequence + $${count}::int8 where $${count}::int8 > 0 returning sequence), ` +
    'appended as (insert into events (sequence, type, accounts, transfer_id, message_id, occurred_at) ' +
    `select (select sequence from head) - $${count}::int8 + e.ordinal, e.type, ` +
    'array_remove(array[e.first_account, e.second_account], null), e.transfer_id, e.message_id, ' +
    `$${time}::timestamptz from unnest($${first}::text[], $${first + 1}::text[], $${first + 2}::text[], ` +
    `$${first + 3}::uuid[], $${first + 4}::uuid[]) with ordinality ` +
    'as e(type, first_account, second_account, transfer_id, message_id, ordinal)) ' +
    `select sequence, pg_notify('${eventChannel}', sequence::text) from head`
  );
}

/** Appends events to the outbox with the next sequence numbers and announces the new head. */
export async function appendEvents(client: pg.PoolClient, events: PendingEvent[], now: Date): Promise<void> {
  if (events.length === 0) return;
  await client.query({
    name: 'ledger-append-events',
    text: `with ${appendEventsClauses(1, 2, 7)}`,
    values: [
      events.length,
      events.map((event) => event.type),
      events.map((event) => event.accounts[0]),
      events.map((event) => event.accounts[1]),
      events.map((event) => event.transferId),
      events.map((event) => event.messageId),
      now.toISOString(),
    ],
  });
}

export type { PendingEvent };
