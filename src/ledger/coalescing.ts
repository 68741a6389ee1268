/**
 * Client-side call coalescing for the ledger's money-moving calls.
 *
 * A connector or SPSP service handling many payments at once makes many concurrent
 * PrepareTransfer, FulfillTransfer and RejectTransfer calls to the same ledger. Each unary gRPC
 * call has a fixed cost on both sides (HTTP/2 frames, TLS records, interceptors, promises) that
 * is most of a payment's CPU. This wrapper sends them the way the ledger itself commits them:
 * while fewer than `maxCallsInFlight` calls of a kind are in flight, a call goes out at once
 * (alone when it is alone — exactly the single call, with its own deadline and trace context);
 * the calls made while those are in flight wait and go together in one batch call
 * (PrepareTransfers, FulfillTransfers, RejectTransfers) as soon as a slot frees. No timer adds
 * latency: under low load nothing changes, under high load the batches grow with the load.
 *
 * Callers see no difference: each call resolves with its own response or rejects with the very
 * error the single call would have returned (code, message, ErrorInfo, BadRequest with the same
 * field paths), built from the batch item's google.rpc.Status. Each call keeps its own deadline
 * (DEADLINE_EXCEEDED at that time, whether it is still waiting or travelling in a batch). A
 * failure of the whole batch call (unavailable) fails each of its calls with that error — which
 * every caller already treats as "outcome unknown, retry": the calls are idempotent. Two
 * failures are the coalescing's own and handled here: an answer over the message size limit
 * (RESOURCE_EXHAUSTED: a batch answer echoes each transfer with its packet) sends the calls
 * again in halves, and a ledger without the batch calls (UNIMPLEMENTED) gets every call alone.
 *
 * Tracing: each prepare carries its own payment's traceparent in `trace_parent`, so the
 * transfer continues its payment's trace; the batch call itself is traced under its first
 * call's context.
 */
import type * as grpc from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';
import type {
  FulfillTransferRequest,
  FulfillTransferResponse,
  PrepareTransferRequest,
  PrepareTransferResponse,
  RejectTransferRequest,
  RejectTransferResponse,
  Transfer,
  TransferResult,
} from '../gen/interclear/ledger/v1/ledger';
import type { CallOptions } from '../platform/client';
import { grpcErrorFromStatus } from '../platform/errors';
import { isTraceParent } from '../platform/tracing';
import { Counter, type Registry } from 'prom-client';
import type { LedgerClient } from './client';

/** Options of {@link withCallCoalescing}. */
export interface CoalescingOptions {
  /** Most calls sent together in one batch call (the ledger accepts up to 1,000). Default 200. */
  maxItems?: number;
  /** Calls of one kind (prepare, fulfil, reject) in flight at once; the rest wait. Default 4. */
  maxCallsInFlight?: number;
  /**
   * Most bytes of ILP packets, memos and error data (plus a fixed allowance per item) in one
   * batch call, to stay well inside the ledger's 1 MiB request limit and the client's 4 MiB
   * response limit (a batch answer echoes each transfer's packet). Default 512 KiB.
   */
  maxBytes?: number;
}

/** A generous allowance for an item's fixed fields (ids, accounts, amounts, condition, times). */
const itemOverheadBytes = 512;

/** What the wrapper did, for tests and metrics. */
export interface CoalescingStatistics {
  /** Calls sent as they were (alone). */
  singleCalls: number;
  /** Batch calls sent. */
  batchCalls: number;
  /** Calls sent inside batch calls. */
  batchedItems: number;
}

interface Waiting<Request, Response> {
  request: Request;
  options: CallOptions;
  /** Absolute deadline (ms since the epoch), if the caller set a timeout. */
  deadline: number | undefined;
  /** Settled already (answered, failed, or its own deadline passed): later outcomes are dropped. */
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
  resolve: (response: Response) => void;
  reject: (error: unknown) => void;
}

/** Sends the calls of one kind: alone, or several as one batch call. */
class Coalescer<Request, Response> {
  private queue: Array<Waiting<Request, Response>> = [];
  private inFlight = 0;
  private flushScheduled = false;
  /** Set when the ledger does not know the batch call (an older version): singles from then on. */
  private batchUnsupported = false;

