/**
 * Ready-to-paste grpcurl commands against a running network, with its real addresses: the
 * fastest way for a DFSP engineer to poke at each service (every server has reflection).
 */
import type { NetworkManifest } from './manifest';

function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Commented grpcurl command lines for `manifest`'s network. */
export function grpcurlCommands(manifest: NetworkManifest): string[] {
  const auth = manifest.insecure
    ? `-plaintext -H ${quote(`x-principal: ${manifest.adminPrincipal}`)}`
    : `-cacert ${manifest.tls!.ca} -cert ${manifest.tls!.certificate} -key ${manifest.tls!.privateKey}`;
  const [sender, receiver] = manifest.dfsps;
  const ledgerOf = (dfsp: (typeof manifest.dfsps)[number]) =>
    manifest.ledgers.find((ledger) => ledger.name === dfsp.ledger)!;
  const central = manifest.ledgers.find((ledger) => ledger.dfsp === null)!;
  const senderAccount = sender.customers[0].split('@')[0];
  const receiverName = receiver.customers[0];
  const receiverAccount = receiverName.split('@')[0];
  const amount = ledgerOf(receiver).scale === 0 ? '5000' : '500';
  const uuid = `"$(node -e 'console.log(crypto.randomUUID())')"`;
  const payBody = `'{"payment_id":"'${uuid}'","sender_account":"${senderAccount}","receiver":"${receiverName}","destination_amount":"${amount}"}'`;
  return [
    `# what a service offers (reflection)`,
    `grpcurl ${auth} ${sender.spsp} list`,
    `# ${receiverName} as ${receiver.name}'s SPSP server describes it`,
    `grpcurl ${auth} -d ${quote(JSON.stringify({ receiver: receiverName }))} ${receiver.spsp} interclear.spsp.v1.SpspService/Query`,
    `# what ${amount} minor units to ${receiverName} cost ${senderAccount}`,
    `grpcurl ${auth} -d ${quote(JSON.stringify({ receiver: receiverName, destination_amount: amount }))} ${sender.spsp} interclear.spsp.v1.PaymentService/Quote`,
    `# pay them`,
    `grpcurl ${auth} -d ${payBody} ${sender.spsp} interclear.spsp.v1.PaymentService/Pay`,
    `# accounts and balances on the central ledger`,
    `grpcurl ${auth} ${central.address} interclear.ledger.v1.LedgerService/ListAccounts`,
    `# follow ${receiverAccount}'s account (Ctrl-C to stop)`,
    `grpcurl ${auth} -d ${quote(JSON.stringify({ accounts: [receiverAccount] }))} ${ledgerOf(receiver).address} interclear.ledger.v1.LedgerService/Subscribe`,
    `# ${sender.name}'s connector: streams, balances, money in flight`,
    `grpcurl ${auth} ${sender.connector} interclear.connector.v1.ConnectorService/GetStatus`,
  ];
}
