/**
 * Interclear's ILP client library: ILP addresses, the ILPv1 payment packet, crypto-conditions,
 * the receiver's fulfillment derivation (IPR/PSK) and exact amount arithmetic.
 *
 * Plain TypeScript on Node's crypto and Buffer only, with no server, gRPC or database code, so
 * that other DFSPs can import it to build and check payments of their own.
 */
export * from './address';
export * from './amount';
export * from './condition';
export * from './errors';
export * from './ipr';
export * from './oer';
export * from './packet';
