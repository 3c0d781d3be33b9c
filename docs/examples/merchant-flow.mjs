#!/usr/bin/env node
// docs/examples/merchant-flow.mjs -- the whole merchant-side flow against a running agentclear,
// with nothing but Node (>= 20) and two npm packages: `http-message-signatures` (RFC 9421 request
// signatures) and `jose` (the user's JWS documents). See docs/merchant-example.md.
//
//   npm install http-message-signatures jose          # in the directory you run it from
//   AC_URL=http://127.0.0.1:8080 AC_OPERATOR_TOKEN=$(cat var/operator-token) \
//     node docs/examples/merchant-flow.mjs
//
// It plays every part, each with its own key: the operator (bearer token: registers the user and
// the merchant, creates and funds wallets), the user (signs the binding and the mandate with
// jose), the agent (signs its payment with http-message-signatures) and the merchant (checks the
// receipt against the signed checkpoint, signs a refund, publishes token prices, settles a tab). Every id carries a random suffix, so it
// can run again against the same server. Exit 0 when every step answered as expected, 1 otherwise.
//
// Packages are imported normally, or from the directory named by AC_NPM_DIR when it is set (how
// the test suite runs this script with the packages `ops/npm-clients.sh` installed).
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

async function load(name) {
    if (!process.env.AC_NPM_DIR) return import(name);
    const file = createRequire(join(process.env.AC_NPM_DIR, 'package.json')).resolve(name);
    const mod = await import(pathToFileURL(file).href);
    return mod.default ?? mod;
}
const hms = await load('http-message-signatures');
const jose = await load('jose');

const API = (process.env.AC_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
const TOKEN = process.env.AC_OPERATOR_TOKEN;
if (!TOKEN) {
    console.error('merchant-flow: set AC_OPERATOR_TOKEN (ops/run writes it to var/operator-token)');
    process.exit(2);
}
const run = crypto.randomBytes(4).toString('hex'); // makes this run's ids unique
const now = () => Math.floor(Date.now() / 1000);

// ---- keys: Ed25519, as JWK, with their RFC 7638 thumbprints (the key ids agentclear uses) -----
async function newKey() {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
    const { kty, crv, x } = publicKey.export({ format: 'jwk' });
    const jwk = { kty, crv, x };
    return { privateKey, jwk, kid: await jose.calculateJwkThumbprint(jwk, 'sha256') };
}

// ---- HTTP ------------------------------------------------------------------------------------
async function call(method, path, { body, headers = {}, expect }) {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const h = { ...headers };
    if (text !== undefined) h['content-type'] = 'application/json';
    const res = await fetch(API + path, { method, headers: h, body: text });
    const raw = await res.text();
    const json = raw && res.headers.get('content-type')?.includes('json') ? JSON.parse(raw) : raw;
    const ok = Array.isArray(expect) ? expect.includes(res.status) : res.status === expect;
    if (!ok) throw new Error(`${method} ${path}: HTTP ${res.status} (expected ${expect}): ${raw}`);
    return { status: res.status, headers: res.headers, json };
}
const operator = (method, path, body, expect) =>
    call(method, path, { body, expect, headers: { authorization: `Bearer ${TOKEN}` } });

// A request signed under agentclear's RFC 9421 profile (docs/identity.md): @method, @target-uri,
// content-digest when there is a body, agent-runtime for agents; created, expires, nonce, keyid,
// tag="agentclear".
async function signed(key, method, path, body, { runtime, expect }) {
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers = {};
    const fields = ['@method', '@target-uri'];
    if (text.length) {
        headers['content-type'] = 'application/json';
        headers['content-digest'] = `sha-256=:${crypto.createHash('sha256').update(text).digest('base64')}:`;
        fields.push('content-digest');
    }
    if (runtime) {
        headers['agent-runtime'] = runtime;
        fields.push('agent-runtime');
    }
    const created = now();
    const signedReq = await hms.httpbis.signMessage(
        {
            key: hms.createSigner(key.privateKey, 'ed25519'),
            name: 'sig1',
            fields,
            params: ['keyid', 'alg', 'created', 'expires', 'nonce', 'tag'],
            paramValues: {
                keyid: key.kid,
                created: new Date(created * 1000),
                expires: new Date((created + 60) * 1000),
                nonce: crypto.randomBytes(16).toString('base64url'),
                tag: 'agentclear',
            },
        },
        { method, url: API + path, headers },
    );
    const res = await fetch(API + path, {
        method,
        headers: signedReq.headers,
        body: text.length ? text : undefined,
    });
    const raw = await res.text();
    if (res.status !== expect) throw new Error(`${method} ${path}: HTTP ${res.status} (expected ${expect}): ${raw}`);
    return { status: res.status, headers: res.headers, json: JSON.parse(raw) };
}

// A user-signed document: compact JWS, EdDSA, kid = thumbprint, typ names the document.
const jws = (key, typ, payload) =>
    new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ })
        .sign(key.privateKey);

