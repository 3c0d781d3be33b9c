#!/usr/bin/env node
// tests/conformance/npm/sign-request.mjs -- sign an HTTP request the way an agent would, with the
// npm package http-message-signatures (RFC 9421), under agentclear's profile. See README.md.
//
//   node sign-request.mjs - < request.json
//   node sign-request.mjs --jwk agent.jwk --method POST --url https://127.0.0.1:8443/v1/x \
//        -H 'agent-runtime: sha-256=:...:' --body '{"a":1}'
//
// Prints JSON {method, url, headers, signature_base, label, params} on stdout (or, with --lines,
// the headers as "name: value" lines). Exit 0 when signed, 2 on bad input.
import crypto from 'node:crypto';

import {
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

const USAGE = `usage: sign-request.mjs -                      (JSON request on stdin)
       sign-request.mjs --jwk FILE|JSON --url URL [options]
  --method M          default GET
  -H, --header 'n: v' a request header (repeatable); agent-runtime is required by the profile
  --body TEXT | --body-file FILE | --body-b64 B64
  --target uri|split  @target-uri (default) or @authority @path @query
  --components LIST   comma-separated covered components, replacing the profile's list
  --label L           default sig1
  --keyid K           default: the RFC 7638 thumbprint of the key
  --created N --expires N --nonce S --tag S --alg S
  --omit LIST         parameters to leave out (created,expires,nonce,keyid,tag,alg)
  --digest sha-256|sha-512   Content-Digest algorithm when there is a body (default sha-256)
  --lines             print "name: value" header lines instead of JSON`;

const PARAMS = ['created', 'expires', 'nonce', 'keyid', 'tag', 'alg'];

function inputFromArgs(argv) {
    const { values, input } = cliInput(
        argv,
        {
            ...REQUEST_OPTIONS,
            target: { type: 'string' },
            components: { type: 'string' },
            label: { type: 'string' },
            keyid: { type: 'string' },
            created: { type: 'string' },
            expires: { type: 'string' },
            nonce: { type: 'string' },
            tag: { type: 'string' },
            alg: { type: 'string' },
            omit: { type: 'string' },
            digest: { type: 'string' },
            lines: { type: 'boolean' },
        },
        USAGE,
    );
    // arguments override stdin fields
    if (values.jwk !== undefined) input.jwk = loadJwkArg(values.jwk);
    for (const k of ['method', 'url', 'target', 'label', 'keyid', 'nonce', 'tag', 'alg', 'digest'])
        if (values[k] !== undefined) input[k] = values[k];
    addHeaderArgs(input, values.header);
    if (values.body !== undefined) input.body = values.body;
    if (values['body-file'] !== undefined) {
        input.body = undefined;
        input.body_b64 = readFileBytes(values['body-file'], 'body').toString('base64');
    }
    if (values['body-b64'] !== undefined) input.body_b64 = values['body-b64'];
    if (values.components !== undefined) input.components = values.components.split(',');
    if (values.created !== undefined) input.created = toInt(values.created, 'created');
    if (values.expires !== undefined) input.expires = toInt(values.expires, 'expires');
    for (const p of values.omit ? values.omit.split(',') : []) {
        if (!PARAMS.includes(p)) fail(`--omit: unknown parameter ${p}`);
        input[p] = null;
    }
    return { input, lines: !!values.lines };
}

// The covered components of agentclear's profile (docs/identity.md).
function profileComponents(target, hasBody) {
    const t = target ?? 'uri';
    if (t !== 'uri' && t !== 'split') fail('target must be "uri" or "split"');
    return [
        '@method',
        ...(t === 'uri' ? ['@target-uri'] : ['@authority', '@path', '@query']),
        ...(hasBody ? ['content-digest'] : []),
        'agent-runtime',
    ];
}

async function main() {
    const { input, lines } = inputFromArgs(process.argv.slice(2));
    const hms = await npmImport('http-message-signatures');
    const jose = await npmImport('jose');

    const key = requireKey(input, true);
    const { url, method, headers, body } = requestOf(input);
    const hasBody = body !== null && body.length > 0;

    if (hasBody && headers['content-digest'] === undefined) {
        const alg = input.digest ?? 'sha-256';
        if (alg !== 'sha-256' && alg !== 'sha-512') fail('digest must be sha-256 or sha-512');
        const d = crypto.createHash(alg.replace('-', '')).update(body).digest('base64');
        headers['content-digest'] = `${alg}=:${d}:`;
    }

    let components = input.components;
    if (components === undefined) {
        components = profileComponents(input.target, hasBody);
        if (headers['agent-runtime'] === undefined)
            fail('the agentclear profile covers an agent-runtime header: give one (or components)');
    } else if (!Array.isArray(components) || !components.every((c) => typeof c === 'string')) {
        fail('components must be an array of strings');
    }

    // Signature parameters: defaults, a given value, or null for "leave out".
    const now = Math.floor(Date.now() / 1000);
    const given = (k, dflt) => (input[k] === undefined ? dflt : input[k]);
    const created = given('created', now);
    const values = {
        keyid: given('keyid', await jose.calculateJwkThumbprint(key.publicJwk, 'sha256')),
        alg: given('alg', key.httpsigAlg),
        created,
        expires: given('expires', created === null ? null : created + 300),
        nonce: given('nonce', crypto.randomBytes(16).toString('base64url')),
        tag: given('tag', 'agentclear'),
    };
    for (const k of ['created', 'expires'])
        if (values[k] !== null && !Number.isSafeInteger(values[k])) fail(`${k} must be an integer`);
    for (const k of ['keyid', 'alg', 'nonce', 'tag'])
        if (values[k] !== null && typeof values[k] !== 'string') fail(`${k} must be a string`);

    // The library signs with the algorithm of the key; "alg" only names it in the input.
    const signer = hms.createSigner(key.privateKey, key.httpsigAlg);
    let base = null;
    const capture = {
        alg: signer.alg,
        sign: async (data) => {
            base = data.toString('utf8');
            return signer.sign(data);
        },
    };
    const order = ['keyid', 'alg', 'created', 'expires', 'nonce', 'tag'];
    const paramValues = { created: values.created === null ? null : new Date(values.created * 1000) };
    if (values.expires !== null) paramValues.expires = new Date(values.expires * 1000);
    for (const k of ['keyid', 'alg', 'nonce', 'tag']) if (values[k] !== null) paramValues[k] = values[k];
    const label = input.label ?? 'sig1';

    let signed;
    try {
        signed = await hms.httpbis.signMessage(
            {
                key: capture,
                name: label,
                fields: components,
                params: order.filter((k) => values[k] !== null),
                paramValues,
            },
            { method, url, headers },
        );
    } catch (e) {
        fail(`http-message-signatures: ${e.message}`);
    }
    const out = {};
    for (const [k, v] of Object.entries(signed.headers)) out[k.toLowerCase()] = v;
    if (lines) {
        for (const [k, v] of Object.entries(out))
            for (const one of Array.isArray(v) ? v : [v]) process.stdout.write(`${k}: ${one}\n`);
        return 0;
    }
    const params = {};
    for (const k of PARAMS) if (values[k] !== null) params[k] = values[k];
    process.stdout.write(
        JSON.stringify({ method, url: url.href, headers: out, signature_base: base, label, params }, null, 2) +
            '\n',
    );
    return 0;
}

run('sign-request.mjs', main);
