/**
 * The ledger service in domain terms: validation, authorization and the reads, with the money
 * movements delegated to the command processor. The gRPC layer (grpc.ts) only maps messages.
 */
import { LockMode, UniqueConstraintViolationException, type MikroORM } from '@mikro-orm/core';
import type { PostgreSqlDriver } from '@mikro-orm/postgresql';
import type pg from 'pg';
import { forBatchItem, invalidArgument, ServiceError, type FieldViolation } from '../platform/errors';
import { currentTraceParent, isTraceParent } from '../platform/tracing';
import { ledgerError } from './errors';
import type {
  Account,
  EventType,
  IlpError,
  LedgerEvent,
  LedgerInfo,
  Message,
  Movement,
  Principal,
  Transfer,
  TransferState,
} from './model';
import { isStorableTime, maximumAmount } from './model';
import type { EventHub, OwnerCheck } from './notifications';
import { ownerChannel, readHeadSequence } from './notifications';
import { AccountEntity, type AccountRow } from './persistence';
import type { CommandProcessor, FulfillCommand, PrepareCommand, RejectCommand } from './processor';
import {
  accountColumns,
  accountFromRow as accountFromSqlRow,
  transferColumns,
  transferFromRow,
  type AccountRow as SqlAccountRow,
  type TransferRow,
} from './rows';
import { isUuid } from '../platform/ids';
import { decodePageToken, encodePageToken, parseTimeAndId, timeAndIdPosition } from '../platform/page-tokens';

const accountNamePattern = /^[a-zA-Z0-9_-]{1,86}$/;
const ilpErrorCodePattern = /^[FTR][0-9]{2}$/;
const maximumPacketBytes = 32767;
const maximumMemoBytes = 8192;
const maximumReferenceLength = 256;
const maximumPageSize = 1000;
const defaultPageSize = 100;
/** Most items of one batch call (PrepareTransfers, FulfillTransfers, RejectTransfers). */
export const maximumBatchItems = 1000;

/** Inputs of the ledger's commands, already decoded from the wire. */
export interface PrepareTransferInput {
  transferId: string;
  debitAccount: string;
  creditAccount: string;
  amount: bigint;
  executionCondition: Buffer;
  expiresAt: Date | null;
  ilpPacket: Buffer;
  memo: Buffer;
  /** The payment's W3C traceparent; empty: the call's trace context. */
  traceParent?: string;
}

export interface CreateAccountInput {
  name: string;
  owner: string;
  minimumBalance: bigint | undefined;
  minimumBalanceUnlimited: boolean;
  disabled: boolean;
}

export interface UpdateAccountInput {
  name: string;
  minimumBalance?: bigint;
  minimumBalanceUnlimited?: boolean;
  disabled?: boolean;
  owner?: string;
}

export interface MovementInput {
  id: string;
  account: string;
  amount: bigint;
  externalReference: string;
}

export interface ListTransfersInput {
  account: string;
  /** Empty: any condition. */
  executionCondition: Buffer;
  state: TransferState | undefined;
  startTime: Date | undefined;
  endTime: Date | undefined;
  pageSize: number;
  pageToken: string;
}

export interface SubscribeInput {
  accounts: string[];
  eventTypes: EventType[];
  afterSequence: bigint | undefined;
}

/** A page of results and the token of the next page ("" on the last). */
export interface Page<Item> {
  items: Item[];
  nextPageToken: string;
}

/** What the ledger service needs. */
export interface LedgerServiceDependencies {
  info: LedgerInfo;
  pool: pg.Pool;
  orm: MikroORM<PostgreSqlDriver>;
  processor: CommandProcessor;
  hub: EventHub;
  /** The application clock, for validating expiries before they reach the database. */
  now?: () => Date;
}

export type LedgerService = ReturnType<typeof createLedgerService>;