// ---- the receipt: RFC 9162 inclusion proof to a C2SP checkpoint signed by a key of the JWKS ----
const sha256 = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();

function rootFromInclusion(index, size, leaf, proof) { // RFC 9162 section 2.1.3.2
    if (index >= size) throw new Error('leaf index beyond the tree');
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
        if (sn === 0) throw new Error('proof too long');
        if (fn % 2 === 1 || fn === sn) {
            r = sha256(Buffer.from([1]), p, r);
            if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn >>= 1; sn >>= 1; }
        } else {
            r = sha256(Buffer.from([1]), r, p);
        }
        fn >>= 1; sn >>= 1;
    }
    if (sn !== 0) throw new Error('proof too short');
    return r;
}

function verifyCheckpoint(note, jwks) { // C2SP signed-note with an Ed25519 key
    const cut = note.indexOf('\n\n');
    const text = note.slice(0, cut + 1);
    const [origin, size, root] = text.split('\n');
    for (const line of note.slice(cut + 2).split('\n').filter(Boolean)) {
        const m = /^\u2014 (\S+) (\S+)$/.exec(line);
        if (!m || m[1] !== origin) continue;
        const sig = Buffer.from(m[2], 'base64');
        for (const k of jwks.keys.filter((k) => k.kty === 'OKP' && k.crv === 'Ed25519')) {
            const pub = Buffer.from(k.x, 'base64url');
            const id = sha256(Buffer.from(origin + '\n'), Buffer.from([1]), pub).subarray(0, 4);
            if (!id.equals(sig.subarray(0, 4))) continue;
            const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x }, format: 'jwk' });
            if (crypto.verify(null, Buffer.from(text), key, sig.subarray(4)))
                return { origin, size: Number(size), root: Buffer.from(root, 'base64') };
        }
    }
    throw new Error('no signature of a server key verifies the checkpoint');
}

async function receipt(evidence, jwks) {
    for (let i = 0; i < 50; i++) { // a record is checkpointed within checkpoint-ms (default 1 s)
        const { json: e } = await operator('GET', `/v1/evidence/${evidence.seq}`, undefined, 200);
        if (e.proof) {
            const record = Buffer.from(e.record, 'base64');
            const leaf = sha256(Buffer.from([0]), record); // hex in this answer, base64 in the payment's
            if (leaf.toString('base64') !== evidence.leaf_hash) throw new Error('leaf hash differs from the answer');
            const cp = verifyCheckpoint(e.checkpoint, jwks);
            const root = rootFromInclusion(evidence.seq, cp.size, leaf, e.proof.map((p) => Buffer.from(p, 'hex')));
            if (!root.equals(cp.root)) throw new Error('inclusion proof does not reach the checkpoint root');
            return { kind: e.view.kind, tree_size: cp.size, origin: cp.origin };
        }
        await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`record ${evidence.seq} was not checkpointed in 10 s`);
}

// ---- the flow --------------------------------------------------------------------------------
const step = (n, what, value) => console.log(`${n}. ${what}: ${JSON.stringify(value)}`);

const user = await newKey(), agent = await newKey(), merchant = await newKey();
const U = `alice-${run}`, M = `llm-${run}`, A = `agent-${run}`;
const cny = (v) => ({ currency: 'CNY', value: v });

