// Patch 03 - stale index cache (written for @push.rocks/smartmongo 2.2.0)
//
// Defect: server/handlers/IndexHandler.js keeps one IndexEngine per
// "db.collection" in a module-level Map, forever, and IndexEngine.initialize()
// (engine/IndexEngine.js) loads the index list from storage only once
// (`if (this.initialized) return`). After drop/dropDatabase the storage
// forgets the indexes but the cached engine does not: listIndexes still shows
// them, and createIndexes with the same name returns ok without creating
// anything. initialize() also indexes every document with
// `doc._id.toHexString()`, which throws for any _id that is not an ObjectId.
//
// Fix: replace IndexEngine.prototype.initialize so that every call (each public
// IndexEngine method starts with one) reloads the index list from storage, the
// single source of truth. It keeps no per-document entries: CongoDB only uses
// them inside createIndex, and unique keys are checked by patch 04 against the
// stored documents.
export const FOR_VERSION = '2.2.0';

export function apply({ congo }) {
  const { IndexEngine } = congo;

  IndexEngine.prototype.initialize = async function () {
    const specs = await this.storage.getIndexes(this.dbName, this.collName);
    this.indexes = new Map(
      specs.map((spec) => [
        spec.name,
        {
          name: spec.name,
          key: spec.key,
          unique: !!spec.unique,
          sparse: !!spec.sparse,
          expireAfterSeconds: spec.expireAfterSeconds,
          entries: new Map(),
        },
      ]),
    );
    this.initialized = true;
  };
}