/** Collects field violations and throws them together. */
class Violations {
  readonly list: FieldViolation[] = [];
  add(field: string, description: string): void {
    this.list.push({ field, description });
  }
  uuid(field: string, value: string): void {
    if (!isUuid(value)) this.add(field, 'must be a UUID like 3fa85f64-5717-4562-b3fc-2c963f66afa6');
  }
  accountName(field: string, value: string): void {
    if (!accountNamePattern.test(value)) this.add(field, 'must match [a-zA-Z0-9_-]{1,86}');
  }
  amount(field: string, value: bigint, precision: number): void {
    if (value <= 0n) this.add(field, 'must be greater than zero');
    else if (value > maximumAmount(precision)) this.add(field, `must be at most ${maximumAmount(precision)}`);
  }
  maximumBytes(field: string, value: Buffer, maximum: number): void {
    if (value.length > maximum) this.add(field, `must be at most ${maximum} bytes (got ${value.length})`);
  }
  /** Text the database stores as text or jsonb, neither of which takes U+0000. */
  storableText(field: string, value: string): void {
    if (value.includes('\u0000')) this.add(field, 'must not contain the NUL character (U+0000)');
  }
  /** A length in characters, and text the database can store. */
  text(field: string, value: string, minimum: number, maximum: number): void {
    if (value.length < minimum || value.length > maximum) {
      this.add(
        field,
        minimum === 0 ? `must be at most ${maximum} characters` : `must be ${minimum} to ${maximum} characters`,
      );
    }
    this.storableText(field, value);
  }
  throwIfAny(): void {
    if (this.list.length > 0) throw invalidArgument(this.list);
  }
}

function pageSizeOf(requested: number, violations: Violations): number {
  if (requested > maximumPageSize) violations.add('page_size', `must be at most ${maximumPageSize}`);
  return requested === 0 ? defaultPageSize : requested;
}

/** The position a page token carries (none for an empty token); a violation for a forged one. */
function pagePosition<Position>(
  token: string,
  violations: Violations,
  parsePosition: (decoded: string) => Position | undefined,
): Position | undefined {
  if (token === '') return undefined;
  const position = decodePageToken(token, parsePosition);
  if (position === undefined) violations.add('page_token', 'is not a token returned by this service');
  return position;
}

/** A ListAccounts position: the last account name of the page before. */
const accountPosition = (decoded: string) => (accountNamePattern.test(decoded) ? decoded : undefined);

/** A ListTransfers position: the prepare time and id of the last transfer of the page before. */
function transferPosition(decoded: string): { preparedAt: string; id: string } | undefined {
  const position = parseTimeAndId(decoded);
  if (!position || !isStorableTime(position.time)) return undefined;
  return { preparedAt: position.time.toISOString(), id: position.id };
}

function validateIlpError(error: IlpError | undefined, violations: Violations): void {
  if (!error) {
    violations.add('ilp_error', 'is required');
    return;
  }
  if (!ilpErrorCodePattern.test(error.code)) violations.add('ilp_error.code', 'must be an ILP error code like F02');
  violations.text('ilp_error.name', error.name, 0, 256);
  violations.text('ilp_error.message', error.message, 0, maximumMemoBytes);
  violations.text('ilp_error.triggered_by', error.triggeredBy, 0, 1023);
  if (error.forwardedBy.length > 64 || error.forwardedBy.some((address) => address.length > 1023)) {
    violations.add('ilp_error.forwarded_by', 'must hold at most 64 addresses of at most 1023 characters');
  }
  error.forwardedBy.forEach((address, index) => violations.storableText(`ilp_error.forwarded_by[${index}]`, address));
  if (error.triggeredAt && !isStorableTime(error.triggeredAt)) {
    violations.add('ilp_error.trigger_time', 'must be a time from year 1 to 9999');
  }
  violations.maximumBytes('ilp_error.data', error.data, maximumMemoBytes);
}