// 1. the operator: asset, user, merchant, wallets; the user's wallet is funded
await operator('POST', '/v1/ledger/assets', { code: 'CNY', scale: 2 }, [200, 201]);
await operator('POST', '/v1/ledger/assets', { code: 'TOK', scale: 0 }, [200, 201]);
await operator('POST', '/v1/users', { id: U, keys: [user.jwk] }, 201);
await operator('POST', '/v1/merchants', { id: M, name: 'LLM Provider', category: 'llm', keys: [merchant.jwk] }, 201);
await operator('POST', '/v1/ledger/accounts', {
    accounts: [
        { id: `bank:${run}:cny`, asset: 'CNY' },
        { id: `user:${U}:cny`, asset: 'CNY', owner: U, flags: ['debits_must_not_exceed_credits'] },
        { id: `merchant:${M}:cny`, asset: 'CNY', owner: M },
        // the provider's token account is the issuer (no flag: it may go negative), and the
        // user's token wallet receives what the agent buys
        { id: `merchant:${M}:tok`, asset: 'TOK', owner: M },
        { id: `user:${U}:tok`, asset: 'TOK', owner: U },
    ],
}, [200, 201]);
await operator('POST', '/v1/ledger/transfers', {
    transfers: [{ id: `fund-${run}`, debit_account: `bank:${run}:cny`, credit_account: `user:${U}:cny`, amount: '100.00', asset: 'CNY' }],
}, [200, 201]);
step(1, 'operator set up', { user: U, merchant: M, funded: '100.00' });

// 2. the user binds the agent key to the agent and its runtime
const rt = { software: 'sha-256:' + '1'.repeat(64), model: 'example-model-2026-05', environment: 'sha-256:' + '2'.repeat(64) };
const runtime = `sha-256=:${crypto.createHash('sha256')
    .update(`agentclear-runtime/v1\n${rt.software}\n${rt.model}\n${rt.environment}`).digest('base64')}:`;
const t0 = now();
const binding = await jws(user, 'agentclear-binding+jws', {
    ver: 1, id: `b-${run}`, iss: U, sub: A, cnf: { jwk: agent.jwk }, runtime: rt,
    max_autonomy: 'L4', iat: t0, exp: t0 + 86400,
});
const b = await call('POST', '/v1/bindings', { body: { jws: binding }, expect: 201 });
step(2, 'binding', { id: b.json.id, status: b.json.status });

// 3. the user's mandate: purchases, top-ups and metered calls from this merchant
const mandate = await jws(user, 'agentclear-mandate+jws', {
    ver: 1, id: `m-${run}`, iss: U, agents: [A], ops: ['purchase', 'topup', 'micropay'],
    payees: { merchants: [M] }, asset: 'CNY', max_per_tx: '50.00', caps: { day: '80.00' },
    nbf: t0 - 60, exp: t0 + 86400, autonomy: 'L4', step_up_above: '40.00', tz: '+08:00',
});
const m = await call('POST', '/v1/mandates', { body: { jws: mandate }, expect: 201 });
step(3, 'mandate', { id: m.json.id, status: m.json.status });

// 4. the agent pays 12.00 (RFC 9421-signed by the agent key, with its runtime)
const pay = await signed(agent, 'POST', '/v1/payments', {
    id: `order-${run}`, mandate: `m-${run}`, payee: M, amount: cny('12.00'), purpose: 'a report',
}, { runtime, expect: 201 });
if (pay.json.status !== 'settled') throw new Error(`payment not settled: ${JSON.stringify(pay.json)}`);
step(4, 'payment', { status: pay.json.status, verdict: pay.json.decision.verdict, evidence: pay.json.evidence });

// 5. the merchant checks its receipt: the record's leaf is in a checkpoint signed by the server
const { json: jwks } = await call('GET', '/.well-known/agentclear/keys', { expect: 200 });
step(5, 'receipt verified', await receipt(pay.json.evidence, jwks));

// 6. the merchant refunds 4.00 of it (RFC 9421-signed by the merchant key, no runtime)
const rf = await signed(merchant, 'POST', `/v1/payments/order-${run}/refunds`, {
    id: `rf-${run}`, amount: cny('4.00'), reason: 'partial outage',
}, { expect: 201 });
step(6, 'refund', { id: rf.json.id, amount: rf.json.amount, evidence: rf.json.evidence });
step(6, 'refund receipt verified', await receipt(rf.json.evidence, jwks));

