#!/usr/bin/env node
// parley development database: CongoDB (pure-JS MongoDB wire server from
// @push.rocks/smartmongo 2.2.0) with the patches in ./patches applied.
//
//   node devdb.mjs [--host 127.0.0.1] [--port N] [--dbpath DIR] [--quiet]
//
// --port 0 picks a free port. Once the server accepts connections, exactly one
// line goes to stdout:  devdb ready mongodb://HOST:PORT
// Nothing else is written to stdout. SIGTERM/SIGINT stop it at once.
// Without --dbpath data lives in memory only; with it, every acknowledged write
// is on disk (see patches/05-bson-persistence.mjs).
//
// Run ./install first. PARLEY_DEVDB_HOME (default: this directory) is where
// install put node_modules/ and vendor/.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The patches were written against exactly these versions; refuse anything else.
const PINNED = { smartmongo: '2.2.0', bson: '6.10.4', mingo: '7.2.6' };

// Applied in this order, before the server starts.
const PATCHES = [
  '01-hello-await.mjs',
  '02-bson-clone.mjs',
  '03-index-reload.mjs',
  '04-ids-and-unique.mjs',
  '05-bson-persistence.mjs',
  '06-receive-framing.mjs',
  '07-bson-sort.mjs',
  '08-upsert-setoninsert.mjs',
  '09-distinct-values.mjs',
  '10-update-change-check.mjs',
];

const here = dirname(fileURLToPath(import.meta.url));
const home = resolve(process.env.PARLEY_DEVDB_HOME || here);

// stdout carries only the ready line; send stray library logging to stderr.
console.log = console.info = console.debug = console.error;

function die(msg) {
  process.stderr.write(`devdb: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 27017, dbpath: null, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : die(`${a} needs a value`));
    if (a === '--host') opts.host = val();
    else if (a === '--port') opts.port = Number(val());
    else if (a === '--dbpath') opts.dbpath = resolve(val());
    else if (a === '--quiet') opts.quiet = true;
    else if (a === '-h' || a === '--help') {
      process.stderr.write('usage: node devdb.mjs [--host H] [--port N] [--dbpath DIR] [--quiet]\n');
      process.exit(0);
    } else die(`unknown argument ${a}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) die('bad --port');
  return opts;
}

function installedVersion(pkgDir) {
  const f = join(pkgDir, 'package.json');
  if (!existsSync(f)) return null;
  return JSON.parse(readFileSync(f, 'utf8')).version;
}

function checkVersions(vendorDir) {
  const found = {
    smartmongo: installedVersion(vendorDir),
    bson: installedVersion(join(home, 'node_modules', 'bson')),
    mingo: installedVersion(join(home, 'node_modules', 'mingo')),
  };
  for (const [name, want] of Object.entries(PINNED)) {
    if (found[name] === null) die(`${name} not installed under ${home}; run scripts/devdb/install`);
    if (found[name] !== want) die(`${name} is ${found[name]}, patches are written for ${want}; run scripts/devdb/install`);
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const log = opts.quiet ? () => {} : (m) => process.stderr.write(`devdb: ${m}\n`);

  const vendorDir = join(home, 'vendor', `smartmongo-${PINNED.smartmongo}`);
  checkVersions(vendorDir);
  const congoDir = join(vendorDir, 'dist_ts', 'congodb');
  const congo = await import(pathToFileURL(join(congoDir, 'index.js')).href);
  const handlers = await import(pathToFileURL(join(congoDir, 'server', 'handlers', 'index.js')).href);
  // bson/mingo come from CongoDB's own import so instanceof checks agree.
  const ctx = { congo, handlers, bson: congo.plugins.bson, mingo: congo.plugins.mingo, log };

  const loaded = {};
  for (const file of PATCHES) {
    const mod = await import(pathToFileURL(join(here, 'patches', file)).href);
    if (mod.FOR_VERSION !== PINNED.smartmongo) die(`patch ${file} is for smartmongo ${mod.FOR_VERSION}`);
    mod.apply(ctx);
    loaded[file] = mod;
  }

  const server = new congo.CongoServer({ host: opts.host, port: opts.port });
  if (opts.dbpath) {
    await loaded['05-bson-persistence.mjs'].open(server.getStorage(), opts.dbpath, ctx);
  }
  await server.start();
  // --port 0: report (and let serverStatus/whatsmyuri use) the real port.
  const port = server.server.address().port;
  server.options.port = port;

  // Exit at once: nothing is buffered. Commands never wait on I/O (the
  // --dbpath journal is written and fsynced synchronously before each reply),
  // so no write is half-done when a signal is handled; the OS closes sockets.
  const stop = (sig) => {
    log(`${sig}, exiting`);
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  process.stdout.write(`devdb ready mongodb://${host}:${port}\n`);
}

main().catch((err) => die(err && err.stack ? err.stack : String(err)));