  constructor(
    private readonly single: (request: Request, options: CallOptions) => Promise<Response>,
    /** Sends the calls `waiting` as one batch call (`options`: its deadline and metadata). */
    private readonly batch: (
      waiting: Array<Waiting<Request, Response>>,
      options: CallOptions,
    ) => Promise<TransferResult[]>,
    private readonly toResponse: (result: TransferResult) => Response,
    /** The transfer id a request is about, to check that each result answers its own request. */
    private readonly idOf: (request: Request) => string,
    /** The repeated field's name in the batch request, e.g. "transfers" (for field paths). */
    private readonly listName: string,
    /** An upper estimate of one request's encoded size. */
    private readonly sizeOf: (request: Request) => number,
    private readonly limits: { maxItems: number; maxCallsInFlight: number; maxBytes: number },
    private readonly statistics: CoalescingStatistics,
  ) {}

  call(request: Request, options: CallOptions = {}): Promise<Response> {
    if (this.batchUnsupported) {
      // An older ledger: every call as it was before coalescing, with no limit of our own.
      this.statistics.singleCalls += 1;
      return Promise.resolve().then(() => this.single(request, options));
    }
    return new Promise<Response>((resolve, reject) => {
      const waiting: Waiting<Request, Response> = {
        request,
        options,
        deadline: options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs,
        settled: false,
        timer: undefined,
        resolve: (response) => {
          if (waiting.settled) return;
          waiting.settled = true;
          clearTimeout(waiting.timer);
          resolve(response);
        },
        reject: (error) => {
          if (waiting.settled) return;
          waiting.settled = true;
          clearTimeout(waiting.timer);
          reject(error);
        },
      };
      if (options.timeoutMs !== undefined) {
        // The caller's deadline holds whether its call waits here or travels in a batch whose
        // own deadline is the latest of its calls': DEADLINE_EXCEEDED on time, outcome unknown,
        // exactly as for a single call.
        const timeoutMs = options.timeoutMs;
        waiting.timer = setTimeout(() => {
          const index = this.queue.indexOf(waiting);
          if (index >= 0) this.queue.splice(index, 1);
          waiting.reject(deadlineExceeded(timeoutMs));
        }, timeoutMs);
      }
      this.queue.push(waiting);
      this.scheduleFlush();
    });
  }

  /**
   * Sends after the current I/O callbacks, so that the calls one event loop turn produces (say,
   * a notification batch's jobs) leave together even when a slot is free.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.inFlight >= this.limits.maxCallsInFlight) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.batchUnsupported) {
      // Calls that were waiting when the ledger turned out to be older go out one by one, now.
      for (const waiting of this.queue.splice(0)) this.sendSafely([waiting]);
      return;
    }
    while (this.inFlight < this.limits.maxCallsInFlight && this.queue.length > 0) {
      this.sendSafely(this.queue.splice(0, this.groupLength()));
    }
  }

  /** Sends `group` in a slot; whatever happens, every call in it is settled and the slot freed. */
  private sendSafely(group: Array<Waiting<Request, Response>>): void {
    this.inFlight += 1;
    this.send(group)
      .catch((error: unknown) => {
        for (const waiting of group) waiting.reject(error);
      })
      .finally(() => {
        this.inFlight -= 1;
        this.flush();
      });
  }

  /** How many waiting calls the next batch takes: at most maxItems and maxBytes, at least one. */
  private groupLength(): number {
    let bytes = 0;
    let count = 0;
    for (const waiting of this.queue) {
      if (count === this.limits.maxItems) break;
      bytes += this.sizeOf(waiting.request);
      if (count > 0 && bytes > this.limits.maxBytes) break;
      count += 1;
    }
    return count;
  }

