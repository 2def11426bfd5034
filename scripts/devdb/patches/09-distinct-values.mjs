// Patch 09 - distinct returns strings (written for @push.rocks/smartmongo 2.2.0)
//
// Defect: engine/QueryEngine.js distinct() de-duplicates through
// toComparable(), which turns ObjectIds into hex strings, Dates into ISO
// strings and every other object (UUIDs, sub-documents) into JSON text - and
// returns those strings. A client asking for distinct ObjectIds, dates or
// UUIDs gets strings back; 1 and "1" stay distinct but {a:1} and '{"a":1}'
// collapse.
//
// Fix: replace QueryEngine.distinct: de-duplicate by keyOf() (BSON equality,
// lib/bson-values.mjs) and return the original values. Array fields
// contribute their elements, as in mongod.
import { keyOf } from '../lib/bson-values.mjs';

export const FOR_VERSION = '2.2.0';

export function apply({ congo }) {
  const { QueryEngine } = congo;

  QueryEngine.distinct = function (documents, field, filter) {
    const docs = filter && Object.keys(filter).length ? QueryEngine.filter(documents, filter) : documents;
    const values = new Map();
    for (const doc of docs) {
      const value = QueryEngine.getNestedValue(doc, field);
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) {
        const k = keyOf(v);
        if (!values.has(k)) values.set(k, v);
      }
    }
    return [...values.values()];
  };
}
