// tests/conformance/npm/_common.mjs -- shared by the scripts beside it: load a package from the
// scratch directory prepared by ops/npm-clients.sh (AC_NPM_DIR), parse the command line, read
// input (keys, requests), report errors.
//
// ES modules ignore NODE_PATH, so packages are resolved from $AC_NPM_DIR/package.json with
// createRequire and loaded with a dynamic import of the resolved file.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import crypto from 'node:crypto';

// Exit codes shared by every script (see README.md).
export const EXIT_OK = 0;
export const EXIT_REJECTED = 1; // a verifier said no
export const EXIT_USAGE = 2; // bad arguments or input, missing AC_NPM_DIR, library error

export class UsageError extends Error {}

export function fail(msg) {
    throw new UsageError(msg);
}

// Run main(); print errors as "<script>: error: ..." on stderr and exit with EXIT_USAGE.
export function run(name, main) {
    main().then(
        (code) => process.exit(code ?? EXIT_OK),
        (e) => {
            const msg = e instanceof UsageError ? e.message : (e && e.stack) || String(e);
            process.stderr.write(`${name}: error: ${msg}\n`);
            process.exit(EXIT_USAGE);
        },
    );
}

export async function npmImport(name) {
    const dir = process.env.AC_NPM_DIR;
    if (!dir) fail('AC_NPM_DIR is not set (run ops/npm-clients.sh DIR and export AC_NPM_DIR=DIR)');
    let file;
    try {
        file = createRequire(join(dir, 'package.json')).resolve(name);
    } catch {
        fail(`${name} is not installed in ${dir} (run ops/npm-clients.sh ${dir})`);
    }
    const mod = await import(pathToFileURL(file).href);
    // A CommonJS package arrives as { default: module.exports, ... }; jose (ESM) has no default.
    return mod.default ?? mod;
}

// The command line shared by the scripts: either "-" (one JSON object on stdin) or options (parsed
// with node:util parseArgs; --help/-h is added). --help prints usage and exits 0; no argument at
// all prints usage as an error, and so does a stray argument. Returns {values, input}: the parsed
// options and the stdin object ({} without "-"), which the options then override.
export function cliInput(argv, options, usage) {
    const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: { ...options, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
        process.stdout.write(usage + '\n');
        process.exit(EXIT_OK);
    }
    let input = {};
    if (positionals.length === 1 && positionals[0] === '-') {
        input = parseJson(readStdin(), 'stdin');
        if (input === null || typeof input !== 'object' || Array.isArray(input))
            fail('stdin must hold one JSON object');
    } else if (positionals.length > 0) {
        fail(`unexpected argument ${positionals[0]}\n${usage}`);
    } else if (argv.length === 0) {
        fail(usage);
    }
    return { values, input };
}

// The options that describe an HTTP request, for cliInput (sign-request.mjs, verify-request.mjs).
export const REQUEST_OPTIONS = {
    jwk: { type: 'string' },
    method: { type: 'string' },
    url: { type: 'string' },
    header: { type: 'string', short: 'H', multiple: true },
    body: { type: 'string' },
    'body-file': { type: 'string' },
    'body-b64': { type: 'string' },
};

// -H 'name: value' arguments (an array, or undefined for none) laid over input.headers; an
// argument replaces a header of the same name.
export function addHeaderArgs(input, args) {
    if (!args) return;
    input.headers = { ...normHeaders(input.headers) };
    for (const h of args) {
        const [n, v] = splitHeaderArg(h);
        input.headers[n.toLowerCase()] = v;
    }
}

export function readStdin() {
    try {
        return readFileSync(0, 'utf8');
    } catch (e) {
        fail(`cannot read stdin: ${e.message}`);
    }
}

export function parseJson(text, what) {
    try {
        return JSON.parse(text);
    } catch (e) {
        fail(`${what} is not valid JSON: ${e.message}`);
    }
}

// A JWK given as inline JSON ("{...}") or as a file name.
export function loadJwkArg(arg) {
    const text = arg.trimStart().startsWith('{') ? arg : readFileOr(arg, 'jwk');
    return parseJson(text, 'jwk');
}