  private async send(group: Array<Waiting<Request, Response>>): Promise<void> {
    if (group.length === 1) {
      this.statistics.singleCalls += 1;
      const [only] = group;
      const options =
        only.deadline === undefined ? only.options : { ...only.options, timeoutMs: remaining(only.deadline) };
      await Promise.resolve()
        .then(() => this.single(only.request, options))
        .then(only.resolve, only.reject);
      return;
    }
    this.statistics.batchCalls += 1;
    this.statistics.batchedItems += group.length;
    const deadlines = group.map((waiting) => waiting.deadline);
    const options: CallOptions = {
      metadata: group[0].options.metadata,
      // The latest of its calls' deadlines: each call's own timer fails it at its own deadline.
      timeoutMs: deadlines.includes(undefined) ? undefined : remaining(Math.max(...(deadlines as number[]))),
    };
    let results: TransferResult[];
    try {
      results = await this.batch(group, options);
    } catch (error) {
      const code = (error as grpc.ServiceError).code;
      if (code === grpcStatus.UNIMPLEMENTED) {
        // A ledger without the batch calls (every batch in flight learns it): these calls, and
        // every later one, go one by one.
        this.batchUnsupported = true;
        this.queue.unshift(...group.filter((waiting) => !waiting.settled));
        return;
      }
      if (code === grpcStatus.RESOURCE_EXHAUSTED) {
        // Most likely a response over the message limit (a batch answer echoes each transfer
        // with its packet, memo and error, which the request does not show): the ledger did
        // the work, and every call is idempotent, so the halves are sent again.
        const unsettled = group.filter((waiting) => !waiting.settled);
        if (unsettled.length > 1) {
          const half = Math.ceil(unsettled.length / 2);
          for (const part of [unsettled.slice(0, half), unsettled.slice(half)]) this.sendSafely(part);
          return;
        }
      }
      for (const waiting of group) waiting.reject(error);
      return;
    }
    group.forEach((waiting, index) => {
      const result = results[index]?.result;
      if (result?.$case === 'transfer' && result.value.id === this.idOf(waiting.request).toLowerCase()) {
        waiting.resolve(this.toResponse(results[index]));
      } else if (result?.$case === 'error') {
        waiting.reject(grpcErrorFromStatus(result.value, `${this.listName}[${index}].`));
      } else {
        waiting.reject(
          grpcErrorFromStatus({
            code: grpcStatus.INTERNAL,
            message: `the ledger's ${this.listName} batch answer has no result of its own for item ${index}`,
            details: [],
          }),
        );
      }
    });
  }
}

function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}

/** The error grpc-js gives a call whose deadline passed. */
function deadlineExceeded(timeoutMs: number): grpc.ServiceError {
  return grpcErrorFromStatus({
    code: grpcStatus.DEADLINE_EXCEEDED,
    message: `Deadline exceeded after ${timeoutMs} ms (waiting for or in a batch call)`,
    details: [],
  });
}

/**
 * The traceparent a call's metadata carries (injected by the caller's tracing) when it is one the
 * ledger accepts, else "": a trace must never be why a payment is refused.
 */
function traceParentOf(options: CallOptions): string {
  const value = options.metadata?.get('traceparent')[0];
  return typeof value === 'string' && isTraceParent(value) ? value : '';
}

const bytes = (text: string) => Buffer.byteLength(text);

/** The single call's response for a batch item that is a transfer. */
function transferResponse(result: TransferResult): { transfer: Transfer | undefined } {
  return { transfer: result.result?.$case === 'transfer' ? result.result.value : undefined };
}

/** A ledger client of its own kind whose prepare, fulfil and reject calls are coalesced. */
export type CoalescingLedgerClient = LedgerClient & { readonly coalescing: CoalescingStatistics };

/**
 * Wraps `client` so that its PrepareTransfer, FulfillTransfer and RejectTransfer calls are
 * coalesced into the batch calls under load (see the module comment); every other call, and
 * `close`, go to `client` unchanged.
 */
