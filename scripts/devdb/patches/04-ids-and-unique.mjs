// Patch 04 - _id types and unique indexes (written for @push.rocks/smartmongo 2.2.0)
//
// Defects:
//  a) storage/MemoryStorageAdapter.js keys documents by `_id.toHexString()` and
//     insertOne() forces `new ObjectId(doc._id)`: a string/int/UUID/document
//     _id is rejected ("input must be a 24 character hex string...") or
//     rewritten. server/handlers/InsertHandler.js also replaces any falsy _id
//     (0, "", false, null) with a new ObjectId (`if (!doc._id)`).
//  b) Unique secondary indexes are checked only when the index is built
//     (IndexEngine.createIndex); insert, update, upsert and findAndModify go
//     straight to storage and never consult them. createIndex itself detects
//     duplicates with JSON.stringify keys and crashes on non-ObjectId _ids, and
//     silently accepts a different index under an existing name.
//
// Fix:
//  - MemoryStorageAdapter insertOne/findById/updateById/deleteById: key
//    documents by keyOf(_id) (lib/bson-values.mjs: any BSON value; 7, 7.0 and
//    7L are the same key, as in MongoDB). A missing _id gets an ObjectId,
//    placed first. Array/regex _ids are refused (code 53), changing _id in an
//    update is refused (code 66, ImmutableField).
//  - insertOne/updateById check the _id index and every unique index of the
//    collection on every write (lookup tables built from the stored documents
//    and kept in step with each write), throwing
//    code 11000 "E11000 duplicate key error collection: db.coll index: NAME
//    dup key: { ... }". CongoDB's handlers turn that into writeErrors
//    (insert/update/upsert: index of the failing op, ordered batches stop
//    there and report n) or a command error (findAndModify).
//  - InsertHandler.prototype.handle: rewritten only to stop replacing falsy
//    _ids and to report keyPattern/keyValue in writeErrors like mongod.
//  - IndexEngine.prototype.createIndex: same name + same spec is a no-op;
//    same name + other spec fails with 86 (IndexKeySpecsConflict) or 85
//    (IndexOptionsConflict), same key under another name fails with 85; a
//    unique index over duplicate data fails with 11000. (It refreshes the
//    engine's index list through initialize(), which patch 03 makes reload.)
//  - sparse: a document missing all indexed fields is not indexed.
//    partialFilterExpression: stored with the index and honoured by the unique
//    check (documents not matching it are not indexed). Without that, our
//    unique enforcement would raise duplicate-key errors mongod never raises.
//    Missing fields count as null, as in mongod.
// Not done: unique indexes over array fields compare the whole array (mongod
// indexes each element).
import { keyOf, formatDoc, typeName } from '../lib/bson-values.mjs';

export const FOR_VERSION = '2.2.0';

function codeError(code, codeName, message, extra = {}) {
  return Object.assign(new Error(message), { code, codeName }, extra);
}

