// Patch 05 - faithful, durable persistence for --dbpath (written for @push.rocks/smartmongo 2.2.0)
//
// Defect: CongoDB's only persistence (storage/MemoryStorageAdapter.js
// persist()/restore(), enabled by `persistPath`) writes a JSON snapshot on a
// timer (default every 60 s) and on clean shutdown. JSON loses Date, Binary/
// UUID, Long, Decimal128, RegExp; restore() turns every _id back into an
// ObjectId (failing for string/int/UUID _ids); and anything written after the
// last snapshot is lost on a crash. (FileStorageAdapter has the same JSON
// problem.) Crash tests need better.
//
// Fix: an append-only journal of BSON records in DIR/journal.bson, used only
// when devdb.mjs is given --dbpath DIR (open() below); otherwise everything
// stays in memory as before.
//  - The MemoryStorageAdapter methods that change data (insertOne, updateById,
//    deleteById, createCollection, dropCollection, dropDatabase,
//    renameCollection, saveIndex, dropIndex) are wrapped: after the change
//    succeeds, one record is written with write(2) - from then on it survives
//    the server being SIGKILLed.
//  - CommandRouter.prototype.route is wrapped to fsync(2) the journal after
//    the command and before the reply is sent, so an acknowledged write also
//    survives an OS crash.
//  - open(): replays the journal (a torn record at the end, from a crash in
//    mid-write, is cut off - it was never acknowledged), then rewrites it
//    compacted (tmp file + fsync + rename + fsync of DIR) and appends from there.
//    A lock file (DIR/devdb.lock, holding the pid) stops two servers sharing DIR.
//  - If the journal cannot be written the server exits (status 3) instead of
//    acknowledging a write it could not make durable.
// Documents round-trip exactly as BSON, except that int64 values that fit in
// a double are held as JS numbers (a general CongoDB limit, see README).
import fs from 'node:fs';
import path from 'node:path';
import { keyOf } from '../lib/bson-values.mjs';

export const FOR_VERSION = '2.2.0';

const JOURNAL = 'journal.bson';
const LOCK = 'devdb.lock';

class Journal {
  constructor(bson, file) {
    this.bson = bson;
    this.fd = fs.openSync(file, 'a');
    this.dirty = false;
  }
  append(record) {
    try {
      writeAll(this.fd, this.bson.serialize(record, { ignoreUndefined: true }));
      this.dirty = true;
    } catch (err) {
      fatal(err);
    }
  }
  sync() {
    if (!this.dirty) return;
    try {
      fs.fsyncSync(this.fd);
      this.dirty = false;
    } catch (err) {
      fatal(err);
    }
  }
}

function writeAll(fd, buf) {
  for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off, buf.length - off);
}

function fatal(err) {
  process.stderr.write(`devdb: cannot write journal, exiting: ${err && err.message}\n`);
  process.exit(3);
}

export function apply({ congo }) {
  const { MemoryStorageAdapter, CommandRouter } = congo;
  const S = MemoryStorageAdapter.prototype;

  // wrap(name, record): run the original, then journal record(result, ...args) if it returns one.
  function wrap(name, record) {
    const orig = S[name];
    S[name] = async function (...args) {
      const j = this.devdbJournal;
      const before = j ? await beforeState(this, name, args) : undefined;
      const result = await orig.apply(this, args);
      if (j) {
        const rec = await record.call(this, result, before, ...args);
        if (rec) j.append(rec);
      }
      return result;
    };
  }
  async function beforeState(storage, name, [db, coll]) {
    if (name === 'createCollection' || name === 'dropCollection') return storage.collectionExists(db, coll);
    if (name === 'dropDatabase') return storage.databaseExists(db);
    return undefined;
  }

  wrap('insertOne', (stored, _b, db, c) => ({ op: 'put', db, c, doc: stored }));
  wrap('updateById', async function (ok, _b, db, c, id) {
    return ok && { op: 'put', db, c, doc: await this.findById(db, c, id) };
  });
  wrap('deleteById', (ok, _b, db, c, id) => ok && { op: 'del', db, c, id });
  wrap('createCollection', (_r, existed, db, c) => !existed && { op: 'coll', db, c });
  wrap('dropCollection', (_r, existed, db, c) => existed && { op: 'dropColl', db, c });
  wrap('dropDatabase', (_r, existed, db) => existed && { op: 'dropDb', db });
  wrap('renameCollection', (_r, _b, db, c, to) => ({ op: 'rename', db, c, to }));
  wrap('saveIndex', (_r, _b, db, c, name, spec) => ({ op: 'index', db, c, name, spec }));
  wrap('dropIndex', (ok, _b, db, c, name) => ok && { op: 'dropIndex', db, c, name });

  const origRoute = CommandRouter.prototype.route;
  CommandRouter.prototype.route = async function (...args) {
    try {
      return await origRoute.apply(this, args);
    } finally {
      this.storage.devdbJournal?.sync();
    }
  };
}