function accountFromRow(row: AccountRow): Account {
  return {
    name: row.name,
    owner: row.owner,
    balance: row.balance,
    heldAmount: row.heldAmount,
    minimumBalance: row.minimumBalance,
    disabled: row.disabled,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** Creates the ledger service over its database, processor and event hub. */
export function createLedgerService(dependencies: LedgerServiceDependencies) {
  const { info, pool, orm, processor, hub } = dependencies;
  const now = dependencies.now ?? (() => new Date());

  function requireAdmin(principal: Principal, action: string): void {
    if (!principal.isAdmin) throw ledgerError('PERMISSION_DENIED', `only an admin may ${action}`);
  }

  async function loadTransferForParty(principal: Principal, transferId: string): Promise<Transfer> {
    const violations = new Violations();
    violations.uuid('transfer_id', transferId);
    violations.throwIfAny();
    const result = await pool.query<TransferRow & { debit_owner: string; credit_owner: string }>({
      name: 'ledger-get-transfer',
      text:
        `select ${transferColumns
          .split(', ')
          .map((column) => `t.${column}`)
          .join(', ')}, ` +
        'd.owner as debit_owner, c.owner as credit_owner from transfers t ' +
        'join accounts d on d.name = t.debit_account join accounts c on c.name = t.credit_account where t.id = $1',
      values: [transferId],
    });
    const row = result.rows[0];
    if (!row)
      throw ledgerError('TRANSFER_NOT_FOUND', `transfer ${transferId} does not exist`, { transfer_id: transferId });
    if (!principal.isAdmin && row.debit_owner !== principal.name && row.credit_owner !== principal.name) {
      throw ledgerError('PERMISSION_DENIED', `principal "${principal.name}" is not a party to transfer ${transferId}`);
    }
    return transferFromRow(row);
  }

  /** Validates a prepare and builds its command (throws INVALID_ARGUMENT). */
  function prepareCommand(principal: Principal, input: PrepareTransferInput): PrepareCommand {
    const violations = new Violations();
    violations.uuid('transfer_id', input.transferId);
    violations.accountName('debit_account', input.debitAccount);
    violations.accountName('credit_account', input.creditAccount);
    if (input.debitAccount === input.creditAccount) {
      violations.add('credit_account', 'must differ from debit_account');
    }
    violations.amount('amount', input.amount, info.precision);
    const conditional = input.executionCondition.length > 0;
    if (conditional && input.executionCondition.length !== 32) {
      violations.add(
        'execution_condition',
        `must be 32 bytes (a SHA-256 hash), got ${input.executionCondition.length}`,
      );
    }
    if (conditional && !input.expiresAt) violations.add('expiry_time', 'is required with an execution_condition');
    if (!conditional && input.expiresAt) violations.add('expiry_time', 'is only allowed with an execution_condition');
    // An expiry already past is decided by the processor: it is invalid for a new transfer, but a
    // repeat of a transfer already made (a retry whose answer was lost) gets the stored result.
    const current = now().getTime();
    const arrivedExpired = input.expiresAt !== null && input.expiresAt.getTime() <= current;
    if (input.expiresAt && !arrivedExpired) {
      if (input.expiresAt.getTime() > current + info.maxHoldMs) {
        violations.add('expiry_time', `must be within the ledger's maximum hold time of ${info.maxHoldMs} ms`);
      }
    }
    violations.maximumBytes('ilp_packet', input.ilpPacket, maximumPacketBytes);
    violations.maximumBytes('memo', input.memo, maximumMemoBytes);
    if (input.traceParent && !isTraceParent(input.traceParent)) {
      violations.add('trace_parent', 'must be a W3C traceparent: 00-<32 hex digits>-<16 hex digits>-<2 hex digits>');
    }
    violations.throwIfAny();
    return {
      kind: 'prepare',
      principal,
      transfer: {
        id: input.transferId.toLowerCase(),
        debitAccount: input.debitAccount,
        creditAccount: input.creditAccount,
        amount: input.amount,
        executionCondition: conditional ? input.executionCondition : null,
        expiresAt: input.expiresAt,
        ilpPacket: input.ilpPacket,
        memo: input.memo,
        traceParent: input.traceParent || currentTraceParent(),
      },
      ...(arrivedExpired ? { arrivedExpired } : {}),
    };
  }

  /** Validates a fulfilment and builds its command (throws INVALID_ARGUMENT). */
  function fulfillCommand(principal: Principal, transferId: string, fulfillment: Buffer): FulfillCommand {
    const violations = new Violations();
    violations.uuid('transfer_id', transferId);
    if (fulfillment.length !== 32) violations.add('fulfillment', `must be 32 bytes, got ${fulfillment.length}`);
    violations.throwIfAny();
    return { kind: 'fulfill', principal, transferId: transferId.toLowerCase(), fulfillment };
  }

  /** Validates a rejection and builds its command (throws INVALID_ARGUMENT). */
  function rejectCommand(principal: Principal, transferId: string, ilpError: IlpError | undefined): RejectCommand {
    const violations = new Violations();
    violations.uuid('transfer_id', transferId);
    validateIlpError(ilpError, violations);
    violations.throwIfAny();
    return { kind: 'reject', principal, transferId: transferId.toLowerCase(), ilpError: ilpError as IlpError };
  }

  return {
    info(): LedgerInfo {
      return info;
    },

    async createAccount(principal: Principal, input: CreateAccountInput): Promise<Account> {
      const violations = new Violations();
      violations.accountName('name', input.name);
      violations.text('owner', input.owner, 1, 256);
      if (input.minimumBalance !== undefined && input.minimumBalanceUnlimited) {
        violations.add('minimum_balance', 'cannot be set together with minimum_balance_unlimited');
      }
      violations.throwIfAny();
      requireAdmin(principal, 'create accounts');
      const minimumBalance = input.minimumBalanceUnlimited ? null : (input.minimumBalance ?? 0n);
      for (let attempt = 1; ; attempt += 1) {
        const em = orm.em.fork();
        try {
          const existing = await em.findOne(AccountEntity, { name: input.name });
          if (existing) {
            if (
              existing.owner !== input.owner ||
              existing.minimumBalance !== minimumBalance ||
              existing.disabled !== input.disabled
            ) {
              throw ledgerError('ALREADY_EXISTS', `account "${input.name}" exists with different settings`, {
                account: input.name,
              });
            }
            return accountFromRow(existing);
          }
          const created = em.create(AccountEntity, {
            name: input.name,
            owner: input.owner,
            balance: 0n,
            heldAmount: 0n,
            minimumBalance,
            disabled: input.disabled,
            createdAt: new Date(),
            updatedAt: new Date(),
          });
          await em.flush();
          return accountFromRow(created);
        } catch (error) {
          // Created concurrently: compare with the winner on the next attempt.
          if (error instanceof UniqueConstraintViolationException && attempt < 3) continue;
          throw error;
        }
      }
    },

    async getAccount(principal: Principal, name: string): Promise<Account> {
      const violations = new Violations();
      violations.accountName('name', name);
      violations.throwIfAny();
      // Raw SQL, not the ORM: connectors and SPSP services read accounts on their hot paths.
      const result = await pool.query<SqlAccountRow>({
        name: 'ledger-get-account',
        text: `select ${accountColumns} from accounts where name = $1`,
        values: [name],
      });
      const account = result.rows[0];
      if (!account) throw ledgerError('ACCOUNT_NOT_FOUND', `account "${name}" does not exist`, { account: name });
      if (!principal.isAdmin && account.owner !== principal.name) {
        throw ledgerError('PERMISSION_DENIED', `principal "${principal.name}" does not own account "${name}"`);
      }
      return accountFromSqlRow(account);
    },

    async listAccounts(principal: Principal, requestedPageSize: number, pageToken: string): Promise<Page<Account>> {
      const violations = new Violations();
      const pageSize = pageSizeOf(requestedPageSize, violations);
      const after = pagePosition(pageToken, violations, accountPosition);
      violations.throwIfAny();
      const where: Record<string, unknown> = {};
      if (after !== undefined) where.name = { $gt: after };
      if (!principal.isAdmin) where.owner = principal.name;
      const rows = await orm.em.fork().find(AccountEntity, where, { orderBy: { name: 'asc' }, limit: pageSize + 1 });
      const items = rows.slice(0, pageSize).map(accountFromRow);
      return { items, nextPageToken: rows.length > pageSize ? encodePageToken(items[items.length - 1].name) : '' };
    },

    async updateAccount(principal: Principal, input: UpdateAccountInput): Promise<Account> {
      const violations = new Violations();
      violations.accountName('name', input.name);
      if (input.minimumBalance !== undefined && input.minimumBalanceUnlimited === true) {
        violations.add('minimum_balance', 'cannot be set together with minimum_balance_unlimited');
      }
      if (input.owner !== undefined) violations.text('owner', input.owner, 1, 256);
      violations.throwIfAny();
      requireAdmin(principal, 'update accounts');
      let ownerChanged = false;
      const updated = await orm.em.fork().transactional(async (em) => {
        const account = await em.findOne(AccountEntity, { name: input.name }, { lockMode: LockMode.PESSIMISTIC_WRITE });
        if (!account) {
          throw ledgerError('ACCOUNT_NOT_FOUND', `account "${input.name}" does not exist`, { account: input.name });
        }
        if (input.minimumBalance !== undefined) account.minimumBalance = input.minimumBalance;
        if (input.minimumBalanceUnlimited === true) account.minimumBalance = null;
        if (input.minimumBalanceUnlimited === false && account.minimumBalance === null) {
          account.minimumBalance = input.minimumBalance ?? 0n;
        }
        if (input.disabled !== undefined) account.disabled = input.disabled;
        if (input.owner !== undefined && input.owner !== account.owner) {
          account.owner = input.owner;
          ownerChanged = true;
          // Delivered at commit, to every replica's hub: open streams of the old owner stop
          // following the account (see notifications.ts).
          await em.execute('select pg_notify(?, ?)', [ownerChannel, input.name]);
        }
        account.updatedAt = new Date();
        await em.flush();
        return accountFromRow(account);
      });
      if (ownerChanged) hub.ownerChanged(input.name);
      return updated;
    },

    async deposit(principal: Principal, input: MovementInput): Promise<Movement> {
      validateMovement(input, 'deposit_id');
      return processor.submit({ kind: 'deposit', principal, movement: normaliseMovement(input) });
    },

    async withdraw(principal: Principal, input: MovementInput): Promise<Movement> {
      validateMovement(input, 'withdrawal_id');
      return processor.submit({ kind: 'withdrawal', principal, movement: normaliseMovement(input) });
    },

    async prepareTransfer(principal: Principal, input: PrepareTransferInput): Promise<Transfer> {
      return processor.submit(prepareCommand(principal, input));
    },

    async fulfillTransfer(principal: Principal, transferId: string, fulfillment: Buffer): Promise<Transfer> {
      return processor.submit(fulfillCommand(principal, transferId, fulfillment));
    },

    async rejectTransfer(principal: Principal, transferId: string, ilpError: IlpError | undefined): Promise<Transfer> {
      return processor.submit(rejectCommand(principal, transferId, ilpError));
    },

    /**
     * Runs many prepares, fulfils or rejects of one batch call: each item is built (validated)
     * and decided on its own; returns per item its transfer or the error that refused it.
     */
    async transferBatch<Item>(
      items: Item[],
      list: string,
      build: (item: Item) => PrepareCommand | FulfillCommand | RejectCommand,
    ): Promise<Array<Transfer | ServiceError | unknown>> {
      if (items.length === 0) throw invalidArgument([{ field: list, description: 'must not be empty' }]);
      if (items.length > maximumBatchItems) {
        throw invalidArgument([
          { field: list, description: `at most ${maximumBatchItems} items per call, got ${items.length}` },
        ]);
      }
      const results: Array<Transfer | ServiceError | unknown> = new Array(items.length);
      const commands: Array<PrepareCommand | FulfillCommand | RejectCommand> = [];
      const positions: number[] = [];
      items.forEach((item, index) => {
        try {
          commands.push(build(item));
          positions.push(index);
        } catch (error) {
          results[index] = error instanceof ServiceError ? forBatchItem(error, list, index) : error;
        }
      });
      if (commands.length > 0) {
        const outcomes = await processor.submitAll(commands);
        outcomes.forEach((outcome, at) => {
          const index = positions[at];
          if (outcome.status === 'fulfilled') results[index] = outcome.value;
          else if (outcome.reason instanceof ServiceError) results[index] = forBatchItem(outcome.reason, list, index);
          else results[index] = outcome.reason;
        });
      }
      return results;
    },

    prepareCommand,
    fulfillCommand,
    rejectCommand,

    getTransfer(principal: Principal, transferId: string): Promise<Transfer> {
      return loadTransferForParty(principal, transferId.toLowerCase());
    },

    async getFulfillment(principal: Principal, transferId: string): Promise<{ fulfillment: Buffer; executedAt: Date }> {
      const transfer = await loadTransferForParty(principal, transferId.toLowerCase());
      if (transfer.state !== 'executed' || !transfer.fulfillment || !transfer.executedAt) {
        throw ledgerError(
          'MISSING_FULFILLMENT',
          `transfer ${transfer.id} is ${transfer.state} and has no fulfillment`,
          {
            transfer_id: transfer.id,
            state: transfer.state,
          },
        );
      }
      return { fulfillment: transfer.fulfillment, executedAt: transfer.executedAt };
    },

    async listTransfers(principal: Principal, input: ListTransfersInput): Promise<Page<Transfer>> {
      const violations = new Violations();
      if (input.executionCondition.length !== 0 && input.executionCondition.length !== 32) {
        violations.add('execution_condition', 'must be 32 bytes when given');
      }
      if (input.account !== '') violations.accountName('account', input.account);
      else if (!principal.isAdmin) violations.add('account', 'is required unless the caller is an admin');
      const pageSize = pageSizeOf(input.pageSize, violations);
      const after = pagePosition(input.pageToken, violations, transferPosition);
      violations.throwIfAny();
      if (input.account !== '' && !principal.isAdmin) {
        const owner = await pool.query<{ owner: string }>('select owner from accounts where name = $1', [
          input.account,
        ]);
        if (owner.rows.length === 0) {
          throw ledgerError('ACCOUNT_NOT_FOUND', `account "${input.account}" does not exist`, {
            account: input.account,
          });
        }
        if (owner.rows[0].owner !== principal.name) {
          throw ledgerError(
            'PERMISSION_DENIED',
            `principal "${principal.name}" does not own account "${input.account}"`,
          );
        }
      }
      const conditions: string[] = [];
      const values: unknown[] = [];
      const parameter = (value: unknown) => {
        values.push(value);
        return `$${values.length}`;
      };
      if (input.account !== '') {
        const account = parameter(input.account);
        conditions.push(`(debit_account = ${account} or credit_account = ${account})`);
      }
      if (input.state) conditions.push(`state = ${parameter(input.state)}`);
      if (input.executionCondition.length > 0) {
        conditions.push(`execution_condition = ${parameter(input.executionCondition)}`);
      }
      if (input.startTime) conditions.push(`prepared_at >= ${parameter(input.startTime.toISOString())}`);
      if (input.endTime) conditions.push(`prepared_at < ${parameter(input.endTime.toISOString())}`);
      if (after)
        conditions.push(
          `(prepared_at, id) > (${parameter(after.preparedAt)}::timestamptz, ${parameter(after.id)}::uuid)`,
        );
      const where = conditions.length > 0 ? `where ${conditions.join(' and ')}` : '';
      const result = await pool.query<TransferRow>(
        `select ${transferColumns} from transfers ${where} order by prepared_at, id limit ${pageSize + 1}`,
        values,
      );
      const items = result.rows.slice(0, pageSize).map(transferFromRow);
      const last = items[items.length - 1];
      return {
        items,
        nextPageToken:
          result.rows.length > pageSize ? encodePageToken(timeAndIdPosition(last.preparedAt, last.id)) : '',
      };
    },

    async sendMessage(
      principal: Principal,
      input: { id: string; fromAccount: string; toAccount: string; data: Buffer },
    ): Promise<Message> {
      const violations = new Violations();
      violations.uuid('message_id', input.id);
      violations.accountName('from_account', input.fromAccount);
      violations.accountName('to_account', input.toAccount);
      if (input.data.length === 0) violations.add('data', 'must not be empty');
      violations.maximumBytes('data', input.data, maximumMemoBytes);
      violations.throwIfAny();
      return processor.submit({ kind: 'message', principal, message: { ...input, id: input.id.toLowerCase() } });
    },

    /**
     * Starts a subscription: checks the caller may follow the accounts, then returns the head
     * sequence and the events, from after_sequence (replay) or from the head, until `signal`.
     *
     * The accounts follow their ownership while the stream is open, as a new Subscribe would:
     * a stream that named an account its principal no longer owns ends with PERMISSION_DENIED;
     * one that named none (every account of its principal) drops the accounts given away and
     * takes on those given to it. Only an owner change costs a query, never an event.
     */
    async subscribe(
      principal: Principal,
      input: SubscribeInput,
      signal: AbortSignal,
    ): Promise<{ headSequence: bigint; events: AsyncGenerator<LedgerEvent> }> {
      const violations = new Violations();
      input.accounts.forEach((name, index) => violations.accountName(`accounts[${index}]`, name));
      if (input.accounts.length > 1000) violations.add('accounts', 'must list at most 1000 accounts');
      violations.throwIfAny();
      // Read before the owners are: a change from here on is checked again (see OwnerCheck).
      const ownersCheckedAt = hub.ownerChangeCount;
      let accounts: Set<string> | null = null;
      if (input.accounts.length > 0) {
        const rows = await pool.query<{ name: string; owner: string }>(
          'select name, owner from accounts where name = any($1::text[])',
          [input.accounts],
        );
        const owners = new Map(rows.rows.map((row) => [row.name, row.owner]));
        for (const name of input.accounts) {
          const owner = owners.get(name);
          if (owner === undefined)
            throw ledgerError('ACCOUNT_NOT_FOUND', `account "${name}" does not exist`, { account: name });
          if (!principal.isAdmin && owner !== principal.name) {
            throw ledgerError('PERMISSION_DENIED', `principal "${principal.name}" does not own account "${name}"`);
          }
        }
        accounts = new Set(input.accounts);
      } else if (!principal.isAdmin) {
        const rows = await pool.query<{ name: string }>('select name from accounts where owner = $1', [principal.name]);
        accounts = new Set(rows.rows.map((row) => row.name));
      }
      const headSequence = await readHeadSequence(pool);
      if (input.afterSequence !== undefined && input.afterSequence > headSequence) {
        throw invalidArgument([
          { field: 'after_sequence', description: `is beyond the ledger's head sequence ${headSequence}` },
        ]);
      }
      const types = input.eventTypes.length > 0 ? new Set(input.eventTypes) : null;
      const followed = accounts;
      const owners: OwnerCheck | undefined =
        followed === null || principal.isAdmin
          ? undefined
          : {
              checkedAt: ownersCheckedAt,
              recheck: (changed) => recheckOwners(principal, followed, input.accounts.length > 0, changed),
            };
      const events = hub.follow(input.afterSequence ?? headSequence, { accounts, types }, signal, owners);
      return { headSequence, events };
    },
  };

  /**
   * Checks the owners of `changed` accounts for an open subscription of `principal` following
   * `accounts`: `named` (the request listed them) ends it when one was given away; otherwise the
   * set follows what the principal owns now.
   */
  async function recheckOwners(
    principal: Principal,
    accounts: Set<string>,
    named: boolean,
    changed: string[] | null,
  ): Promise<void> {
    // Unknown changes (null): every account followed, and for a stream of all the principal's
    // accounts also those it owns now.
    const relevant = changed === null ? [...accounts] : named ? changed.filter((name) => accounts.has(name)) : changed;
    const ownedNow = changed === null && !named ? principal.name : null;
    if (relevant.length === 0 && ownedNow === null) return;
    const rows = await pool.query<{ name: string; owner: string }>({
      name: 'ledger-account-owners',
      text: 'select name, owner from accounts where name = any($1::text[]) or owner = $2::text',
      values: [relevant, ownedNow],
    });
    for (const row of rows.rows) {
      if (row.owner === principal.name) {
        accounts.add(row.name);
      } else if (named) {
        throw ledgerError('PERMISSION_DENIED', `principal "${principal.name}" no longer owns account "${row.name}"`, {
          account: row.name,
        });
      } else {
        accounts.delete(row.name);
      }
    }
  }

  function validateMovement(input: MovementInput, idField: string): void {
    const violations = new Violations();
    violations.uuid(idField, input.id);
    violations.accountName('account', input.account);
    violations.amount('amount', input.amount, info.precision);
    violations.text('external_reference', input.externalReference, 1, maximumReferenceLength);
    violations.throwIfAny();
  }

  function normaliseMovement(input: MovementInput): MovementInput {
    return { ...input, id: input.id.toLowerCase() };
  }
}