export function apply({ congo, handlers, bson, mingo }) {
  const { MemoryStorageAdapter, IndexEngine, QueryEngine } = congo;
  const { InsertHandler } = handlers;
  const S = MemoryStorageAdapter.prototype;

  // ---- index keys ---------------------------------------------------------
  const filters = new WeakMap(); // partialFilterExpression -> mingo.Query
  /** keyOf() of the document's entry in `spec`, or null if it is not indexed. */
  function indexKey(doc, spec) {
    const values = Object.keys(spec.key).map((f) => QueryEngine.getNestedValue(doc, f));
    if (spec.sparse && values.every((v) => v === undefined)) return null;
    const pfe = spec.partialFilterExpression;
    if (pfe && Object.keys(pfe).length) {
      if (!filters.has(pfe)) filters.set(pfe, new mingo.Query(pfe));
      if (!filters.get(pfe).test(doc)) return null;
    }
    return values.length === 1 ? keyOf(values[0]) : JSON.stringify(values.map(keyOf));
  }

  function duplicateKey(db, coll, spec, doc) {
    const keyValue = {};
    for (const f of Object.keys(spec.key)) keyValue[f] = QueryEngine.getNestedValue(doc, f) ?? null;
    return codeError(
      11000,
      'DuplicateKey',
      `E11000 duplicate key error collection: ${db}.${coll} index: ${spec.name} dup key: ${formatDoc(keyValue)}`,
      { keyPattern: spec.key, keyValue },
    );
  }

  // Unique-key lookup tables, built from the stored documents on first use and
  // then kept in step by insertOne/updateById/deleteById below. Keyed by the
  // collection's document Map, so a dropped collection's tables vanish with it;
  // an index whose spec changed gets a new table. If the Map's size ever
  // disagrees with ours (it was changed behind our back) everything is rebuilt.
  const tables = new WeakMap(); // docs Map -> { size, bySig: Map<sig, { spec, entries: Map<indexKey, idKey> }> }
  const signature = (s) => JSON.stringify([s.name, s.key, !!s.sparse, s.partialFilterExpression ? keyOf(s.partialFilterExpression) : null]);

  async function uniqueTables(storage, db, coll, docs) {
    const specs = (await storage.getIndexes(db, coll)).filter((s) => s.unique && s.name !== '_id_');
    let t = tables.get(docs);
    if (!t || t.size !== docs.size) tables.set(docs, (t = { size: docs.size, bySig: new Map() }));
    const wanted = new Map(specs.map((s) => [signature(s), s]));
    for (const sig of t.bySig.keys()) if (!wanted.has(sig)) t.bySig.delete(sig);
    for (const [sig, spec] of wanted) {
      if (t.bySig.has(sig)) continue;
      const entries = new Map();
      for (const [idKey, d] of docs) {
        const k = indexKey(d, spec);
        if (k !== null) entries.set(k, idKey);
      }
      t.bySig.set(sig, { spec, entries });
    }
    return t;
  }

  /** Index keys of `doc` in every unique index; throws 11000 on a collision with another document. */
  function uniqueKeys(t, db, coll, doc, selfKey) {
    return [...t.bySig.values()].map(({ spec, entries }) => {
      const k = indexKey(doc, spec);
      const owner = k === null ? undefined : entries.get(k);
      if (owner !== undefined && owner !== selfKey) throw duplicateKey(db, coll, spec, doc);
      return k;
    });
  }

  function unindex(t, doc, idKey) {
    for (const { spec, entries } of t.bySig.values()) {
      const k = indexKey(doc, spec);
      if (k !== null && entries.get(k) === idKey) entries.delete(k);
    }
  }

  function reindex(t, keys, idKey) {
    [...t.bySig.values()].forEach(({ entries }, i) => keys[i] !== null && entries.set(keys[i], idKey));
  }

  function checkIdType(id) {
    const t = typeName(id);
    if (t === 'array' || t === 'regex') {
      throw codeError(53, 'InvalidIdField', `The '_id' value cannot be of type ${t}`);
    }
  }

  // ---- storage: any BSON _id, unique checks -------------------------------
  S.insertOne = async function (db, coll, doc) {
    const docs = this.ensureCollection(db, coll);
    const stored = doc._id === undefined ? { _id: new bson.ObjectId(), ...doc } : { ...doc };
    checkIdType(stored._id);
    const key = keyOf(stored._id);
    if (docs.has(key)) throw duplicateKey(db, coll, { name: '_id_', key: { _id: 1 } }, stored);
    const t = await uniqueTables(this, db, coll, docs);
    const keys = uniqueKeys(t, db, coll, stored, null);
    docs.set(key, stored);
    reindex(t, keys, key);
    t.size = docs.size;
    return stored;
  };

  S.findById = async function (db, coll, id) {
    return this.ensureCollection(db, coll).get(keyOf(id)) || null;
  };

  S.updateById = async function (db, coll, id, doc) {
    const docs = this.ensureCollection(db, coll);
    const key = keyOf(id);
    const old = docs.get(key);
    if (!old) return false;
    const stored = doc._id === undefined ? { _id: id, ...doc } : doc;
    if (keyOf(stored._id) !== key) {
      throw codeError(66, 'ImmutableField', "Performing an update on the path '_id' would modify the immutable field '_id'");
    }
    const t = await uniqueTables(this, db, coll, docs);
    const keys = uniqueKeys(t, db, coll, stored, key);
    docs.set(key, stored);
    unindex(t, old, key);
    reindex(t, keys, key);
    return true;
  };

  S.deleteById = async function (db, coll, id) {
    const docs = this.ensureCollection(db, coll);
    const key = keyOf(id);
    const old = docs.get(key);
    if (!old) return false;
    docs.delete(key);
    const t = tables.get(docs);
    if (t && t.size === docs.size + 1) {
      unindex(t, old, key);
      t.size = docs.size;
    }
    return true;
  };

  // ---- insert command: keep falsy _ids, mongod-like writeErrors -----------
  InsertHandler.prototype.handle = async function ({ storage, database, command, documentSequences }) {
    const coll = command.insert;
    const docs = documentSequences?.get('documents') ?? command.documents;
    if (typeof coll !== 'string') {
      return { ok: 0, errmsg: 'insert command requires a collection name', code: 2, codeName: 'BadValue' };
    }
    if (!Array.isArray(docs) || docs.length === 0) {
      return { ok: 0, errmsg: 'insert command requires documents array', code: 2, codeName: 'BadValue' };
    }
    await storage.createCollection(database, coll);
    const writeErrors = [];
    let n = 0;
    for (let i = 0; i < docs.length; i++) {
      try {
        await storage.insertOne(database, coll, docs[i]);
        n++;
      } catch (err) {
        const we = { index: i, code: err.code || 1, errmsg: err.message || 'insert failed' };
        if (err.keyPattern) Object.assign(we, { keyPattern: err.keyPattern, keyValue: err.keyValue });
        writeErrors.push(we);
        if (command.ordered !== false) break;
      }
    }
    return writeErrors.length ? { ok: 1, n, writeErrors } : { ok: 1, n };
  };

  // ---- createIndexes: conflicts, duplicates, sparse/partial ---------------
  const sameKey = (a, b) => JSON.stringify(Object.entries(a)) === JSON.stringify(Object.entries(b));
  const optionsOf = (s) => ({
    unique: !!s.unique,
    sparse: !!s.sparse,
    partialFilterExpression: s.partialFilterExpression ? keyOf(s.partialFilterExpression) : null,
    expireAfterSeconds: s.expireAfterSeconds ?? null,
  });
  const sameOptions = (a, b) => JSON.stringify(optionsOf(a)) === JSON.stringify(optionsOf(b));
  const describe = (s) => formatDoc({ key: s.key, name: s.name, ...(s.unique ? { unique: true } : {}) });

  IndexEngine.prototype.createIndex = async function (key, options = {}) {
    const name = options.name || this.generateIndexName(key);
    const spec = { ...options, name, key };
    for (const idx of await this.storage.getIndexes(this.dbName, this.collName)) {
      if (idx.name === name) {
        if (sameKey(idx.key, key) && sameOptions(idx, spec)) return name;
        throw sameKey(idx.key, key)
          ? codeError(85, 'IndexOptionsConflict',
              `An equivalent index already exists with the same name but different options. Requested index: ${describe(spec)}, existing index: ${describe(idx)}`)
          : codeError(86, 'IndexKeySpecsConflict',
              `An existing index has the same name as the requested index. Requested index: ${describe(spec)}, existing index: ${describe(idx)}`);
      }
      if (sameKey(idx.key, key) && optionsOf(idx).partialFilterExpression === optionsOf(spec).partialFilterExpression) {
        throw codeError(85, 'IndexOptionsConflict', `Index already exists with a different name: ${idx.name}`);
      }
    }
    if (spec.unique) {
      const seen = new Set();
      for (const doc of await this.storage.findAll(this.dbName, this.collName)) {
        const k = indexKey(doc, spec);
        if (k === null) continue;
        if (seen.has(k)) throw duplicateKey(this.dbName, this.collName, spec, doc);
        seen.add(k);
      }
    }
    const stored = { key };
    for (const opt of ['unique', 'sparse', 'partialFilterExpression', 'expireAfterSeconds']) {
      if (options[opt] !== undefined && options[opt] !== false) stored[opt] = options[opt];
    }
    await this.storage.saveIndex(this.dbName, this.collName, name, stored);
    await this.initialize();
    return name;
  };
}
