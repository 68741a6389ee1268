#!/usr/bin/env node
// The `interclear` command. In a checkout it runs the TypeScript sources through tsx, so it works
// right after `npm ci`; in a production image (no src/) it runs the compiled dist/.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

// grpc-js sends the target host as TLS server name; for a local network that host is 127.0.0.1,
// which Node reports as deprecated (DEP0123) on every connection. The certificate is still
// verified against the address, so the warning only adds noise to the output.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const code = typeof rest[0] === 'object' && rest[0] !== null ? rest[0].code : rest[1];
  if (code === 'DEP0123') return;
  return emitWarning.call(process, warning, ...rest);
};

// Output piped into a reader that stops early (`| head`): end quietly, as command-line tools do,
// unless the command handles its output's end itself (`watch` cancels its stream first).
process.stdout.on('error', (error) => {
  if (process.stdout.listenerCount('error') > 1) return;
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const root = path.join(__dirname, '..');
const source = path.join(root, 'src', 'cli', 'main.ts');
let entry;
if (fs.existsSync(source)) {
  require('tsx/cjs');
  entry = source;
} else {
  entry = path.join(root, 'dist', 'cli', 'main.js');
}
require(entry)
  .main(process.argv)
  .then(() => {
    // A command that reported a failure (an invalid flag, …) must end, even if something it had
    // started meanwhile (a database connection retrying) still holds the event loop.
    if (process.exitCode) setTimeout(() => process.exit(), 500).unref();
  })
  .catch((error) => {
    process.stderr.write(`interclear: ${error && error.message ? error.message : error}\n`);
    process.exitCode = 1;
    // A command that failed must end, even if something it started still holds the event loop.
    setTimeout(() => process.exit(1), 500).unref();
  });
