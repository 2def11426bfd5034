// Helpers shared by the patches: MongoDB's ordering and equality of BSON values
// as bson@6 deserializes them (JS number/string/boolean/Date/RegExp/Array/
// object, and bson classes recognised by their `_bsontype` tag, so no
// instanceof against a particular copy of the bson module is needed).

// BSON comparison order (https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/):
// MinKey, null, numbers, string, object, array, binData, ObjectId, bool, date,
// timestamp, regex, MaxKey. An empty array sorts before null (EMPTY_ARRAY_RANK).
const RANK = {
  MinKey: 1, null: 2, number: 3, string: 4, object: 5, array: 6, Binary: 7,
  ObjectId: 8, boolean: 9, date: 10, Timestamp: 11, regex: 12, Code: 13, MaxKey: 100,
};
const EMPTY_ARRAY_RANK = 1.5;

export function typeName(v) {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'number': case 'bigint': return 'number';
    case 'string': return 'string';
    case 'boolean': return 'boolean';
  }
  if (Array.isArray(v)) return 'array';
  if (v instanceof Date) return 'date';
  if (v instanceof RegExp) return 'regex';
  switch (v._bsontype) {
    case undefined: return 'object';
    case 'Long': case 'Int32': case 'Double': case 'Decimal128': return 'number';
    case 'BSONSymbol': return 'string';
    case 'BSONRegExp': return 'regex';
    case 'DBRef': return 'object';
    case 'Code': return 'Code';
    default: return v._bsontype; // Binary (UUID too), ObjectId, Timestamp, MinKey, MaxKey
  }
}

function toNumber(v) {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v._bsontype === 'Long') return v.toNumber();
  if (v._bsontype === 'Decimal128') return Number(v.toString());
  return Number(v.valueOf());
}

function compareNumbers(a, b) {
  if (a?._bsontype === 'Long' && b?._bsontype === 'Long') return a.compare(b);
  const x = toNumber(a), y = toNumber(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) ? (Number.isNaN(y) ? 0 : -1) : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

const sign = (n) => (n < 0 ? -1 : n > 0 ? 1 : 0);
const bytesCompare = (a, b) => sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
// MongoDB compares strings by their UTF-8 bytes ("B" < "a" < "é").
const compareStrings = (a, b) => (a === b ? 0 : sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))));

function binaryBytes(v) {
  return v.buffer.subarray(0, v.position);
}

/** Total order of two BSON values, as MongoDB compares them (-1, 0, 1). */
export function compareBson(a, b) {
  const ta = typeName(a), tb = typeName(b);
  if (ta !== tb) return sign(RANK[ta] - RANK[tb]);
  switch (ta) {
    case 'null': case 'MinKey': case 'MaxKey': return 0;
    case 'number': return compareNumbers(a, b);
    case 'string': return compareStrings(String(a), String(b));
    case 'boolean': return sign(Number(a) - Number(b));
    case 'date': return compareNumbers(a.getTime(), b.getTime());
    case 'ObjectId': return compareStrings(a.toHexString(), b.toHexString());
    case 'Binary': {
      const x = binaryBytes(a), y = binaryBytes(b);
      return sign(x.length - y.length) || sign(a.sub_type - b.sub_type) || bytesCompare(x, y);
    }
    case 'Timestamp': return sign(a.t - b.t) || sign(a.i - b.i);
    case 'regex': {
      const pa = a.source ?? a.pattern, pb = b.source ?? b.pattern;
      return compareStrings(pa, pb) || compareStrings(a.flags ?? a.options, b.flags ?? b.options);
    }
    case 'array': {
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        const c = compareBson(a[i], b[i]);
        if (c) return c;
      }
      return sign(a.length - b.length);
    }
    case 'object': {
      // Field by field: type of value, then field name, then value.
      const ea = Object.entries(a), eb = Object.entries(b);
      for (let i = 0; i < Math.min(ea.length, eb.length); i++) {
        const [ka, va] = ea[i], [kb, vb] = eb[i];
        const c = sign(RANK[typeName(va)] - RANK[typeName(vb)]) || compareStrings(ka, kb) || compareBson(va, vb);
        if (c) return c;
      }
      return sign(ea.length - eb.length);
    }
    default: return compareStrings(String(a.code ?? a), String(b.code ?? b));
  }
}