async function replay(storage, rec) {
  const { db, c } = rec;
  switch (rec.op) {
    case 'put': // straight into the map: it was checked when first written
      storage.ensureCollection(db, c).set(keyOf(rec.doc._id), rec.doc);
      break;
    case 'del': storage.ensureCollection(db, c).delete(keyOf(rec.id)); break;
    case 'coll': await storage.createCollection(db, c); break;
    case 'dropColl': await storage.dropCollection(db, c); break;
    case 'dropDb': await storage.dropDatabase(db); break;
    case 'rename': await storage.renameCollection(db, c, rec.to); break;
    case 'index': await storage.saveIndex(db, c, rec.name, rec.spec); break;
    case 'dropIndex': await storage.dropIndex(db, c, rec.name); break;
    default: throw new Error(`unknown journal record ${rec.op}`);
  }
}

function takeLock(dir) {
  const lock = path.join(dir, LOCK);
  try {
    const pid = Number(fs.readFileSync(lock, 'utf8'));
    if (pid && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        throw new Error(`${dir} is in use by devdb pid ${pid}`);
      } catch (err) {
        if (err.code !== 'ESRCH') throw err;
      }
    }
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  fs.writeFileSync(lock, String(process.pid));
  process.on('exit', () => {
    try {
      if (fs.readFileSync(lock, 'utf8') === String(process.pid)) fs.unlinkSync(lock);
    } catch {}
  });
}

function fsyncDir(dir) {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Load DIR/journal.bson into `storage`, compact it, and journal all later writes. */
export async function open(storage, dir, { bson, log }) {
  fs.mkdirSync(dir, { recursive: true });
  takeLock(dir);
  const file = path.join(dir, JOURNAL);

  let records = 0;
  if (fs.existsSync(file)) {
    const data = fs.readFileSync(file);
    let off = 0;
    while (off < data.length) {
      const len = data.length - off >= 4 ? data.readInt32LE(off) : -1;
      let rec = null;
      if (len >= 5 && off + len <= data.length) {
        try {
          rec = bson.deserialize(data.subarray(off, off + len));
        } catch {}
      }
      if (!rec) {
        log(`journal: dropping ${data.length - off} bytes of an incomplete last record`);
        break;
      }
      await replay(storage, rec);
      off += len;
      records++;
    }
  }

  // Compact: the current state as a fresh journal, swapped in atomically.
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  const put = (rec) => writeAll(fd, bson.serialize(rec, { ignoreUndefined: true }));
  let docs = 0;
  for (const db of await storage.listDatabases()) {
    for (const c of await storage.listCollections(db)) {
      put({ op: 'coll', db, c });
      for (const idx of await storage.getIndexes(db, c)) {
        if (idx.name === '_id_') continue;
        const { name, ...spec } = idx;
        put({ op: 'index', db, c, name, spec });
      }
      for (const doc of await storage.findAll(db, c)) {
        put({ op: 'put', db, c, doc });
        docs++;
      }
    }
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  fsyncDir(dir);

  storage.devdbJournal = new Journal(bson, file);
  log(`dbpath ${dir}: replayed ${records} journal records, ${docs} documents`);
}
