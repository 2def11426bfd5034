// Patch 08 - $setOnInsert on upsert (written for @push.rocks/smartmongo 2.2.0)
//
// Defect: on an upsert that inserts, server/handlers/UpdateHandler.js
// (handleUpdate and handleFindAndModify) applies $setOnInsert with
// `Object.assign(updatedDoc, update.$setOnInsert)`: a dotted path such as
// { "created.by": "x" } becomes a top-level field literally named
// "created.by" instead of { created: { by: "x" } }, and a nested document
// replaces rather than merges like $set would.
//
// Fix: both upsert paths first build the new document with
// UpdateHandler.prototype.applyFilterToDoc(newDoc, filter), then call
// UpdateEngine.applyUpdate(newDoc, update). We mark that seed document
// (non-enumerable symbol) and, when applyUpdate sees it, apply $setOnInsert
// with UpdateEngine.applySetOnInsert ($set semantics, dotted paths) and remove
// $setOnInsert from this request's update so the handler's Object.assign has
// nothing left to copy. Updates of existing documents still ignore it.
export const FOR_VERSION = '2.2.0';

const UPSERT_SEED = Symbol('devdb upsert seed');

export function apply({ congo, handlers }) {
  const { UpdateEngine } = congo;
  const { UpdateHandler } = handlers;

  const origFilterToDoc = UpdateHandler.prototype.applyFilterToDoc;
  UpdateHandler.prototype.applyFilterToDoc = function (doc, filter) {
    Object.defineProperty(doc, UPSERT_SEED, { value: true });
    return origFilterToDoc.call(this, doc, filter);
  };

  const origApplyUpdate = UpdateEngine.applyUpdate;
  UpdateEngine.applyUpdate = function (document, update, arrayFilters) {
    const result = origApplyUpdate.call(this, document, update, arrayFilters);
    if (!document?.[UPSERT_SEED] || !update || Array.isArray(update) || !update.$setOnInsert) return result;
    const withInsertFields = UpdateEngine.applySetOnInsert(result, update.$setOnInsert);
    delete update.$setOnInsert;
    return withInsertFields;
  };
}
