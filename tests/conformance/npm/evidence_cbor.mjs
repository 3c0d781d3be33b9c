// node evidence_cbor.mjs FILE... -- decode each file (one deterministic CBOR item: an evidence
// record or a dispute bundle) with the npm `cbor` package, re-encode it canonically, and check
// the bytes are identical; bundles also have each embedded record checked the same way.
// Prints one line per file ("ok <file> <kind> body=<members> transfers=<members>|...
// accounts=<members>|..." for a record) and exits 1 on the first mismatch.
// The package comes from AC_NPM_DIR (ops/npm-clients.sh), never from the repository.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.env.AC_NPM_DIR;
if (!dir) { console.error('AC_NPM_DIR is not set'); process.exit(2); }
const require = createRequire(path.join(dir, 'node_modules', 'x.js'));
const cbor = require('cbor');

function roundtrip(buf, what) {
  const items = cbor.decodeAllSync(buf);
  if (items.length !== 1) throw new Error(`${what}: ${items.length} items, want 1`);
  const again = cbor.encodeCanonical(items[0]);
  if (Buffer.compare(again, buf) !== 0)
    throw new Error(`${what}: re-encoding differs (${again.length} vs ${buf.length} bytes)`);
  return items[0];
}

for (const f of process.argv.slice(2)) {
  const buf = readFileSync(f);
  const v = roundtrip(buf, f);
  if (v.records !== undefined) {
    for (const e of v.records) {
      const r = roundtrip(e.record, `${f} record ${e.seq}`);
      if (BigInt(r.seq) !== BigInt(e.seq)) throw new Error(`${f}: seq mismatch`);
    }
    console.log(`ok ${f} bundle ${v.records.length} records`);
  } else {
    if (typeof v.kind !== 'string' || !Buffer.isBuffer(v.prev) || v.prev.length !== 32)
      throw new Error(`${f}: not an evidence record`);
    // the members npm saw, for the caller to check (body; then those of transfers and accounts)
    const keys = (o) => Object.keys(o).sort().join(',');
    const sub = (a) => (Array.isArray(a) ? a.map(keys).join('|') : '-');
    console.log(`ok ${f} ${v.kind} body=${keys(v.body)} transfers=${sub(v.body.transfers)} ` +
                `accounts=${sub(v.body.accounts)}`);
  }
}
