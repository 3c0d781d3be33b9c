#!/usr/bin/env node
// tests/conformance/npm/verify-request.mjs -- verify an RFC 9421 signed request (for instance one
// signed by agentclear's C code) with the npm package http-message-signatures, and check its
// Content-Digest (RFC 9530) against the body. See README.md.
//
//   node verify-request.mjs - < request.json
//   node verify-request.mjs --jwk agent.pub.jwk --method POST --url URL -H 'signature-input: ...' \
//        -H 'signature: ...' -H 'content-digest: ...' -H 'agent-runtime: ...' --body '{"a":1}'
//
// Prints JSON {verified, reason?, signature_base, label, params, digest} on stdout. Exit 0 when
// verified, 1 when not, 2 on bad input.
import crypto from 'node:crypto';

import {
    EXIT_OK,
    EXIT_REJECTED,
    REQUEST_OPTIONS,
    addHeaderArgs,
    cliInput,
    fail,
    loadJwkArg,
    npmImport,
    readFileBytes,
    requestOf,
    requireKey,
    run,
    toInt,
} from './_common.mjs';

const USAGE = `usage: verify-request.mjs -                    (JSON request on stdin)
       verify-request.mjs --jwk FILE|JSON --url URL -H 'signature-input: ...' -H 'signature: ...'
  --method M                default GET
  -H, --header 'n: v'       a request header (repeatable)
  --body TEXT | --body-file FILE | --body-b64 B64
  --keyid K                 the keyid the signature must name (default: any)
  --tolerance N             clock tolerance in seconds for created/expires (default 60)`;

function inputFromArgs(argv) {
    const { values, input } = cliInput(
        argv,
        { ...REQUEST_OPTIONS, keyid: { type: 'string' }, tolerance: { type: 'string' } },
        USAGE,
    );
    if (values.jwk !== undefined) input.jwk = loadJwkArg(values.jwk);
    for (const k of ['method', 'url', 'keyid']) if (values[k] !== undefined) input[k] = values[k];
    addHeaderArgs(input, values.header);
    if (values.body !== undefined) input.body = values.body;
    if (values['body-file'] !== undefined)
        input.body_b64 = readFileBytes(values['body-file'], 'body').toString('base64');
    if (values['body-b64'] !== undefined) input.body_b64 = values['body-b64'];
    if (values.tolerance !== undefined) input.tolerance = toInt(values.tolerance, 'tolerance');
    return input;
}

// RFC 9530 Content-Digest of body: "ok" when at least one of sha-256/sha-512 is present and
// every one present matches, "mismatch", "absent" (no field), or "unsupported" (neither alg).
function checkDigest(sh, field, body) {
    if (field === undefined) return 'absent';
    let dict;
    try {
        dict = sh.parseDictionary(Array.isArray(field) ? field.join(', ') : field);
    } catch {
        return 'malformed';
    }
    let seen = 0;
    for (const alg of ['sha-256', 'sha-512']) {
        if (!dict.has(alg)) continue;
        const [value] = dict.get(alg);
        if (!(value instanceof ArrayBuffer)) return 'malformed';
        const want = crypto.createHash(alg.replace('-', '')).update(body).digest();
        const got = Buffer.from(value);
        if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return 'mismatch';
        seen++;
    }
    return seen > 0 ? 'ok' : 'unsupported';
}

async function main() {
    const input = inputFromArgs(process.argv.slice(2));
    const hms = await npmImport('http-message-signatures');
    const sh = await npmImport('structured-headers');

    const key = requireKey(input, false);
    const { url, method, headers, body } = requestOf(input);
    const tolerance = input.tolerance ?? 60;
    if (!Number.isSafeInteger(tolerance) || tolerance < 0) fail('tolerance must be an integer >= 0');
    const alg = key.httpsigAlg;

    const verifier = hms.createVerifier(key.publicKey, alg);
    const seen = []; // {base, params} for every signature the library checked with our key
    const keyLookup = async (params) => {
        if (input.keyid !== undefined && params.keyid !== input.keyid) return null;
        return {
            id: params.keyid,
            algs: [alg],
            verify: async (data, sig, p) => {
                seen.push({ base: data.toString('utf8'), params: p });
                return verifier(data, sig);
            },
        };
    };

    let verified = false;
    let reason;
    try {
        const r = await hms.httpbis.verifyMessage(
            { keyLookup, tolerance },
            { method, url, headers },
        );
        verified = r === true;
        if (r === null) reason = seen.length ? 'no signature' : 'no signature with a known key';
        else if (r === false) reason = 'signature does not verify';
    } catch (e) {
        reason = `${e.name ?? 'Error'}: ${e.message}`;
    }

    const digest = body !== null && body.length > 0 ? checkDigest(sh, headers['content-digest'], body) : 'no body';
    if (verified && digest !== 'no body' && digest !== 'ok') {
        verified = false;
        reason = `content-digest ${digest}`;
    }
    const last = seen.length ? seen[seen.length - 1] : null;
    let label = null;
    try {
        const si = sh.parseDictionary(String(headers['signature-input'] ?? ''));
        label = si.size === 1 ? [...si.keys()][0] : null;
    } catch {
        /* reported through verified/reason */
    }
    const params = {};
    if (last?.params)
        for (const [k, v] of Object.entries(last.params))
            params[k] = v instanceof Date ? Math.floor(v.getTime() / 1000) : v;
    const out = { verified, ...(reason ? { reason } : {}), signature_base: last?.base ?? null, label, params, digest };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return verified ? EXIT_OK : EXIT_REJECTED;
}

run('verify-request.mjs', main);
