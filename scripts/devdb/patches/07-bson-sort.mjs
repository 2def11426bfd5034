// Patch 07 - sort order (written for @push.rocks/smartmongo 2.2.0)
//
// Defect: engine/QueryEngine.js sort()/compareValues() compare strings with
// localeCompare ("a" < "B", accents folded), ObjectIds as hex via
// localeCompare, and any two values of different types as String(a) vs
// String(b) (so 10 < 9.5 < "B" < null-ish orders appear). Arrays are compared
// as strings too. UpdateEngine.compareValues ($min, $max, $push+$sort) has the
// same flaws. mongod sorts strings by UTF-8 bytes ("B" < "a"), values of
// different types by BSON type order (MinKey, null, numbers, string, object,
// array, binData, ObjectId, bool, date, timestamp, regex, MaxKey), BinData by
// length, then subtype, then bytes, dates by time, and uses an array's
// smallest (ascending) or largest (descending) element as its sort key.
//
// Fix: replace QueryEngine.sort (find, findAndModify sort) and
// UpdateEngine.compareValues with lib/bson-values.mjs compareBson().
// Missing fields sort as null; ties keep insertion order (stable sort).
// Not changed: aggregate $sort is mingo's own implementation.
import { compareBson, sortKeyOf } from '../lib/bson-values.mjs';

export const FOR_VERSION = '2.2.0';

function direction(d) {
  if (typeof d === 'number') return d < 0 ? -1 : 1;
  if (typeof d === 'string') return /^(desc|descending|-1)$/i.test(d) ? -1 : 1;
  return 1; // { $meta: ... } and friends: no meaning here
}

export function apply({ congo }) {
  const { QueryEngine, UpdateEngine } = congo;

  QueryEngine.sort = function (documents, sort) {
    if (!sort) return documents;
    const fields = (Array.isArray(sort) ? sort : Object.entries(sort)).map(([f, d]) => [f, direction(d)]);
    const rows = documents.map((doc) => ({
      doc,
      keys: fields.map(([f, dir]) => sortKeyOf(QueryEngine.getNestedValue(doc, f), dir)),
    }));
    rows.sort((a, b) => {
      for (let i = 0; i < fields.length; i++) {
        const c = compareBson(a.keys[i], b.keys[i]);
        if (c !== 0) return c * fields[i][1];
      }
      return 0;
    });
    return rows.map((r) => r.doc);
  };

  UpdateEngine.compareValues = compareBson;
}
