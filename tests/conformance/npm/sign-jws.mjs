#!/usr/bin/env node
// tests/conformance/npm/sign-jws.mjs -- make a compact JWS (RFC 7515) with the npm package jose,
// as a user's wallet would sign a binding or a revocation. EdDSA (Ed25519, RFC 8037) or ES256 by
// the key's type. See README.md.
//
//   node sign-jws.mjs - < {"jwk":{...private...},"header":{"kid":"...","typ":"..."},"payload":{...}}
//   node sign-jws.mjs --jwk user.jwk --kid KID --typ agentclear-binding+jws --payload '{"a":1}'
//
// Prints JSON {jws, protected_header} (or, with --raw, the compact JWS and a newline). Exit 0 when
// signed, 2 on bad input.
import {
    cliInput,
    fail,
    loadJwkArg,
    npmImport,
    parseJson,
    readFileBytes,
    requireKey,
    run,
} from './_common.mjs';

const USAGE = `usage: sign-jws.mjs -                          (JSON input on stdin)
       sign-jws.mjs --jwk FILE|JSON (--payload TEXT | --payload-file FILE) [options]
  --kid K, --typ T      protected header members
  --header JSON         further protected header members (an object; may set alg)
  --raw                 print only the compact JWS`;

function inputFromArgs(argv) {
    const { values, input } = cliInput(
        argv,
        {
            jwk: { type: 'string' },
            kid: { type: 'string' },
            typ: { type: 'string' },
            header: { type: 'string' },
            payload: { type: 'string' },
            'payload-file': { type: 'string' },
            raw: { type: 'boolean' },
        },
        USAGE,
    );
    if (values.jwk !== undefined) input.jwk = loadJwkArg(values.jwk);
    if (values.header !== undefined) input.header = parseJson(values.header, '--header');
    if (values.kid !== undefined || values.typ !== undefined) {
        input.header = { ...(input.header ?? {}) };
        if (values.kid !== undefined) input.header.kid = values.kid;
        if (values.typ !== undefined) input.header.typ = values.typ;
    }
    if (values.payload !== undefined) input.payload_text = values.payload;
    if (values['payload-file'] !== undefined)
        input.payload_b64 = readFileBytes(values['payload-file'], 'payload').toString('base64');
    return { input, raw: !!values.raw };
}

function payloadOf(input) {
    const given = ['payload', 'payload_text', 'payload_b64'].filter((k) => input[k] !== undefined);
    if (given.length !== 1) fail('give exactly one of payload (JSON), payload_text, payload_b64');
    if (given[0] === 'payload') return Buffer.from(JSON.stringify(input.payload), 'utf8');
    if (typeof input[given[0]] !== 'string') fail(`${given[0]} must be a string`);
    return given[0] === 'payload_text'
        ? Buffer.from(input.payload_text, 'utf8')
        : Buffer.from(input.payload_b64, 'base64');
}

async function main() {
    const { input, raw } = inputFromArgs(process.argv.slice(2));
    const jose = await npmImport('jose');
    const key = requireKey(input, true);
    const header = input.header ?? {};
    if (header === null || typeof header !== 'object' || Array.isArray(header))
        fail('header must be an object');
    const protectedHeader = { alg: key.jwsAlg, ...header };
    const payload = payloadOf(input);
    let jws;
    try {
        jws = await new jose.CompactSign(payload).setProtectedHeader(protectedHeader).sign(key.privateKey);
    } catch (e) {
        fail(`jose: ${e.message}`);
    }
    if (raw) process.stdout.write(jws + '\n');
    else process.stdout.write(JSON.stringify({ jws, protected_header: protectedHeader }, null, 2) + '\n');
    return 0;
}

run('sign-jws.mjs', main);
