// Patch 02 - BSON values lost on update (written for @push.rocks/smartmongo 2.2.0)
//
// Defect: every operator update ($set, $inc, ...) starts with
// UpdateEngine.deepClone(document) (engine/UpdateEngine.js). That cloner knows
// only ObjectId, Date and Timestamp; every other object is copied key by key
// into a plain object. So after any update, fields holding Binary (UUIDs,
// subtype 4), Decimal128, Long, RegExp/BSONRegExp, MinKey/MaxKey, Code ... -
// even fields the update never touched - come back as sub-documents like
// { sub_type: 4, buffer: {...}, position: 16 }.
//
// Fix: replace UpdateEngine.deepClone with a cloner that keeps BSON value
// objects (anything with a `_bsontype` tag, and native RegExp) as they are.
// They are never mutated in place by CongoDB, so sharing them between the old
// and new version of a document is safe. Dates, arrays and plain
// sub-documents are still copied.
export const FOR_VERSION = '2.2.0';

export function apply({ congo }) {
  const { UpdateEngine } = congo;
  if (typeof UpdateEngine.deepClone !== 'function') throw new Error('UpdateEngine.deepClone not found');

  UpdateEngine.deepClone = function deepClone(obj) {
    if (obj === null || typeof obj !== 'object') return obj;
    if (obj._bsontype !== undefined || obj instanceof RegExp) return obj;
    if (obj instanceof Date) return new Date(obj.getTime());
    if (Array.isArray(obj)) return obj.map(deepClone);
    if (ArrayBuffer.isView(obj)) return obj.slice();
    const out = {};
    for (const key of Object.keys(obj)) out[key] = deepClone(obj[key]);
    return out;
  };
}
