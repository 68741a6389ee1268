/**
 * Dropping TCP connections from outside the processes, as a network fault would: `ss -K`
 * (iproute2) destroys a socket in the kernel, so the process sees its connection reset and its
 * notification stream end with an error, exactly as when a middlebox or a peer's host drops it.
 * It needs Linux with socket destruction enabled (CONFIG_INET_DIAG_DESTROY) and the right to
 * use it (root, or CAP_NET_ADMIN); {@link dropConnections} reports when it cannot.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** How long an `ss` call may take. */
const commandTimeoutMs = 5_000;

/** What became of a drop. */
export type DropResult =
  { kind: 'dropped'; connections: number } | { kind: 'none'; reason: string } | { kind: 'unsupported'; reason: string };

/** The local ports of the established TCP connections process `pid` has to 127.0.0.1:`port`. */
async function connectionsOf(pid: number, port: number): Promise<number[]> {
  const { stdout } = await run(
    'ss',
    ['-H', '-t', '-n', '-p', 'state', 'established', 'dst', '127.0.0.1', 'dport', '=', String(port)],
    { timeout: commandTimeoutMs },
  );
  const ports: number[] = [];
  for (const line of stdout.split('\n')) {
    // "0  0  127.0.0.1:54190  127.0.0.1:41317  users:(("node",pid=18790,fd=20))"
    if (!line.includes(`pid=${pid},`)) continue;
    const local = /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:\d+/.exec(line);
    if (local) ports.push(Number(local[1]));
  }
  return ports;
}

/**
 * Destroys every established TCP connection from process `pid` to 127.0.0.1:`port`, and checks
 * that they are gone.
 */
export async function dropConnections(pid: number, port: number): Promise<DropResult> {
  let before: number[];
  try {
    before = await connectionsOf(pid, port);
  } catch (error) {
    return { kind: 'unsupported', reason: `cannot list sockets with ss: ${(error as Error).message}` };
  }
  if (before.length === 0) return { kind: 'none', reason: `process ${pid} has no connection to port ${port}` };
  const localPorts = before.flatMap((localPort, index) => [
    ...(index > 0 ? ['or'] : []),
    'sport',
    '=',
    String(localPort),
  ]);
  try {
    await run(
      'ss',
      [
        '-K',
        '-H',
        '-t',
        '-n',
        'state',
        'established',
        'dst',
        '127.0.0.1',
        'dport',
        '=',
        String(port),
        '(',
        ...localPorts,
        ')',
      ],
      { timeout: commandTimeoutMs },
    );
  } catch (error) {
    return { kind: 'unsupported', reason: `ss -K failed: ${(error as Error).message}` };
  }
  const after = await connectionsOf(pid, port).catch(() => []);
  const survivors = after.filter((localPort) => before.includes(localPort));
  if (survivors.length === before.length) {
    return { kind: 'unsupported', reason: 'ss -K destroyed nothing (no CONFIG_INET_DIAG_DESTROY, or not root)' };
  }
  return { kind: 'dropped', connections: before.length - survivors.length };
}