export function readFileOr(path, what) {
    return readFileBytes(path, what).toString('utf8');
}

export function readFileBytes(path, what) {
    try {
        return readFileSync(path);
    } catch (e) {
        fail(`cannot read ${what} file ${path}: ${e.message}`);
    }
}

// Node KeyObjects from a JWK (Ed25519 "OKP" or P-256 "EC"); private when it has "d". Also the
// key's algorithm names: JWS "alg" (EdDSA, ES256) and RFC 9421 "alg" (ed25519,
// ecdsa-p256-sha256).
export function keyFromJwk(jwk, wantPrivate) {
    if (jwk === null || typeof jwk !== 'object') fail('jwk must be a JSON object');
    const isEd = jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
    const isP256 = jwk.kty === 'EC' && jwk.crv === 'P-256';
    if (!isEd && !isP256) fail('jwk must be an Ed25519 (OKP) or P-256 (EC) key');
    if (wantPrivate && typeof jwk.d !== 'string') fail('a private jwk (with "d") is needed to sign');
    const pub = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, ...(isP256 ? { y: jwk.y } : {}) };
    try {
        return {
            kind: isEd ? 'ed25519' : 'p256',
            jwsAlg: isEd ? 'EdDSA' : 'ES256',
            httpsigAlg: isEd ? 'ed25519' : 'ecdsa-p256-sha256',
            publicJwk: pub,
            publicKey: crypto.createPublicKey({ key: pub, format: 'jwk' }),
            privateKey: wantPrivate ? crypto.createPrivateKey({ key: jwk, format: 'jwk' }) : null,
        };
    } catch (e) {
        fail(`jwk rejected by node: ${e.message}`);
    }
}

// The key of input.jwk (see keyFromJwk); fails when there is none.
export function requireKey(input, wantPrivate) {
    if (input.jwk === undefined) fail('jwk is required');
    return keyFromJwk(input.jwk, wantPrivate);
}

// The request of input: {url (a URL), method (upper case, default GET), headers (normHeaders),
// body (bodyOf)}. Fails when url is missing or not absolute.
export function requestOf(input) {
    if (typeof input.url !== 'string') fail('url is required');
    let url;
    try {
        url = new URL(input.url);
    } catch {
        fail(`url ${input.url} is not an absolute URL`);
    }
    return {
        url,
        method: (input.method ?? 'GET').toUpperCase(),
        headers: normHeaders(input.headers),
        body: bodyOf(input),
    };
}

// The request body from {body} (UTF-8 text) or {body_b64} (base64); null when neither.
export function bodyOf(input) {
    if (input.body != null && input.body_b64 != null) fail('give body or body_b64, not both');
    if (input.body != null) {
        if (typeof input.body !== 'string') fail('body must be a string');
        return Buffer.from(input.body, 'utf8');
    }
    if (input.body_b64 != null) {
        if (typeof input.body_b64 !== 'string') fail('body_b64 must be a string');
        return Buffer.from(input.body_b64, 'base64');
    }
    return null;
}

// Headers as a plain object with lowercase names; values are strings or arrays of strings
// (repeated field lines, combined with ", " when signed).
export function normHeaders(h) {
    const out = {};
    if (h == null) return out;
    if (typeof h !== 'object' || Array.isArray(h)) fail('headers must be an object');
    for (const [k, v] of Object.entries(h)) {
        const ok = typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
        if (!ok) fail(`header ${k}: value must be a string or an array of strings`);
        const name = k.toLowerCase();
        if (name in out) fail(`header ${k} given twice (names are case-insensitive)`);
        out[name] = v;
    }
    return out;
}

// "name: value" -> [name, value]
export function splitHeaderArg(s) {
    const i = s.indexOf(':');
    if (i <= 0) fail(`header "${s}" is not "name: value"`);
    return [s.slice(0, i).trim(), s.slice(i + 1).trim()];
}

export function toInt(s, what) {
    if (!/^-?[0-9]+$/.test(String(s))) fail(`${what} must be an integer (UNIX seconds)`);
    return Number(s);
}
