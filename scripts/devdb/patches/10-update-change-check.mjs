// Patch 10 - updates judged "unchanged" by JSON (written for @push.rocks/smartmongo 2.2.0)
//
// Defect: server/handlers/UpdateHandler.js handleUpdate() decides whether an
// update changed a document with
// `JSON.stringify(doc) !== JSON.stringify(updatedDoc)` and stores nothing when
// the JSON texts are equal. JSON cannot tell a UUID from its hex string, a Date
// from its ISO string, any two RegExps ({}), or Binary subtypes apart. So
// `$set: { token: "<uuid text>" }` over a binary UUID, or
// `$set: { at: "2024-01-01T00:00:00.000Z" }` over a Date, is silently dropped
// (nModified 0) where mongod stores the new type - exactly the kind of bug of
// ours we want tests to catch.
//
// Fix: replace UpdateHandler.prototype.handleUpdate with the same code
// (copied from dist_ts 2.2.0) except that the check compares the BSON
// encodings of the two versions, as mongod effectively does.
export const FOR_VERSION = '2.2.0';

export function apply({ congo, handlers, bson }) {
  const { QueryEngine, UpdateEngine } = congo;
  const { UpdateHandler } = handlers;

  const sameBson = (a, b) => Buffer.from(bson.serialize(a)).equals(Buffer.from(bson.serialize(b)));

  UpdateHandler.prototype.handleUpdate = async function (context) {
    const { storage, database, command, documentSequences } = context;
    const collection = command.update;
    if (typeof collection !== 'string') {
      return { ok: 0, errmsg: 'update command requires a collection name', code: 2, codeName: 'BadValue' };
    }
    const updates = documentSequences?.get('updates') ?? command.updates ?? [];
    if (!Array.isArray(updates) || updates.length === 0) {
      return { ok: 0, errmsg: 'update command requires updates array', code: 2, codeName: 'BadValue' };
    }
    const ordered = command.ordered !== false;
    const writeErrors = [];
    const upserted = [];
    let totalMatched = 0;
    let totalModified = 0;
    await storage.createCollection(database, collection);

    for (let i = 0; i < updates.length; i++) {
      const spec = updates[i];
      const filter = spec.q || spec.filter || {};
      const update = spec.u || spec.update || {};
      try {
        const matching = QueryEngine.filter(await storage.findAll(database, collection), filter);
        if (matching.length === 0 && spec.upsert) {
          const newDoc = { _id: new bson.ObjectId() };
          this.applyFilterToDoc(newDoc, filter);
          const updatedDoc = UpdateEngine.applyUpdate(newDoc, update, spec.arrayFilters);
          if (update.$setOnInsert) Object.assign(updatedDoc, update.$setOnInsert); // emptied by patch 08
          await storage.insertOne(database, collection, updatedDoc);
          upserted.push({ index: i, _id: updatedDoc._id });
        } else {
          const docs = spec.multi ? matching : matching.slice(0, 1);
          totalMatched += docs.length;
          for (const doc of docs) {
            const updatedDoc = UpdateEngine.applyUpdate(doc, update, spec.arrayFilters);
            if (!sameBson(doc, updatedDoc)) {
              await storage.updateById(database, collection, doc._id, updatedDoc);
              totalModified++;
            }
          }
        }
      } catch (error) {
        const we = { index: i, code: error.code || 1, errmsg: error.message || 'Update failed' };
        if (error.keyPattern) Object.assign(we, { keyPattern: error.keyPattern, keyValue: error.keyValue });
        writeErrors.push(we);
        if (ordered) break;
      }
    }

    const response = { ok: 1, n: totalMatched + upserted.length, nModified: totalModified };
    if (upserted.length > 0) response.upserted = upserted;
    if (writeErrors.length > 0) response.writeErrors = writeErrors;
    return response;
  };
}
