#!/usr/bin/env node
// The `interclear` command. In a checkout it runs the TypeScript sources through tsx, so it works
// right after `npm ci`; in a production image (no src/) it runs the compiled dist/.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

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
  .catch((error) => {
    process.stderr.write(`interclear: ${error && error.message ? error.message : error}\n`);
    process.exitCode = 1;
  });