export function withCallCoalescing(client: LedgerClient, options: CoalescingOptions = {}): CoalescingLedgerClient {
  const limits = {
    maxItems: options.maxItems ?? 200,
    maxCallsInFlight: options.maxCallsInFlight ?? 4,
    maxBytes: options.maxBytes ?? 512 * 1024,
  };
  if (!Number.isInteger(limits.maxItems) || limits.maxItems < 1 || limits.maxItems > 1000) {
    throw new RangeError(`maxItems must be an integer from 1 to 1,000 (the ledger's limit), got ${limits.maxItems}`);
  }
  if (!Number.isInteger(limits.maxCallsInFlight) || limits.maxCallsInFlight < 1) {
    throw new RangeError(`maxCallsInFlight must be a positive integer, got ${limits.maxCallsInFlight}`);
  }
  const statistics: CoalescingStatistics = { singleCalls: 0, batchCalls: 0, batchedItems: 0 };
  const prepares = new Coalescer<PrepareTransferRequest, PrepareTransferResponse>(
    (request, callOptions) => client.prepareTransfer(request, callOptions),
    // Each prepare names its own payment's trace, whichever batch it travels in.
    async (waiting, callOptions) => {
      const transfers = waiting.map(({ request, options: itsOptions }) =>
        request.traceParent ? request : { ...request, traceParent: traceParentOf(itsOptions) },
      );
      return (await client.prepareTransfers({ transfers }, callOptions)).results;
    },
    transferResponse,
    (request) => request.transferId,
    'transfers',
    (request) =>
      itemOverheadBytes +
      request.ilpPacket.length +
      request.memo.length +
      bytes(request.transferId) +
      bytes(request.debitAccount) +
      bytes(request.creditAccount) +
      bytes(request.traceParent),
    limits,
    statistics,
  );
  const fulfils = new Coalescer<FulfillTransferRequest, FulfillTransferResponse>(
    (request, callOptions) => client.fulfillTransfer(request, callOptions),
    async (waiting, callOptions) =>
      (await client.fulfillTransfers({ fulfillments: waiting.map((item) => item.request) }, callOptions)).results,
    transferResponse,
    (request) => request.transferId,
    'fulfillments',
    (request) => itemOverheadBytes + bytes(request.transferId) + request.fulfillment.length,
    limits,
    statistics,
  );
  const rejects = new Coalescer<RejectTransferRequest, RejectTransferResponse>(
    (request, callOptions) => client.rejectTransfer(request, callOptions),
    async (waiting, callOptions) =>
      (await client.rejectTransfers({ rejections: waiting.map((item) => item.request) }, callOptions)).results,
    transferResponse,
    (request) => request.transferId,
    'rejections',
    (request) =>
      itemOverheadBytes +
      bytes(request.transferId) +
      (request.ilpError
        ? request.ilpError.data.length +
          bytes(request.ilpError.code) +
          bytes(request.ilpError.name) +
          bytes(request.ilpError.message) +
          bytes(request.ilpError.triggeredBy) +
          request.ilpError.forwardedBy.reduce((sum, address) => sum + bytes(address), 0)
        : 0),
    limits,
    statistics,
  );
  const overrides: Record<string, unknown> = {
    prepareTransfer: (request: PrepareTransferRequest, callOptions?: CallOptions) =>
      prepares.call(request, callOptions),
    fulfillTransfer: (request: FulfillTransferRequest, callOptions?: CallOptions) => fulfils.call(request, callOptions),
    rejectTransfer: (request: RejectTransferRequest, callOptions?: CallOptions) => rejects.call(request, callOptions),
    coalescing: statistics,
  };
  return new Proxy(client, {
    get(target, property) {
      if (typeof property === 'string' && property in overrides) return overrides[property];
      return (target as unknown as Record<string | symbol, unknown>)[property];
    },
  }) as CoalescingLedgerClient;
}

/**
 * Counters of the coalescing clients `sources` lists (one per ledger), read when scraped:
 * `interclear_ledger_client_calls_total{ledger, sent="alone"|"batch"}` (calls that went out) and
 * `interclear_ledger_client_batched_calls_total{ledger}` (calls that travelled inside batch
 * calls). Their ratio is the mean batch size: 1 at low load, growing with the load.
 */
export function registerCoalescingMetrics(
  registry: Registry,
  sources: () => Array<{ ledger: string; statistics: CoalescingStatistics }>,
): void {
  new Counter({
    name: 'interclear_ledger_client_calls_total',
    help: 'Prepare, fulfil and reject calls sent to a ledger: alone, or as batch calls carrying several',
    labelNames: ['ledger', 'sent'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { ledger, statistics } of sources()) {
        this.inc({ ledger, sent: 'alone' }, statistics.singleCalls);
        this.inc({ ledger, sent: 'batch' }, statistics.batchCalls);
      }
    },
  });
  new Counter({
    name: 'interclear_ledger_client_batched_calls_total',
    help: 'Prepare, fulfil and reject calls that travelled inside batch calls to a ledger',
    labelNames: ['ledger'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { ledger, statistics } of sources()) this.inc({ ledger }, statistics.batchedItems);
    },
  });
}