/**
 * The value a sort key takes for one document: for an array, MongoDB uses its
 * smallest element in an ascending sort and its largest in a descending one.
 */
export function sortKeyOf(v, direction) {
  if (!Array.isArray(v)) return v;
  if (v.length === 0) return EMPTY_ARRAY;
  let best = v[0];
  for (const x of v) if (compareBson(x, best) * direction < 0) best = x;
  return best;
}
const EMPTY_ARRAY = Object.freeze({ _bsontype: 'devdbEmptyArray' });
RANK.devdbEmptyArray = EMPTY_ARRAY_RANK;

/**
 * A string that is equal for two values exactly when MongoDB treats them as
 * the same index key / _id: numbers of any BSON type compare by value
 * (int 7 == double 7.0 == long 7), missing == null, documents are
 * field-order sensitive.
 */
export function keyOf(v) {
  switch (typeName(v)) {
    case 'null': return 'z';
    case 'number': {
      const n = toNumber(v);
      if (v?._bsontype === 'Long' && !Number.isSafeInteger(n)) return `n${v.toString()}`;
      return `n${Object.is(n, -0) ? 0 : n}`;
    }
    case 'string': return `s${String(v)}`;
    case 'boolean': return v ? 'T' : 'F';
    case 'date': return `d${v.getTime()}`;
    case 'ObjectId': return `o${v.toHexString()}`;
    case 'Binary': return `b${v.sub_type}:${Buffer.from(binaryBytes(v)).toString('base64')}`;
    case 'Timestamp': return `t${v.t}:${v.i}`;
    case 'regex': return `r${JSON.stringify([v.source ?? v.pattern, v.flags ?? v.options])}`;
    case 'array': return `a${JSON.stringify(v.map(keyOf))}`;
    case 'object': return `{${JSON.stringify(Object.entries(v).map(([k, x]) => [k, keyOf(x)]))}`;
    case 'MinKey': return 'm';
    case 'MaxKey': return 'M';
    default: return `?${v._bsontype}:${String(v.code ?? v)}`;
  }
}

/** A value in the shell-like notation MongoDB uses in "dup key: { ... }". */
export function formatValue(v) {
  switch (typeName(v)) {
    case 'null': return 'null';
    case 'string': return JSON.stringify(String(v));
    case 'number': return v?._bsontype === 'Decimal128' ? `NumberDecimal("${v}")` : String(v?.toString?.() ?? v);
    case 'boolean': return String(v);
    case 'date': return `new Date(${v.getTime()})`;
    case 'ObjectId': return `ObjectId('${v.toHexString()}')`;
    case 'Binary':
      return v.sub_type === 4 && v.position === 16
        ? `UUID("${Buffer.from(binaryBytes(v)).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')}")`
        : `BinData(${v.sub_type}, ${Buffer.from(binaryBytes(v)).toString('hex').toUpperCase()})`;
    case 'array': return `[ ${v.map(formatValue).join(', ')} ]`;
    case 'object': return formatDoc(v);
    case 'regex': return `/${v.source ?? v.pattern}/${v.flags ?? v.options}`;
    case 'Timestamp': return `Timestamp(${v.t}, ${v.i})`;
    default: return String(v._bsontype ?? v);
  }
}

export function formatDoc(doc) {
  const parts = Object.entries(doc).map(([k, v]) => `${k}: ${formatValue(v)}`);
  return parts.length ? `{ ${parts.join(', ')} }` : '{}';
}