// 7. the merchant publishes its token price (version 1: 1000 TOK for 1.00 CNY), signed by it
await signed(merchant, 'PUT', `/v1/merchants/${M}/prices`, {
    version: 1, prices: [{ fiat: cny('1.00'), tokens: { currency: 'TOK', value: '1000' } }],
}, { expect: 201 });
// ... and the agent buys 5.00 CNY of tokens at that version: fiat and tokens move as one pair
const tu = await signed(agent, 'POST', '/v1/topups', {
    id: `tu-${run}`, mandate: `m-${run}`, provider: M, amount: cny('5.00'), token_asset: 'TOK', price_version: 1,
}, { runtime, expect: 201 });
if (tu.json.status !== 'settled' || tu.json.tokens.value !== '5000') throw new Error(`top-up: ${JSON.stringify(tu.json)}`);
step(7, 'top-up', { status: tu.json.status, tokens: tu.json.tokens, price_version: tu.json.price.version });
// a second price version makes version 1 stale: a top-up still naming it is refused, nothing moves
await signed(merchant, 'PUT', `/v1/merchants/${M}/prices`, {
    version: 2, prices: [{ fiat: cny('1.00'), tokens: { currency: 'TOK', value: '800' } }],
}, { expect: 201 });
const stale = await signed(agent, 'POST', '/v1/topups', {
    id: `tu2-${run}`, mandate: `m-${run}`, provider: M, amount: cny('5.00'), token_asset: 'TOK', price_version: 1,
}, { runtime, expect: 409 });
step(7, 'top-up at the old version', { status: stale.status, code: stale.json.code });

// 8. a micropayment tab: the agent opens a hold of 10.00, signs a cumulative voucher after each
//    call, and the merchant settles the highest it holds, then closes the tab
const tab = await signed(agent, 'POST', '/v1/tabs', {
    id: `tab-${run}`, mandate: `m-${run}`, payee: M, amount: cny('10.00'), expires_in: 3600,
}, { runtime, expect: 201 });
step(8, 'tab opened', { status: tab.json.status, hold: tab.json.hold });
const voucher = (seq, value) => jws(agent, 'agentclear-voucher+jws', {
    ver: 1, tab: `tab-${run}`, seq, cumulative: cny(value),
});
const vouchers = [];
for (let call = 1; call <= 30; call++) vouchers.push(await voucher(call, (call * 0.05).toFixed(2)));
const st = await signed(merchant, 'POST', `/v1/tabs/tab-${run}/settle`, { voucher: vouchers[19] }, { expect: 200 });
step(8, 'settled voucher 20', { settled: st.json.settled, posted_now: st.json.amount });
const old = await signed(merchant, 'POST', `/v1/tabs/tab-${run}/settle`, { voucher: vouchers[9] }, { expect: 409 });
step(8, 'an older voucher', { code: old.json.code });
const cl = await signed(merchant, 'POST', `/v1/tabs/tab-${run}/close`, { voucher: vouchers[29] }, { expect: 200 });
step(8, 'closed with voucher 30', { status: cl.json.status, settled: cl.json.settled, released: cl.json.released });

// 9. balances as the operator reads them: 100 - 12 + 4 - 5 (tokens) - 1.50 (the tab)
const { json: ub } = await operator('GET', `/v1/users/${U}/balances`, undefined, 200);
const { json: mb } = await operator('GET', `/v1/merchants/${M}/balances`, undefined, 200);
const posted = (b, acct) => b.balances.find((x) => x.account === acct).posted.value;
const got = {
    user_cny: posted(ub, `user:${U}:cny`), user_tok: posted(ub, `user:${U}:tok`),
    merchant_cny: posted(mb, `merchant:${M}:cny`), merchant_tok: posted(mb, `merchant:${M}:tok`),
};
const want = { user_cny: '85.50', user_tok: '5000', merchant_cny: '14.50', merchant_tok: '-5000' };
if (JSON.stringify(got) !== JSON.stringify(want))
    throw new Error(`balances ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
step(9, 'balances', got);
console.log('merchant-flow: every step answered as expected');
