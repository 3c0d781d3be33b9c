#!/usr/bin/env node
// tests/conformance/npm/cbor-roundtrip.mjs -- decode one CBOR data item with the npm package cbor
// and re-encode it canonically (RFC 8949 §4.2.1 core deterministic encoding: shortest integer and
// float forms, map keys in bytewise order of their encodings, definite lengths). An encoder that
// claims deterministic CBOR must produce bytes for which "canonical" is true. See README.md.
//
//   node cbor-roundtrip.mjs --hex a2616101616202
//   node cbor-roundtrip.mjs --b64 omFhAWFiAg==
//   node cbor-roundtrip.mjs - < {"hex":"..."} | {"b64":"..."}
//
// Prints JSON {input_hex, canonical_hex, canonical, diagnostic, value}. Exit 0 when the input
// decodes (whether or not it is canonical), 2 when it does not decode as exactly one item.
import { parseArgs } from 'node:util';

import { fail, npmImport, parseJson, readStdin, run } from './_common.mjs';

const USAGE = `usage: cbor-roundtrip.mjs --hex HEX | --b64 BASE64 | -   (stdin: {"hex":...} or {"b64":...})`;

// A JSON rendering of a decoded item: byte strings {"bytes_hex": "..."}, tags
// {"tag": n, "value": ...}, maps {"map": [[key, value], ...]} in decoded order, integers beyond
// 2^53 and bignums as decimal strings {"int": "..."}, undefined {"simple": "undefined"}, other
// simple values {"simple": n}, non-finite floats {"float": "NaN" | "Infinity" | "-Infinity"}.
function render(cbor, v) {
    if (v === null) return null;
    if (v === undefined) return { simple: 'undefined' };
    if (typeof v === 'bigint') return { int: v.toString() };
    if (typeof v === 'number') return Number.isFinite(v) ? v : { float: String(v) };
    if (typeof v === 'string' || typeof v === 'boolean') return v;
    if (Buffer.isBuffer(v)) return { bytes_hex: v.toString('hex') };
    if (Array.isArray(v)) return v.map((x) => render(cbor, x));
    if (v instanceof Map) return { map: [...v.entries()].map(([k, x]) => [render(cbor, k), render(cbor, x)]) };
    if (v instanceof cbor.Tagged) return { tag: Number(v.tag), value: render(cbor, v.value) };
    if (v instanceof cbor.Simple) return { simple: v.value };
    fail(`cannot render a decoded ${Object.prototype.toString.call(v)}`);
}

async function main() {
    const argv = process.argv.slice(2);
    const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: { hex: { type: 'string' }, b64: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
        process.stdout.write(USAGE + '\n');
        return 0;
    }
    let input = {};
    if (positionals.length === 1 && positionals[0] === '-') input = parseJson(readStdin(), 'stdin');
    else if (positionals.length > 0 || argv.length === 0) fail(USAGE);
    if (values.hex !== undefined) input.hex = values.hex;
    if (values.b64 !== undefined) input.b64 = values.b64;
    if ((input.hex === undefined) === (input.b64 === undefined)) fail('give exactly one of hex, b64');
    let bytes;
    if (input.hex !== undefined) {
        if (typeof input.hex !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(input.hex)) fail('hex is not hexadecimal');
        bytes = Buffer.from(input.hex, 'hex');
    } else {
        if (typeof input.b64 !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(input.b64)) fail('b64 is not base64');
        bytes = Buffer.from(input.b64, 'base64');
    }
    const cbor = await npmImport('cbor');
    // Keep every tag as a Tagged (no conversion to Date, URL, ...), every map as a Map, and reject
    // duplicate keys: the re-encoding must see the item as it was written.
    const keepTags = new Proxy({}, { get: () => null });
    let items;
    try {
        items = cbor.decodeAllSync(bytes, { tags: keepTags, preferMap: true, preventDuplicateKeys: true });
    } catch (e) {
        fail(`cbor: ${e.message}`);
    }
    if (items.length !== 1) fail(`expected one CBOR data item, found ${items.length}`);
    const canonical = cbor.encodeCanonical(items[0]);
    const diagnostic = await cbor.diagnose(bytes);
    const out = {
        input_hex: bytes.toString('hex'),
        canonical_hex: canonical.toString('hex'),
        canonical: canonical.equals(bytes),
        diagnostic: diagnostic.trim(),
        value: render(cbor, items[0]),
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
}

run('cbor-roundtrip.mjs', main);
