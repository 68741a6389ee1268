/** The summary of a chaos run, for people (text) and scripts (JSON). */
import type { ChaosReport } from './run';
import { describeFault } from './schedule';

const seconds = (milliseconds: number) => `${(milliseconds / 1000).toFixed(1)} s`;

/** The summary's lines. */
export function describeReport(report: ChaosReport): string[] {
  const lines: string[] = [];
  const { payments } = report;
  lines.push(
    `chaos run: seed ${report.seed}, ${seconds(report.durationMs)} of traffic at ${report.ratePerSecond} payments/s, a process ${report.processes === 'per-dfsp' ? 'per DFSP' : 'per service'}${report.aborted ? ' (ABORTED)' : ''}`,
  );
  lines.push(
    `payments: ${payments.sent} sent (${payments.payCalls} Pay calls), ${payments.executed} executed, ${payments.rejected} rejected, ${payments.expired} expired, ${payments.failed} failed before any hold, ${payments.notRecorded} never recorded (service unreachable)`,
  );
  const reasons = Object.entries(payments.reasons).sort(([, left], [, right]) => right - left);
  if (reasons.length > 0) {
    lines.push(`  not executed because: ${reasons.map(([reason, count]) => `${reason} ×${count}`).join(', ')}`);
  }
  lines.push(`at rest ${seconds(report.settleMs)} after the traffic stopped; whole run ${seconds(report.elapsedMs)}`);
  for (const [ledger, counts] of Object.entries(report.ledgers)) {
    lines.push(
      `  ${ledger.padEnd(16)} transfers: ${counts.executed} executed, ${counts.rejected} rejected, ${counts.prepared} prepared`,
    );
  }
  lines.push(
    `faults injected: ${report.faults.length} of ${report.planned.length} planned${report.databaseRestartsReal ? '' : ' (PostgreSQL restarts simulated: a given server is not ours to stop)'}`,
  );
  for (const record of report.faults) {
    lines.push(
      `  #${String(record.fault.index + 1).padEnd(2)} at ${seconds(record.startedAtMs).padStart(7)}, healed at ${seconds(record.healedAtMs).padStart(7)}: ${describeFault(record.fault)}${record.detail ? ` — ${record.detail}` : ''}${record.error ? ` — ERROR: ${record.error}` : ''}`,
    );
  }
  if (report.losses.length > 0) {
    lines.push(`connector losses reported (a fault kept the pass-back from happening before expiry):`);
    for (const loss of report.losses) {
      lines.push(
        `  ${loss.connector} lost ${loss.amount} on ${loss.ledger} (incoming ${loss.incomingTransferId}, outgoing ${loss.outgoingTransferId}) during fault ${loss.fault}`,
      );
    }
  } else {
    lines.push('connector losses: none');
  }
  lines.push(`invariant violations: ${report.violations.length}`);
  for (const violation of report.violations) lines.push(`  ${violation.kind}: ${violation.message}`);
  lines.push(report.violations.length === 0 ? 'PASSED' : `FAILED: reproduce the faults with --seed ${report.seed}`);
  return lines;
}

/** The report as JSON text (amounts as strings). */
export function reportJson(report: ChaosReport): string {
  return JSON.stringify(report, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value), 2);
}
