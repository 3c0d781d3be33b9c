#!/usr/bin/env node
// tests/conformance/npm/verify-jws.mjs -- verify a compact JWS (for instance one made by
// agentclear's ac_jws_sign) with the npm package jose. See README.md.
//
//   node verify-jws.mjs - < {"jwk":{...public...},"jws":"h.p.s"}
//   node verify-jws.mjs --jwk user.pub.jwk --jws h.p.s
//
// Prints JSON {verified, reason?, protected_header, payload_text, payload_b64}. Exit 0 when
// verified, 1 when not, 2 on bad input.
import { parseArgs } from 'node:util';

import {
    EXIT_OK,
    EXIT_REJECTED,
    fail,
    keyFromJwk,
    loadJwkArg,
    npmImport,
    parseJson,
    readStdin,
    run,
} from './_common.mjs';

const USAGE = `usage: verify-jws.mjs -                        (JSON input on stdin)
       verify-jws.mjs --jwk FILE|JSON --jws COMPACT`;

async function main() {
    const argv = process.argv.slice(2);
    const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
            jwk: { type: 'string' },
            jws: { type: 'string' },
            help: { type: 'boolean', short: 'h' },
        },
    });
    if (values.help) {
        process.stdout.write(USAGE + '\n');
        return 0;
    }
    let input = {};
    if (positionals.length === 1 && positionals[0] === '-') {
        input = parseJson(readStdin(), 'stdin');
        if (input === null || typeof input !== 'object' || Array.isArray(input))
            fail('stdin must hold one JSON object');
    } else if (positionals.length > 0 || argv.length === 0) {
        fail(USAGE);
    }
    if (values.jwk !== undefined) input.jwk = loadJwkArg(values.jwk);
    if (values.jws !== undefined) input.jws = values.jws;
    if (input.jwk === undefined) fail('jwk is required');
    if (typeof input.jws !== 'string') fail('jws is required (a string)');
    const key = keyFromJwk(input.jwk, false);
    const jose = await npmImport('jose');
    const alg = key.jwsAlg;
    let out;
    try {
        const r = await jose.compactVerify(input.jws.trim(), key.publicKey, { algorithms: [alg] });
        const p = Buffer.from(r.payload);
        out = {
            verified: true,
            protected_header: r.protectedHeader,
            payload_text: p.toString('utf8'),
            payload_b64: p.toString('base64'),
        };
    } catch (e) {
        out = { verified: false, reason: `${e.code ?? e.name}: ${e.message}` };
    }
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return out.verified ? EXIT_OK : EXIT_REJECTED;
}

run('verify-jws.mjs', main);
